"""``python -m ssg.recommendation``: serve the recommendation gRPC API.

The read models, profiles and proposals are kept by ``python -m ssg.recommendation.worker``;
the outbox relay is ``SSG_SERVICE=recommendation python -m ssg.platform.events.relay``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from functools import partial

from ssg.platform.grpc.main import api_main, serve_with_tasks
from ssg.platform.mongo import run_sync
from ssg.recommendation.bootstrap import POLICY, App, bootstrap
from ssg.recommendation.settings import RecommendationSettings

log = logging.getLogger("ssg.recommendation")


async def warm_up(app: App, stop: asyncio.Event) -> None:
    """Fit the SDG classifier and load the stored lists, then freeze the heap built so far."""
    await app.service.warm_up(stop)
    if app.held is not None:
        await run_sync(app.held.wait_current, 120.0)
    # What start-up built (modules, the first index and classifier, the held lists) lives about
    # as long as the process: kept out of the collector's full passes, which walked it every
    # ~20 s under load and paused every call in flight ~0.1 s (ADR 0055).
    gc.freeze()
    log.info("start-up heap frozen", extra={"objects": gc.get_freeze_count()})


async def run(app: App) -> None:
    """Serve until SIGTERM/SIGINT."""
    if app.held is not None:
        app.held.start()  # load the stored lists beside the server's start
    await serve_with_tasks(
        app.settings,
        app.registrations(),
        app.health_checks(),
        POLICY,
        ensure_indexes=app.store.ensure_indexes,
        tasks=[partial(warm_up, app)],
        logger=log,
    )


def main() -> int:
    """Entry point; exit status 2 on bad configuration."""
    return api_main(RecommendationSettings, bootstrap, run)


if __name__ == "__main__":
    sys.exit(main())
