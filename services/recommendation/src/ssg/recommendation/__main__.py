"""``python -m ssg.recommendation``: serve the recommendation gRPC API.

The read models, profiles and proposals are kept by ``python -m ssg.recommendation.worker``;
the outbox relay is ``SSG_SERVICE=recommendation python -m ssg.platform.events.relay``.
"""

from __future__ import annotations

import logging
import sys

from ssg.platform.grpc.main import api_main, serve_with_tasks
from ssg.recommendation.bootstrap import POLICY, App, bootstrap
from ssg.recommendation.settings import RecommendationSettings

log = logging.getLogger("ssg.recommendation")


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
        tasks=[app.service.warm_up],
        logger=log,
    )


def main() -> int:
    """Entry point; exit status 2 on bad configuration."""
    return api_main(RecommendationSettings, bootstrap, run)


if __name__ == "__main__":
    sys.exit(main())
