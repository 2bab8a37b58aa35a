"""``python -m ssg.catalog``: serve the catalog gRPC API, with the stale/deadline sweep.

The organizations read model is kept by ``python -m ssg.catalog.worker``; the outbox relay is
``SSG_SERVICE=catalog python -m ssg.platform.events.relay``.
"""

from __future__ import annotations

import logging
import sys
from functools import partial

from ssg.catalog.bootstrap import POLICY, App, bootstrap
from ssg.catalog.gauges import catalog_gauges
from ssg.catalog.settings import CatalogSettings
from ssg.catalog.sweeps import sweep_forever
from ssg.platform.gauges import refresh_forever
from ssg.platform.grpc.main import api_main, serve_with_tasks
from ssg.platform.process import PeriodicTask

log = logging.getLogger("ssg.catalog")


async def run(app: App) -> None:
    """Serve until SIGTERM/SIGINT; the sweep runs beside the server."""
    settings = app.settings
    tasks: list[PeriodicTask] = []
    if settings.sweep_seconds > 0:
        tasks.append(
            partial(sweep_forever, app.service, settings.sweep_seconds, settings.sweep_batch)
        )
    if app.cache_feed is not None:
        tasks.append(app.cache_feed.run)
    if settings.store_gauges_seconds > 0:
        tasks.append(
            partial(refresh_forever, catalog_gauges(app.store), settings.store_gauges_seconds)
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
    return api_main(CatalogSettings, bootstrap, run)


if __name__ == "__main__":
    sys.exit(main())
