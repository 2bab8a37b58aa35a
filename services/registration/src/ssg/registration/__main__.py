"""``python -m ssg.registration``: serve the registration gRPC API (with the expiry sweep).

The outbox relay is a process of its own: ``SSG_SERVICE=registration python -m
ssg.platform.events.relay``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

from ssg.platform.grpc.server import serve, verifier_from_settings
from ssg.platform.logging import configure_logging
from ssg.platform.mongo import run_sync
from ssg.platform.settings import ConfigError, load_settings
from ssg.registration.bootstrap import POLICY, App, bootstrap
from ssg.registration.expiry import sweep_forever
from ssg.registration.settings import RegistrationSettings

log = logging.getLogger("ssg.registration")


async def run(app: App) -> None:
    """Serve until SIGTERM/SIGINT; the expiry sweep runs beside the server."""
    settings = app.settings
    verifier = verifier_from_settings(settings)
    try:
        await run_sync(app.store.ensure_indexes)
    except Exception as exc:
        # Health stays NOT_SERVING while MongoDB is down; indexes are created on the next start.
        log.warning("could not create indexes", extra={"error": repr(exc)})
    stop = asyncio.Event()
    sweeper = None
    if settings.expiry_sweep_seconds > 0:
        sweeper = asyncio.create_task(
            sweep_forever(
                app.service, settings.expiry_sweep_seconds, settings.expiry_sweep_batch, stop
            )
        )
    try:
        await serve(settings, app.registrations(), app.health_checks(), POLICY, verifier)
    finally:
        stop.set()
        if sweeper is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper


def main() -> int:
    """Entry point; exit status 2 on bad configuration."""
    try:
        settings = load_settings(RegistrationSettings)
        verifier_from_settings(settings)
        app = bootstrap(settings)
    except ConfigError as exc:
        print(exc, file=sys.stderr)  # logging is not configured yet: stderr is all there is
        return 2
    configure_logging(settings.service, settings.instance, settings.log_level)
    try:
        asyncio.run(run(app))
    finally:
        app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
