"""``python -m ssg.ingress``: the AMQP ingress bridge (a nameko service on eventlet).

eventlet must patch the standard library before anything opens a socket or a thread, so the
patch comes first. This process imports no grpcio and no MongoDB driver (tests/test_imports.py).
"""

import eventlet

eventlet.monkey_patch()

import logging  # noqa: E402
import sys  # noqa: E402

from nameko.cli.run import run  # noqa: E402

from ssg.ingress.config import nameko_config  # noqa: E402
from ssg.ingress.health import Health  # noqa: E402
from ssg.ingress.service import IngressBridge  # noqa: E402
from ssg.ingress.settings import IngressSettings  # noqa: E402
from ssg.platform.logging import configure_logging  # noqa: E402
from ssg.platform.metrics import start_metrics_server  # noqa: E402
from ssg.platform.settings import ConfigError, load_settings  # noqa: E402

log = logging.getLogger("ssg.ingress")


def main() -> int:
    """Entry point; exit status 2 on bad configuration."""
    try:
        settings = load_settings(IngressSettings)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(settings.service, settings.instance, settings.log_level)
    health = Health(kafka_bootstrap=settings.kafka_bootstrap)
    start_metrics_server(settings.metrics_host, settings.metrics_port, healthy=health.healthy)
    log.info(
        "ingress bridge starting",
        extra={"producers": sorted(settings.producers), "max_workers": settings.max_workers},
    )
    run([IngressBridge], nameko_config(settings, health))
    return 0


if __name__ == "__main__":
    sys.exit(main())
