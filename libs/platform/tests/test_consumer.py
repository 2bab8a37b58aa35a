"""The idempotent consumer on the real broker (Tansu locally) and the real MongoDB-protocol server."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pymongo
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaConnectionError
from prometheus_client import REGISTRY
from pymongo.client_session import ClientSession
from pymongo.errors import ServerSelectionTimeoutError

from ssg.contracts.diagnostics.v1.diagnostics_pb2 import EchoRequest
from ssg.platform.events.consumer import (
    Event,
    EventConsumer,
    HandlerRegistry,
    NonRetryableError,
    NotKnownYet,
    ProcessedEvents,
    RetryPolicy,
    TransientError,
    apply_if_newer,
)
from ssg.platform.events.envelope import Origin, build_envelope, dlq_topic
from ssg.platform.events.kafka import producer_options
from ssg.platform.events.topics import ensure_topics
from ssg.platform.events.worker import run_consumer
from ssg.platform.settings import PlatformSettings, load_settings
from ssg.testing.servers import free_port
from ssg.testing.waiting import eventually

SERVICE = "consumer-test"
ORIGIN = Origin(service="producer-test", instance="global", instance_id="p1")
FAST_RETRY = RetryPolicy(attempts=3, base_seconds=0.01, max_seconds=0.05, jitter=0)
NOT_PROTOBUF = b"\xff\xfe this is not a protobuf message"


def make_settings(kafka_server, **fields) -> PlatformSettings:
    values = {"kafka_bootstrap": kafka_server.bootstrap, "kafka_local_profile": kafka_server.local}
    return load_settings(PlatformSettings, service=SERVICE, instance_id="c1", **(values | fields))


def counted(aggregate_id: str, version: int = 1, event_type: str = "test.Counted"):
    return build_envelope(
        ORIGIN, event_type, aggregate_id, version, EchoRequest(message=f"{aggregate_id}@{version}")
    )


async def produce(settings, topic, messages):
    """Send (key, value) pairs in order; return each one's partition."""
    producer = AIOKafkaProducer(**producer_options(settings))
    await producer.start()
    try:
        partitions = []
        for key, value in messages:
            meta = await producer.send_and_wait(topic, value=value, key=key)
            partitions.append(meta.partition)
        return partitions
    finally:
        await producer.stop()


@contextlib.asynccontextmanager
async def running(*consumers):
    tasks = [asyncio.create_task(c.run()) for c in consumers]
    try:
        yield consumers
    finally:
        for c in consumers:
            c.request_stop()
        async with asyncio.timeout(60):
            for c in consumers:
                await c.stop()
            for task in tasks:
                await task  # surfaces any error run() raised


async def read_all(bootstrap, topic, expected, within=30.0):
    """The first expected records of a one-partition topic, read without a group."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        records: list = []
        deadline = time.monotonic() + within
        while len(records) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(tp, timeout_ms=500)
            records.extend(batch.get(tp, []))
        return records
    finally:
        await consumer.stop()


@pytest.fixture
def db(mongodb_server, unique_name):
    client: pymongo.MongoClient = pymongo.MongoClient(mongodb_server.uri(unique_name))
    yield client[unique_name]
    client.drop_database(unique_name)
    client.close()


@pytest.fixture
async def topic(kafka_server, unique_name):
    name = f"{unique_name}.thing-events.v1"
    await ensure_topics(kafka_server.bootstrap, [name], partitions=1)
    return name


def counter_handlers(db, calls=None):
    """Handlers that count events per aggregate in the `counters` read model."""
    handlers = HandlerRegistry()

    @handlers.on("test.Counted", EchoRequest)
    def count(event: Event[EchoRequest]) -> None:
        if calls is not None:
            calls.append(event.envelope.event_id)
        db.counters.update_one(
            {"_id": event.envelope.aggregate_id},
            {"$inc": {"n": 1}, "$push": {"messages": event.payload.message}},
            upsert=True,
            session=event.session,
        )

    return handlers


def make_consumer(settings, group_id, topic, db, handlers=None, **options):
    """A consumer of topic recording processed events as "counter" in db."""
    return EventConsumer(
        settings,
        group_id=group_id,
        topics=[topic],
        handlers=handlers or counter_handlers(db),
        processed=ProcessedEvents(db, "counter"),
        **options,
    )


def counters(db):
    return {d["_id"]: d["n"] for d in db.counters.find()}


def dead_lettered_metric(topic, reason):
    return REGISTRY.get_sample_value(
        "ssg_events_dead_lettered_total", {"service": SERVICE, "topic": topic, "reason": reason}
    )


def consumed_metric(topic, event_type, outcome):
    value = REGISTRY.get_sample_value(
        "ssg_events_consumed_total",
        {"service": SERVICE, "topic": topic, "event_type": event_type, "outcome": outcome},
    )
    return value or 0.0


async def test_same_event_twice_changes_read_model_once(kafka_server, db, topic, unique_name):
    settings = make_settings(kafka_server)
    env = counted("agg-1")
    await produce(settings, topic, [(b"agg-1", env.SerializeToString())] * 2)
    consumer = make_consumer(
        settings, unique_name, topic, db, counter_handlers(db), retry=FAST_RETRY
    )
    async with running(consumer):
        await eventually(lambda: sum(consumer.stats.values()) == 2, "both deliveries")
    assert counters(db) == {"agg-1": 1}
    assert consumer.stats == {"handled": 1, "duplicate": 1}
    assert db.processed_events.count_documents({"event_id": env.event_id}) == 1
    assert consumed_metric(topic, "test.Counted", "handled") == 1
    assert consumed_metric(topic, "test.Counted", "duplicate") == 1
    lag = REGISTRY.get_sample_value(
        "ssg_event_lag_seconds_count",
        {"service": SERVICE, "topic": topic, "event_type": "test.Counted"},
    )
    assert lag == 1


async def test_poison_messages_are_dead_lettered_and_the_next_is_handled(
    kafka_server, db, topic, unique_name
):
    settings = make_settings(kafka_server)
    handlers = counter_handlers(db)
    attempts = []

    @handlers.on("test.Exploded", EchoRequest)
    def explode(event: Event[EchoRequest]) -> None:
        attempts.append(event.envelope.event_id)
        db.counters.insert_one({"_id": "must-roll-back", "n": 1}, session=event.session)
        raise RuntimeError(f"boom on {event.payload.message}")

    @handlers.on("test.Refused", EchoRequest)
    def refuse(event: Event[EchoRequest]) -> None:
        attempts.append(event.envelope.event_id)
        raise NonRetryableError("cannot ever apply this")

    failing = counted("agg-bad", event_type="test.Exploded")
    refused = counted("agg-refused", event_type="test.Refused")
    unrelated = counted("agg-x", event_type="test.Unrelated")
    await produce(
        settings,
        topic,
        [
            (b"junk-key", NOT_PROTOBUF),
            (b"agg-1", counted("agg-1").SerializeToString()),
            (b"agg-bad", failing.SerializeToString()),
            (b"agg-2", counted("agg-2").SerializeToString()),
            (b"agg-x", unrelated.SerializeToString()),
            (b"agg-refused", refused.SerializeToString()),
            (b"agg-3", counted("agg-3").SerializeToString()),
        ],
    )
    consumer = make_consumer(settings, unique_name, topic, db, handlers, retry=FAST_RETRY)
    async with running(consumer):
        await eventually(lambda: sum(consumer.stats.values()) == 7, "all seven messages")
    assert consumer.stats == {"handled": 3, "dead_lettered": 3, "skipped": 1}
    assert counters(db) == {"agg-1": 1, "agg-2": 1, "agg-3": 1}
    # Retried to the bound, then given up; a NonRetryableError is tried once.
    assert attempts == [failing.event_id] * FAST_RETRY.attempts + [refused.event_id]
    assert db.processed_events.count_documents({"event_id": failing.event_id}) == 0

    dead = await read_all(kafka_server.bootstrap, dlq_topic(topic), expected=3)
    assert [r.value for r in dead] == [
        NOT_PROTOBUF,
        failing.SerializeToString(),
        refused.SerializeToString(),
    ]
    assert [r.key for r in dead] == [b"junk-key", b"agg-bad", b"agg-refused"]
    headers = [{k: v.decode() for k, v in r.headers} for r in dead]
    assert headers[0]["dlq-reason"].startswith("not an Envelope")
    assert headers[1]["dlq-reason"] == "RuntimeError: boom on agg-bad@1"
    assert headers[2]["dlq-reason"] == "NonRetryableError: cannot ever apply this"
    for h, offset in zip(headers, ["0", "2", "5"], strict=True):
        assert h["dlq-source-topic"] == topic
        assert h["dlq-source-partition"] == "0"
        assert h["dlq-source-offset"] == offset
        assert h["dlq-consumer-group"] == unique_name
        assert h["dlq-failed-at"]
    assert dead_lettered_metric(topic, "handler_failed") == 1
    assert consumed_metric(topic, "other", "skipped") == 1


async def test_restart_with_same_group_handles_nothing_twice(kafka_server, db, topic, unique_name):
    settings = make_settings(kafka_server)
    calls: list[str] = []

    def new_consumer():
        return make_consumer(
            settings, unique_name, topic, db, counter_handlers(db, calls), retry=FAST_RETRY
        )

    await produce(
        settings, topic, [(k.encode(), counted(k).SerializeToString()) for k in ("a", "b", "c")]
    )
    first = new_consumer()
    async with running(first):
        await eventually(lambda: first.stats["handled"] == 3, "first run")

    await produce(settings, topic, [(b"d", counted("d").SerializeToString())])
    second = new_consumer()
    async with running(second):
        await eventually(lambda: sum(second.stats.values()) >= 1, "second run")
    # Offsets were committed: the restarted member starts after them, not even a duplicate.
    assert second.stats == {"handled": 1}
    assert len(calls) == len(set(calls)) == 4
    assert counters(db) == {"a": 1, "b": 1, "c": 1, "d": 1}


async def test_redelivery_without_committed_offsets_is_a_duplicate(
    kafka_server, db, topic, unique_name
):
    """A crash after the transaction but before the offset commit redelivers: nothing changes."""
    settings = make_settings(kafka_server)
    await produce(
        settings, topic, [(k.encode(), counted(k).SerializeToString()) for k in ("a", "b")]
    )
    first = make_consumer(settings, f"{unique_name}-1", topic, db, counter_handlers(db))
    async with running(first):
        await eventually(lambda: first.stats["handled"] == 2, "first delivery")
    # A fresh group has no committed offsets: every event arrives again.
    replay = make_consumer(settings, f"{unique_name}-2", topic, db, counter_handlers(db))
    async with running(replay):
        await eventually(lambda: sum(replay.stats.values()) == 2, "redelivery")
    assert replay.stats == {"duplicate": 2}
    assert counters(db) == {"a": 1, "b": 1}


async def test_stop_during_backoff_leaves_the_event_for_redelivery(
    kafka_server, db, topic, unique_name
):
    settings = make_settings(kafka_server)
    env = counted("agg-1")
    await produce(settings, topic, [(b"agg-1", env.SerializeToString())])
    attempts = []
    flaky = HandlerRegistry()

    @flaky.on("test.Counted", EchoRequest)
    def fail(event: Event[EchoRequest]) -> None:
        attempts.append(event.envelope.event_id)
        raise ConnectionError("read model unavailable")

    patient = RetryPolicy(attempts=3, base_seconds=120, jitter=0)
    first = make_consumer(settings, unique_name, topic, db, flaky, retry=patient)
    task = asyncio.create_task(first.run())
    await eventually(lambda: len(attempts) == 1, "the first attempt")
    started = time.monotonic()
    async with asyncio.timeout(30):
        await first.stop()
        await task
    assert time.monotonic() - started < patient.base_seconds, "stop must not wait out the backoff"
    assert first.stats == {"abandoned": 1}

    # Not committed and not dead-lettered: the next member of the group gets it again.
    second = make_consumer(settings, unique_name, topic, db, counter_handlers(db))
    async with running(second):
        await eventually(lambda: second.stats["handled"] == 1, "the redelivery")
    assert counters(db) == {"agg-1": 1}


async def test_two_members_of_a_group_share_partitions(kafka_server, db, unique_name):
    topic = f"{unique_name}.shared-events.v1"
    await ensure_topics(kafka_server.bootstrap, [topic], partitions=2)
    settings = make_settings(kafka_server)
    members = [
        make_consumer(settings, unique_name, topic, db, counter_handlers(db)) for _ in range(2)
    ]
    everything = {TopicPartition(topic, 0), TopicPartition(topic, 1)}

    def balanced():
        a, b = (m.assignment() for m in members)
        return len(a) == 1 and len(b) == 1 and a | b == everything

    async with running(*members):
        await eventually(balanced, "one partition per member")
        keys = [f"agg-{i}" for i in range(12)]
        partitions = await produce(
            settings, topic, [(k.encode(), counted(k).SerializeToString()) for k in keys]
        )
        await eventually(
            lambda: sum(m.stats["handled"] for m in members) == len(keys), "all twelve events"
        )
        owned = [next(iter(m.assignment())).partition for m in members]
    assert set(partitions) == {0, 1}, "the keys should spread over both partitions"
    for member, partition in zip(members, owned, strict=True):
        assert member.stats == {"handled": partitions.count(partition)}
    assert counters(db) == dict.fromkeys(keys, 1)


async def test_apply_if_newer_keeps_the_latest_version(db):
    things = db.things
    assert apply_if_newer(things, "s1", 2, {"title": "v2"})
    assert not apply_if_newer(things, "s1", 1, {"title": "v1"}), "an older version is ignored"
    assert not apply_if_newer(things, "s1", 2, {"title": "v2 again"}), "a repeat is ignored"
    assert things.find_one({"_id": "s1"}) == {"_id": "s1", "title": "v2", "aggregate_version": 2}
    assert apply_if_newer(things, "s1", 3, {"title": "v3"})
    assert things.find_one({"_id": "s1"})["title"] == "v3"


async def test_dependency_outage_is_waited_out_not_dead_lettered(
    kafka_server, db, topic, unique_name
):
    settings = make_settings(kafka_server)
    env = counted("agg-1")
    await produce(settings, topic, [(b"agg-1", env.SerializeToString())])
    outage_calls: list[str] = []
    handlers = HandlerRegistry()

    @handlers.on("test.Counted", EchoRequest)
    def count_after_outage(event: Event[EchoRequest]) -> None:
        # More failures than the retry policy allows for a bad event.
        if len(outage_calls) < FAST_RETRY.attempts + 2:
            outage_calls.append(event.envelope.event_id)
            raise TransientError("read model store unavailable")
        db.counters.update_one(
            {"_id": event.envelope.aggregate_id},
            {"$inc": {"n": 1}},
            upsert=True,
            session=event.session,
        )

    consumer = make_consumer(settings, unique_name, topic, db, handlers, retry=FAST_RETRY)
    async with running(consumer):
        await eventually(lambda: consumer.stats["handled"] == 1, "the event after the outage")
    assert len(outage_calls) == FAST_RETRY.attempts + 2
    assert counters(db) == {"agg-1": 1}
    assert "dead_lettered" not in consumer.stats
    assert await read_all(kafka_server.bootstrap, dlq_topic(topic), expected=1, within=2) == []


class FlakyProcessedEvents(ProcessedEvents):
    """The real processed-events store whose first reads fail as during a MongoDB outage."""

    def __init__(self, db, name: str, failures: int) -> None:
        super().__init__(db, name)
        self.failures = failures

    def already(self, event_id: str, session: ClientSession | None = None) -> bool:
        if self.failures > 0:
            self.failures -= 1
            raise ServerSelectionTimeoutError("no primary available")
        return super().already(event_id, session)


async def test_an_outage_during_the_duplicate_check_is_waited_out(
    kafka_server, db, topic, unique_name
):
    settings = make_settings(kafka_server)
    await produce(settings, topic, [(b"agg-1", counted("agg-1").SerializeToString())])
    processed = FlakyProcessedEvents(db, "counter", failures=3)
    consumer = EventConsumer(
        settings,
        group_id=unique_name,
        topics=[topic],
        handlers=counter_handlers(db),
        processed=processed,
        retry=FAST_RETRY,
    )
    async with running(consumer):
        await eventually(lambda: consumer.stats["handled"] == 1, "the event after the outage")
    assert processed.failures == 0 and counters(db) == {"agg-1": 1}
    assert "dead_lettered" not in consumer.stats


def awaiting_handlers(db):
    """counter_handlers plus "test.Awaits", whose payload names a thing that must be in the
    `known` collection first (NotKnownYet until it is)."""
    handlers = counter_handlers(db)

    @handlers.on("test.Awaits", EchoRequest)
    def awaits(event: Event[EchoRequest]) -> None:
        name = event.payload.message
        if db.known.find_one({"_id": name}, session=event.session) is None:
            raise NotKnownYet(f"nothing called {name} yet")
        db.counters.update_one(
            {"_id": event.envelope.aggregate_id},
            {"$inc": {"n": 1}},
            upsert=True,
            session=event.session,
        )

    return handlers


def awaiting(aggregate_id: str, name: str):
    return build_envelope(ORIGIN, "test.Awaits", aggregate_id, 1, EchoRequest(message=name))


async def produce_to(settings, topic, messages):
    """Send (partition, key, envelope) triples in order."""
    producer = AIOKafkaProducer(**producer_options(settings))
    await producer.start()
    try:
        for partition, key, env in messages:
            await producer.send_and_wait(
                topic, value=env.SerializeToString(), key=key, partition=partition
            )
    finally:
        await producer.stop()


def waiting_gauge(topic):
    return REGISTRY.get_sample_value("ssg_events_waiting", {"service": SERVICE, "topic": topic})


async def test_an_event_not_known_yet_holds_only_its_partition_until_it_is(
    kafka_server, db, unique_name
):
    topic = f"{unique_name}.waits-events.v1"
    await ensure_topics(kafka_server.bootstrap, [topic], partitions=2)
    settings = make_settings(kafka_server, event_wait_seconds=60)
    waits = awaiting("w", "thing-1")
    await produce_to(
        settings,
        topic,
        [
            (0, b"w", waits),
            (0, b"behind", counted("behind")),
            (1, b"b", counted("b")),
            (1, b"c", counted("c")),
        ],
    )
    consumer = make_consumer(
        settings, unique_name, topic, db, awaiting_handlers(db), retry=FAST_RETRY
    )
    async with running(consumer):
        # The other partition goes on; the event behind the waiting one stays behind it.
        await eventually(lambda: consumer.stats["handled"] == 2, "partition 1")
        await eventually(lambda: consumer.stats["waiting"] >= 3, "retries of the waiting event")
        assert counters(db) == {"b": 1, "c": 1}
        assert waiting_gauge(topic) == 1
        await produce_to(settings, topic, [(1, b"d", counted("d"))])
        await eventually(lambda: counters(db).get("d") == 1, "a new event on partition 1")

        db.known.insert_one({"_id": "thing-1"})
        await eventually(lambda: consumer.stats["handled"] == 5, "the held partition")
    assert counters(db) == {"w": 1, "behind": 1, "b": 1, "c": 1, "d": 1}
    assert "dead_lettered" not in consumer.stats
    assert db.processed_events.count_documents({"event_id": waits.event_id}) == 1
    assert waiting_gauge(topic) == 0
    # Retries are counted as waits, not as consumed events.
    assert consumed_metric(topic, "test.Awaits", "handled") == 1
    assert consumed_metric(topic, "test.Awaits", "waiting") == 0


async def test_an_event_still_not_known_after_the_bound_is_dead_lettered_and_the_next_handled(
    kafka_server, db, topic, unique_name
):
    bound = 1.5
    settings = make_settings(kafka_server, event_wait_seconds=bound)
    never = awaiting("n", "never-1")
    await produce_to(settings, topic, [(0, b"n", never), (0, b"next", counted("next"))])
    consumer = make_consumer(
        settings, unique_name, topic, db, awaiting_handlers(db), retry=FAST_RETRY
    )
    started = time.monotonic()
    async with running(consumer):
        await eventually(lambda: consumer.stats["handled"] == 1, "the event behind it")
        # Dead-lettered before the next one was handled.
        waited = time.monotonic() - started
    assert waited >= bound
    assert consumer.stats["dead_lettered"] == 1 and consumer.stats["waiting"] >= 2
    assert counters(db) == {"next": 1}
    (dead,) = await read_all(kafka_server.bootstrap, dlq_topic(topic), expected=1)
    assert dead.value == never.SerializeToString()
    reason = dict(dead.headers)["dlq-reason"].decode()
    assert reason.startswith("NotKnownYet: nothing called never-1 yet (still so after")
    assert dead_lettered_metric(topic, "not_known_yet") == 1


async def test_without_a_wait_an_event_not_known_yet_is_dead_lettered_at_once(
    kafka_server, db, topic, unique_name
):
    settings = make_settings(kafka_server, event_wait_seconds=0)
    await produce_to(settings, topic, [(0, b"n", awaiting("n", "never-2"))])
    consumer = make_consumer(
        settings, unique_name, topic, db, awaiting_handlers(db), retry=FAST_RETRY
    )
    async with running(consumer):
        await eventually(lambda: consumer.stats["dead_lettered"] == 1, "the dead letter")
    assert consumer.stats == {"dead_lettered": 1}
    (dead,) = await read_all(kafka_server.bootstrap, dlq_topic(topic), expected=1)
    assert dict(dead.headers)["dlq-reason"] == b"NotKnownYet: nothing called never-2 yet"


async def test_consumers_run_side_by_side_and_one_failing_stops_the_others(
    kafka_server, db, topic, unique_name
):
    stopped: list[str] = []

    async def beside(stop: asyncio.Event) -> None:
        # A periodic task (a sweep) runs until the consumers' stop.
        await stop.wait()
        stopped.append("task")

    settings = make_settings(kafka_server, metrics_port=free_port())
    healthy = make_consumer(settings, unique_name, topic, db)
    # Nothing listens there: this one fails as it starts.
    unreachable = make_settings(
        kafka_server, kafka_bootstrap=f"127.0.0.1:{free_port()}", metrics_port=0
    )
    failing = make_consumer(unreachable, f"{unique_name}-2", topic, db)
    # The healthy one alone would run until stopped: returning at all means it was stopped.
    async with asyncio.timeout(60):
        with pytest.raises(KafkaConnectionError):
            await run_consumer(settings, healthy, failing, tasks=[beside])
    assert healthy.assignment() == set()
    assert stopped == ["task"]
    await healthy.stop()  # returns at once: its run() has ended


async def test_a_waiting_event_survives_a_rebalance_and_is_handled_once(
    kafka_server, db, unique_name
):
    topic = f"{unique_name}.rebalanced-events.v1"
    await ensure_topics(kafka_server.bootstrap, [topic], partitions=2)
    settings = make_settings(kafka_server, event_wait_seconds=120)
    waits = awaiting("w", "thing-2")
    await produce_to(settings, topic, [(0, b"w", waits), (0, b"behind", counted("behind"))])
    first = make_consumer(settings, unique_name, topic, db, awaiting_handlers(db))
    second = make_consumer(settings, unique_name, topic, db, awaiting_handlers(db))
    everything = {TopicPartition(topic, 0), TopicPartition(topic, 1)}
    async with running(first):
        await eventually(lambda: first.stats["waiting"] >= 2, "the event to wait")
        async with running(second):
            # The group rebalances while partition 0 is held; whoever owns it now carries on.
            await eventually(
                lambda: (
                    len(second.assignment()) == 1
                    and first.assignment() | second.assignment() == everything
                ),
                "one partition per member",
                60,
            )
            db.known.insert_one({"_id": "thing-2"})
            await eventually(
                lambda: first.stats["handled"] + second.stats["handled"] == 2, "the held partition"
            )
    assert counters(db) == {"w": 1, "behind": 1}
    assert "dead_lettered" not in first.stats + second.stats
    assert db.processed_events.count_documents({"event_id": waits.event_id}) == 1
