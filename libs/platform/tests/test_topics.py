"""Topic administration against the real broker."""

from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from ssg.platform.events.topics import ensure_topics, with_dlq


def test_with_dlq_pairs_each_topic_once():
    assert with_dlq(["a.b-events.v1", "a.b-events.v1", "c.d-events.v1"]) == [
        "a.b-events.v1",
        "a.b-events.v1.dlq",
        "c.d-events.v1",
        "c.d-events.v1.dlq",
    ]


async def _partitions(bootstrap: str, names: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    return {t["topic"]: len(t["partitions"]) for t in described if t["error_code"] == 0}


async def test_creates_topic_and_dlq_twin_then_tolerates_existing(kafka_server, unique_name):
    topic = f"{unique_name}.x-events.v1"
    created = await ensure_topics(kafka_server.bootstrap, [topic], partitions=3)
    assert created == [topic, f"{topic}.dlq"]
    assert await _partitions(kafka_server.bootstrap, [topic, f"{topic}.dlq"]) == {
        topic: 3,
        f"{topic}.dlq": 3,
    }
    # A second service start: nothing new, no error.
    assert await ensure_topics(kafka_server.bootstrap, [topic], partitions=3) == []


async def test_dlq_twin_is_optional(kafka_server, unique_name):
    topic = f"{unique_name}-changelog"
    assert await ensure_topics(kafka_server.bootstrap, [topic], dlq=False) == [topic]
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_server.bootstrap)
    await admin.start()
    try:
        # Listing all topics, not describing one: a metadata request naming a missing topic
        # makes Tansu auto-create it.
        names = await admin.list_topics()
    finally:
        await admin.close()
    assert topic in names
    assert f"{topic}.dlq" not in names


async def test_rejects_zero_partitions(kafka_server, unique_name):
    with pytest.raises(ValueError):
        await ensure_topics(kafka_server.bootstrap, [unique_name], partitions=0)
