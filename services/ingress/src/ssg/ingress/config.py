"""The nameko config of the bridge: its settings and shared objects under keys of their own."""

from __future__ import annotations

from typing import Any

from ssg.ingress.health import Health
from ssg.ingress.settings import IngressSettings

SETTINGS_KEY = "INGRESS_SETTINGS"
HEALTH_KEY = "INGRESS_HEALTH"
REQUEUE_DELAY_KEY = "INGRESS_REQUEUE_DELAY"
ACK_BATCH_KEY = "INGRESS_ACK_BATCH"


def nameko_config(settings: IngressSettings, health: Health) -> dict[str, Any]:
    """What ``ServiceContainer`` reads: AMQP URI, worker count, heartbeat, and ours."""
    return {
        "AMQP_URI": settings.amqp_url,
        "max_workers": settings.max_workers,
        "HEARTBEAT": settings.amqp_heartbeat_seconds,
        SETTINGS_KEY: settings,
        HEALTH_KEY: health,
        REQUEUE_DELAY_KEY: settings.requeue_delay_seconds,
        ACK_BATCH_KEY: settings.amqp_ack_batch,
    }
