"""``python -m ssg.notifications``: serve the subscriptions gRPC API.

The matcher, dispatcher, results and digests run in ``python -m ssg.notifications.worker``;
deliveries are sent by ``python -m ssg.notifications.delivery``; the outbox relay
(DeliveryFailed events) is ``SSG_SERVICE=notifications python -m ssg.platform.events.relay``.
"""

from __future__ import annotations

import logging
import sys

from ssg.notifications.bootstrap import POLICY, App, bootstrap
from ssg.notifications.settings import NotificationsSettings
from ssg.platform.grpc.main import api_main, serve_with_tasks

log = logging.getLogger("ssg.notifications")


async def run(app: App) -> None:
    """Serve until SIGTERM/SIGINT."""
    await serve_with_tasks(
        app.settings,
        app.registrations(),
        app.health_checks(),
        POLICY,
        ensure_indexes=app.store.ensure_indexes,
        logger=log,
    )


def main() -> int:
    """Entry point; exit status 2 on bad configuration."""
    return api_main(NotificationsSettings, bootstrap, run)


if __name__ == "__main__":
    sys.exit(main())
