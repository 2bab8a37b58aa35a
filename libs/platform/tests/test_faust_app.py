"""The faust app factory: its configuration, and a real worker counting envelopes on the broker."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from ssg.contracts.diagnostics.v1.diagnostics_pb2 import EchoRequest
from ssg.platform.events.envelope import EnvelopeError, Origin, build_envelope, dlq_topic
from ssg.platform.events.faust_app import (
    changelog_topics,
    create_faust_app,
    decode_envelope,
    ensure_faust_topics,
    envelopes,
)
from ssg.platform.events.kafka import producer_options
from ssg.platform.settings import ConfigError, PlatformSettings, load_settings
from ssg.testing.waiting import eventually

ORIGIN = Origin(service="producer-test", instance="global", instance_id="p1")


def settings_for(bootstrap="127.0.0.1:9092", local=False, cls=PlatformSettings, **extra):
    return load_settings(
        cls, service="faust-test", kafka_bootstrap=bootstrap, kafka_local_profile=local, **extra
    )


def test_production_config_keeps_kafka_defaults():
    app = create_faust_app(settings_for("k1:9092,k2:9093"), id="svc-worker")
    conf = app.conf
    assert [str(u) for u in conf.broker] == ["kafka://k1:9092", "kafka://k2:9093"]
    assert (conf.key_serializer, conf.value_serializer) == ("raw", "raw")
    assert conf.topic_allow_declare is False
    assert conf.store.scheme == "memory"
    assert conf.web_enabled is False
    # The Tansu work-arounds stay out of production.
    assert conf.producer_max_batch_size != 1
    assert conf.broker_session_timeout != 6.0


def test_local_profile_applies_the_tansu_workarounds():
    conf = create_faust_app(settings_for(local=True), id="svc-worker").conf
    assert conf.producer_max_batch_size == 1
    assert conf.broker_session_timeout == 6.0
    assert conf.broker_heartbeat_interval == 1.0


def test_optional_settings_and_overrides():
    class WorkerSettings(PlatformSettings):
        faust_store: str = "rocksdb://"
        faust_web_port: int = 6070
        faust_topic_partitions: int = 4

    settings = settings_for(cls=WorkerSettings)
    conf = create_faust_app(settings, id="svc-worker").conf
    assert conf.store.scheme == "rocksdb"
    assert (conf.web_enabled, conf.web_port, conf.web_bind) == (True, 6070, "127.0.0.1")
    assert conf.topic_partitions == 4
    overridden = create_faust_app(settings, id="svc-worker", topic_partitions=2).conf
    assert overridden.topic_partitions == 2


def test_missing_bootstrap_fails_fast_by_name():
    with pytest.raises(ConfigError, match="SSG_KAFKA_BOOTSTRAP"):
        create_faust_app(settings_for(""), id="svc-worker")


def test_decode_envelope_round_trip_and_rejection():
    env = build_envelope(ORIGIN, "test.Counted", "a", 1, EchoRequest(message="hi"))
    assert decode_envelope(env.SerializeToString()) == env
    with pytest.raises(EnvelopeError):
        decode_envelope(b"\xff junk")


def counting_app(settings, app_id, topic, datadir):
    """An app whose agent counts envelopes per aggregate id in a table."""
    app = create_faust_app(settings, id=app_id, topic_partitions=1, datadir=str(datadir))
    counts = app.Table("counts", default=int)

    @app.agent(app.topic(topic))
    async def count(stream):
        async for env in envelopes(app, stream):
            counts[env.aggregate_id] += 1

    return app, counts


async def send(settings, topic, messages):
    producer = AIOKafkaProducer(**producer_options(settings))
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(topic, value=value, key=key)
    finally:
        await producer.stop()


def envelope_bytes(aggregate_id):
    return build_envelope(
        ORIGIN, "test.Counted", aggregate_id, 1, EchoRequest()
    ).SerializeToString()


def worker_state(app):
    """What a worker was doing, for a timeout's message: assignment, recovery, positions."""
    consumer = app.consumer
    assigned = sorted(str(tp) for tp in consumer.assignment())
    recovery = app.tables.recovery
    return (
        f"assigned={assigned} in_recovery={recovery.in_recovery} "
        f"recovery_completed={recovery.completed.is_set()} "
        f"remaining={recovery.active_remaining_total()} rebalancing={app.rebalancing}"
    )


async def run_until(app, predicate, what, within=60.0):
    """Start the worker in this process, wait for predicate, and always stop it."""
    await app.start()
    try:
        try:
            await eventually(predicate, what, within=within)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; worker: {worker_state(app)}") from None
    finally:
        # Stopped here, well before the session's broker goes away.
        async with asyncio.timeout(30):
            await app.stop()


# The second worker re-joins the group (Tansu: ~11 s after a clean stop) and recovers the table
# before it consumes: on a loaded machine that can take well over the first worker's time.
@pytest.mark.timeout(300)
async def test_agent_counts_envelopes_into_a_table(kafka_server, unique_name, tmp_path):
    settings = settings_for(kafka_server.bootstrap, kafka_server.local)
    topic = f"{unique_name}.thing-events.v1"
    app, counts = counting_app(settings, unique_name, topic, tmp_path / "first")
    await ensure_faust_topics(app, [topic])
    assert changelog_topics(app) == [f"{unique_name}-counts-changelog"]
    await send(
        settings,
        topic,
        [
            (b"a", envelope_bytes("a")),
            (b"b", envelope_bytes("b")),
            (b"junk", b"\xff not an envelope"),
            (b"a", envelope_bytes("a")),
        ],
    )
    await run_until(app, lambda: dict(counts.items()) == {"a": 2, "b": 1}, "the counts")

    # The invalid message went to the DLQ with its reason, not silently away.
    dlq = AIOKafkaConsumer(bootstrap_servers=kafka_server.bootstrap)
    await dlq.start()
    try:
        tp = TopicPartition(dlq_topic(topic), 0)
        dlq.assign([tp])
        await dlq.seek_to_beginning(tp)
        batch = await dlq.getmany(tp, timeout_ms=10_000)
    finally:
        await dlq.stop()
    [dead] = batch[tp]
    assert dead.value == b"\xff not an envelope"
    assert dict(dead.headers)["dlq-reason"].startswith(b"not an Envelope")

    # A new worker of the same app recovers the table from its changelog and resumes after
    # the committed offset: the old events are not counted again.
    await send(settings, topic, [(b"c", envelope_bytes("c"))])
    again, restored = counting_app(settings, unique_name, topic, tmp_path / "second")
    await run_until(again, lambda: restored["c"] == 1, "the new event", within=150.0)
    assert dict(restored.items()) == {"a": 2, "b": 1, "c": 1}
