"""``python -m ssg.notifications.delivery``: the nameko delivery worker (eventlet).

Scale it on the task queue's length. It reads the same SSG_* settings as the other
processes (AMQP, SMTP, signing key, retries) and serves /metrics on SSG_METRICS_PORT.
"""

from __future__ import annotations

import eventlet

# Before anything else opens a socket: every blocking call below must be green.
eventlet.monkey_patch()

import signal  # noqa: E402
import sys  # noqa: E402

from nameko.runners import ServiceRunner  # noqa: E402

from ssg.notifications.delivery.service import service_class  # noqa: E402
from ssg.notifications.domain.retry import Backoff  # noqa: E402
from ssg.notifications.queues import Topology  # noqa: E402
from ssg.notifications.settings import NotificationsSettings  # noqa: E402
from ssg.platform.logging import configure_logging  # noqa: E402
from ssg.platform.metrics import start_metrics_server  # noqa: E402
from ssg.platform.settings import ConfigError, load_settings  # noqa: E402


def build(settings: NotificationsSettings) -> ServiceRunner:
    """A nameko runner with the delivery service for settings."""
    backoff = Backoff(
        settings.retry_attempts,
        settings.retry_base_ms,
        settings.retry_multiplier,
        settings.retry_max_ms,
    )
    topology = Topology(settings.queue_prefix, tuple(backoff.delays_ms()), settings.queue_type)
    config = {
        "AMQP_URI": settings.amqp_url,
        "max_workers": settings.delivery_workers,
        "serializer": "json",
        # Long enough for the slowest SMTP or webhook exchange.
        "HEARTBEAT": 60,
    }
    runner = ServiceRunner(config)
    runner.add_service(service_class(settings, topology))
    return runner


def main() -> int:
    """Entry point; exit status 2 on bad configuration."""
    try:
        settings = load_settings(NotificationsSettings)
        if not settings.amqp_url:
            raise ConfigError("invalid configuration: SSG_AMQP_URL: required")
        settings.signing_bytes()
    except (ConfigError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(settings.service, settings.instance, settings.log_level)
    start_metrics_server(settings.metrics_host, settings.metrics_port)
    runner = build(settings)

    def stop(*_: object) -> None:
        eventlet.spawn_n(runner.stop)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    runner.start()
    runner.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
