"""``python -m ssg.search``: serve the search gRPC API.

The indices are kept by ``python -m ssg.search.worker``; this process only reads them (it
creates missing indices at start, so that it may start first on a fresh OpenSearch).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

from ssg.platform.grpc.main import api_main, serve_with_tasks
from ssg.platform.process import PeriodicTask
from ssg.search.bootstrap import POLICY, App, bootstrap
from ssg.search.settings import SearchSettings
from ssg.search.store.indices import ensure_indices

log = logging.getLogger("ssg.search")
RETRY_SECONDS = 5.0


async def keep_trying_indices(app: App, stop: asyncio.Event) -> None:
    """Create missing indices once OpenSearch answers (health reports it down meanwhile)."""
    while not stop.is_set():
        try:
            await ensure_indices(app.client, app.settings.index_prefix)
            return
        except Exception as exc:
            log.warning("could not ensure the search indices", extra={"error": str(exc)})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), RETRY_SECONDS)


async def run(app: App) -> None:
    """Serve until SIGTERM/SIGINT; the activity producer and the index check run beside."""
    tasks: list[PeriodicTask] = [lambda stop: keep_trying_indices(app, stop)]
    if app.activity is not None:
        tasks.append(app.activity.run)
    try:
        await serve_with_tasks(
            app.settings, app.registrations(), app.health_checks(), POLICY, tasks=tasks, logger=log
        )
    finally:
        await app.client.close()


def main() -> int:
    """Entry point; exit status 2 on bad configuration."""
    return api_main(SearchSettings, bootstrap, run)


if __name__ == "__main__":
    sys.exit(main())
