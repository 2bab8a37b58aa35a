"""``python -m ssg.catalog``: serve the catalog gRPC API, with the stale/deadline sweep.

The organizations read model is kept by ``python -m ssg.catalog.worker``; the outbox relay is
``SSG_SERVICE=catalog python -m ssg.platform.events.relay``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

from ssg.catalog.bootstrap import POLICY, App, bootstrap
from ssg.catalog.settings import CatalogSettings
from ssg.catalog.sweeps import sweep_forever
from ssg.platform.grpc.server import serve, verifier_from_settings
from ssg.platform.logging import configure_logging
from ssg.platform.mongo import run_sync
from ssg.platform.settings import ConfigError, load_settings

log = logging.getLogger("ssg.catalog")


async def run(app: App) -> None:
    """Serve until SIGTERM/SIGINT; the sweep runs beside the server."""
    settings = app.settings
    verifier = verifier_from_settings(settings)
    try:
        await run_sync(app.store.ensure_indexes)
    except Exception as exc:
        # Health stays NOT_SERVING while MongoDB is down; indexes are created on the next start.
        log.warning("could not create indexes", extra={"error": repr(exc)})
    stop = asyncio.Event()
    sweeper = None
    if settings.sweep_seconds > 0:
        sweeper = asyncio.create_task(
            sweep_forever(app.service, settings.sweep_seconds, settings.sweep_batch, stop)
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
        settings = load_settings(CatalogSettings)
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
