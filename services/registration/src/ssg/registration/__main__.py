"""``python -m ssg.registration``: serve the registration gRPC API (with the expiry sweep).

The outbox relay is a process of its own: ``SSG_SERVICE=registration python -m
ssg.platform.events.relay``.
"""

from __future__ import annotations

import logging
import sys
from functools import partial

from ssg.platform.gauges import refresh_forever
from ssg.platform.grpc.main import api_main, serve_with_tasks
from ssg.platform.process import PeriodicTask
from ssg.registration.bootstrap import POLICY, App, bootstrap
from ssg.registration.expiry import sweep_forever
from ssg.registration.gauges import registration_gauges
from ssg.registration.settings import RegistrationSettings

log = logging.getLogger("ssg.registration")


async def run(app: App) -> None:
    """Serve until SIGTERM/SIGINT; the expiry sweep runs beside the server."""
    settings = app.settings
    tasks: list[PeriodicTask] = []
    if settings.expiry_sweep_seconds > 0:
        tasks.append(
            partial(
                sweep_forever,
                app.service,
                settings.expiry_sweep_seconds,
                settings.expiry_sweep_batch,
            )
        )
    if app.cache_feed is not None:
        tasks.append(app.cache_feed.run)
    if settings.store_gauges_seconds > 0:
        tasks.append(
            partial(refresh_forever, registration_gauges(app.store), settings.store_gauges_seconds)
        )
    await serve_with_tasks(
        settings,
        app.registrations(),
        app.health_checks(),
        POLICY,
        ensure_indexes=app.store.ensure_indexes,
        tasks=tasks,
        logger=log,
        on_stop=app.aclose,
    )


def main() -> int:
    """Entry point; exit status 2 on bad configuration."""
    return api_main(RegistrationSettings, bootstrap, run)


if __name__ == "__main__":
    sys.exit(main())
