"""Create event topics (and their dead-letter twins) before any producer, consumer or faust worker.

Topics are created explicitly rather than auto-created on first use: auto-creation picks the
broker's (or faust's) default partition count, and the local Tansu broker needs topics to
exist before consumers join. Creating a topic that already exists is not an error.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from ssg.platform.events.envelope import dlq_topic

log = logging.getLogger(__name__)


class TopicAdminError(RuntimeError):
    """The broker refused to create a topic for a reason other than it already existing."""


def with_dlq(names: Iterable[str]) -> list[str]:
    """Each topic followed by its ``.dlq`` twin, in order, without duplicates."""
    out: list[str] = []
    for name in names:
        for candidate in (name, dlq_topic(name)):
            if candidate not in out:
                out.append(candidate)
    return out


async def ensure_topics(
    bootstrap: str,
    names: Iterable[str],
    partitions: int = 1,
    replication: int = 1,
    *,
    dlq: bool = True,
    config: Mapping[str, str] | None = None,
    timeout_ms: int = 30_000,
) -> list[str]:
    """Create each topic (and its ``.dlq`` twin when dlq=True); return the names newly created."""
    if partitions < 1 or replication < 1:
        raise ValueError("partitions and replication must be at least 1")
    wanted = with_dlq(names) if dlq else list(dict.fromkeys(names))
    if not wanted:
        return []
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms)
    await admin.start()
    try:
        response = await admin.create_topics(
            [
                NewTopic(name, partitions, replication, topic_configs=dict(config or {}))
                for name in wanted
            ],
            timeout_ms=timeout_ms,
        )
    finally:
        await admin.close()
    created: list[str] = []
    failures: list[str] = []
    # The response lists one (topic, error_code, ...) entry per requested topic.
    for entry in response.topic_errors:
        topic, code = entry[0], entry[1]
        if code == 0:
            created.append(topic)
        elif code != TopicAlreadyExistsError.errno:
            error: type[KafkaError] = for_code(code)
            message = entry[2] if len(entry) > 2 and entry[2] else error.__name__
            failures.append(f"{topic}: {message}")
    if failures:
        raise TopicAdminError("could not create topics: " + "; ".join(failures))
    if created:
        log.info("created topics", extra={"topics": created, "partitions": partitions})
    return created
