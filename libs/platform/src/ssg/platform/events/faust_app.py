"""Build a faust-streaming app from settings, for services whose workers run agents and tables.

Events are protobuf envelopes, so values (and keys, the aggregate id) travel as raw bytes and an
agent decodes them with ``decode_envelope``. Topics are never declared by faust: a service
creates its source topics and its tables' changelog topics with ``ensure_faust_topics`` before
the worker starts, with the partition count it chose (faust would otherwise use its own).

Optional settings a service's settings class may define (read with defaults, overrides win):
``faust_store`` (``memory://``; ``rocksdb://`` or ``rocksdict://`` in production, which need
their package installed), ``faust_topic_partitions`` (8), ``faust_replication`` (1),
``faust_web_port`` (0 = web server off), ``faust_web_host`` (127.0.0.1),
``faust_data_dir`` (faust's default: ``<id>-data`` in the working directory).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import faust
from faust.types import Message, StreamT

from ssg.platform.events.consumer import dead_letter_headers
from ssg.platform.events.envelope import Envelope, EnvelopeError, dlq_topic, parse_envelope
from ssg.platform.events.topics import ensure_topics
from ssg.platform.settings import ConfigError, PlatformSettings

log = logging.getLogger(__name__)

LOCAL_SESSION_TIMEOUT_SECONDS = 6.0
LOCAL_HEARTBEAT_SECONDS = 1.0


def faust_config(settings: PlatformSettings, **overrides: Any) -> dict[str, Any]:
    """The keyword arguments create_faust_app passes to faust.App (overrides win)."""
    if not settings.kafka_bootstrap:
        raise ConfigError("invalid configuration: SSG_KAFKA_BOOTSTRAP is required for faust")
    web_port = settings.faust_web_port
    config: dict[str, Any] = {
        "broker": [f"kafka://{hp.strip()}" for hp in settings.kafka_bootstrap.split(",")],
        # Values are protobuf envelopes and keys aggregate ids: faust must not re-encode them.
        "key_serializer": "raw",
        "value_serializer": "raw",
        "topic_partitions": settings.faust_topic_partitions,
        "topic_replication_factor": settings.faust_replication,
        # Topics are created up front with the partition count the service chose.
        "topic_allow_declare": False,
        # No on_leader timers are used; the leader topic would be one more topic to pre-create.
        "topic_disable_leader": True,
        "store": settings.faust_store,
        "web_enabled": web_port > 0,
        "web_port": web_port or 6066,
        "web_bind": settings.faust_web_host,
        "web_host": settings.faust_web_host,
        "consumer_auto_offset_reset": "earliest",
        "producer_acks": -1,
        "autodiscover": False,
    }
    if data_dir := settings.faust_data_dir:
        config["datadir"] = str(data_dir)
    if settings.kafka_local_profile:
        # Tansu reports end offsets per batch: one message per batch keeps changelog recovery
        # exact, and short sessions avoid its slow group (re)joins.
        config["producer_max_batch_size"] = 1
        config["producer_linger"] = 0.0
        config["broker_session_timeout"] = LOCAL_SESSION_TIMEOUT_SECONDS
        config["broker_heartbeat_interval"] = LOCAL_HEARTBEAT_SECONDS
    config.update(overrides)
    return config


def create_faust_app(settings: PlatformSettings, *, id: str, **overrides: Any) -> faust.App:
    """A faust.App named id, configured from settings (keyword overrides win)."""
    return faust.App(id, **faust_config(settings, **overrides))


def changelog_topics(app: faust.App) -> list[str]:
    """Names of the changelog topics of the app's tables (faust may not create them itself)."""
    return [table.changelog_topic.get_topic_name() for table in app.tables.values()]


async def ensure_faust_topics(
    app: faust.App, source_topics: list[str], *, bootstrap: str | None = None
) -> None:
    """Create the source topics (with .dlq twins) and the tables' changelogs before start."""
    bootstrap = bootstrap or ",".join(f"{url.host}:{url.port or 9092}" for url in app.conf.broker)
    partitions = app.conf.topic_partitions
    replication = app.conf.topic_replication_factor
    await ensure_topics(bootstrap, source_topics, partitions, replication)
    if changelogs := changelog_topics(app):
        await ensure_topics(
            bootstrap,
            changelogs,
            partitions,
            replication,
            dlq=False,
            # Changelogs only need each key's latest value.
            config={"cleanup.policy": "compact"},
        )


def decode_envelope(value: bytes | None) -> Envelope:
    """The envelope in a raw message value; EnvelopeError (with the reason) if it is not one."""
    return parse_envelope(value)


async def envelopes(app: faust.App, stream: StreamT[bytes]) -> AsyncIterator[Envelope]:
    """Iterate a raw stream as envelopes; invalid messages go to ``<topic>.dlq`` and are skipped."""
    async for value in stream:
        try:
            env = decode_envelope(value)
        except EnvelopeError as exc:
            await _dead_letter(app, stream, str(exc))
            continue
        yield env


async def _dead_letter(app: faust.App, stream: StreamT[bytes], reason: str) -> None:
    event = stream.current_event
    if event is None:
        # Cannot happen inside iteration; refuse to drop the message without a word.
        raise RuntimeError(f"invalid message outside of an event: {reason}")
    await dead_letter(app, event.message, reason)


async def dead_letter(app: faust.App, message: Message, reason: str) -> None:
    """Send message to ``<topic>.dlq`` with the reason and its origin in ``dlq-*`` headers."""
    # faust's consumer group is the app id.
    headers = dead_letter_headers(
        reason, message.topic, message.partition, message.offset, app.conf.id
    )
    await app.send(dlq_topic(message.topic), key=message.key, value=message.value, headers=headers)
    log.warning(
        "message dead-lettered",
        extra={"topic": message.topic, "offset": message.offset, "reason": reason},
    )
