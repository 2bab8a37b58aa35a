"""Kafka helpers for tests on the session's broker: produce envelopes, read a topic's dead
letters by key, start a consumer group at the topics' ends, build the ingress bridge's proposal
events."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from google.protobuf.message import Message

from ssg.contracts.events.v1 import envelope_pb2
from ssg.contracts.ingress.v1 import events_pb2 as ingress
from ssg.platform.events.envelope import Origin, build_envelope, dlq_topic

INGRESS = Origin("ingress", "africa", "test-ingress")


async def produce_envelopes(
    bootstrap: str, topic: str, envelopes: Iterable[envelope_pb2.Envelope]
) -> None:
    """Send each envelope to topic, keyed by its aggregate id, one message per batch."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_batch_size=1, linger_ms=0)
    await producer.start()
    try:
        for env in envelopes:
            await producer.send_and_wait(
                topic, env.SerializeToString(), key=env.aggregate_id.encode()
            )
    finally:
        await producer.stop()


async def dead_letters(
    bootstrap: str, topic: str, key: bytes, want: int, within: float = 30.0
) -> list[Any]:
    """At least want records with key on topic's dead-letter topic (every partition, from the
    start); other tests' dead letters on the session's broker are skipped."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    found: list[Any] = []
    deadline = time.monotonic() + within
    try:
        # The dead-letter topic appears with the first dead letter of the session.
        partitions: set[int] = set()
        while not partitions:
            await consumer.topics()
            partitions = consumer.partitions_for_topic(dlq_topic(topic)) or set()
            if time.monotonic() > deadline:
                raise AssertionError(f"no dead-letter topic for {topic} after {within:g}s")
            if not partitions:
                await asyncio.sleep(0.2)
        tps = [TopicPartition(dlq_topic(topic), p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        async with asyncio.timeout(max(1.0, deadline - time.monotonic())):
            while len(found) < want:
                batch = await consumer.getmany(timeout_ms=300)
                for records in batch.values():
                    found.extend(r for r in records if r.key == key)
    finally:
        await consumer.stop()
    return found


async def start_group_at_end(bootstrap: str, group: str, topics: Iterable[str]) -> None:
    """Commit group's offsets at the current end of every partition of topics, so its consumer
    takes only what is produced from now on (not what earlier tests left on a shared topic)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        await consumer.topics()
        tps = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        if not tps:
            return
        consumer.assign(tps)
        await consumer.commit(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


def proposal_envelope(
    event: type[Message],
    proposal: Message,
    *,
    producer: str = "pm-system",
    routing_key: str = "",
    message_id: str = "",
) -> envelope_pb2.Envelope:
    """The envelope the bridge makes of proposal (an ingress.v1 body) sent by producer; its
    aggregate id names producer and external id, as the bridge's does."""
    message_id = message_id or uuid.uuid4().hex
    submission = ingress.Submission(
        producer=producer, message_id=message_id, routing_key=routing_key
    )
    submission.received_at.GetCurrentTime()
    external_id = getattr(proposal, "external_id", "") or "none"
    return build_envelope(
        INGRESS,
        f"ingress.{event.DESCRIPTOR.name}",
        f"{producer}:{external_id}",
        getattr(proposal, "revision", 0) or 1,
        event(submission=submission, proposal=proposal),
        event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{producer}/{message_id}")),
    )
