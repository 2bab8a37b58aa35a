"""aiokafka client options from settings, with the local broker's quirks applied only when asked."""

from __future__ import annotations

from typing import Any

from ssg.platform.settings import PlatformSettings


def producer_options(settings: PlatformSettings) -> dict[str, Any]:
    """Keyword arguments for AIOKafkaProducer: acks=all, ordered per key."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "client_id": f"{settings.service}-{settings.instance_id}",
        "acks": "all",
        "linger_ms": 5,
        "request_timeout_ms": 30_000,
    }
    if settings.kafka_local_profile:
        # Tansu reports end offsets per batch; one message per batch keeps offsets exact.
        options["max_batch_size"] = 1
        options["linger_ms"] = 0
        options["enable_idempotence"] = False
    else:
        # One in-flight request per connection would be needed for strict order without it.
        options["enable_idempotence"] = True
    return options


def consumer_options(settings: PlatformSettings, group_id: str) -> dict[str, Any]:
    """Keyword arguments for AIOKafkaConsumer in a consumer group, committing manually."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "client_id": f"{settings.service}-{settings.instance_id}",
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "isolation_level": "read_committed",
    }
    if settings.kafka_local_profile:
        # Tansu: a join waits ~3 s and a re-join ~11 s unless sessions are short.
        options["session_timeout_ms"] = 6_000
        options["heartbeat_interval_ms"] = 1_000
        options["isolation_level"] = "read_uncommitted"
    return options
