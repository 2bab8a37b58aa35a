"""The outbox relay against real SecantusDB and Tansu: crash mid-batch, broker outage, lease."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest
from aiokafka import AIOKafkaConsumer
from prometheus_client import REGISTRY

from ssg.contracts.diagnostics.v1.diagnostics_pb2 import EchoRequest
from ssg.platform.events.envelope import Origin, build_envelope, parse_envelope
from ssg.platform.events.outbox import Outbox, UnitOfWork, write_with_events
from ssg.platform.events.relay import OutboxRelay, RelaySettings
from ssg.platform.events.topics import ensure_topics
from ssg.platform.mongo import make_client
from ssg.platform.settings import PlatformSettings
from ssg.testing import servers

SERVICE = "outbox-test"
ORIGIN = Origin(SERVICE, "global", "test-1")
TOPIC = "diagnostics.echo-events.v1"


async def eventually(predicate, within: float, what: str):
    """Poll predicate (sync or async) until truthy; fail after within seconds."""
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {within}s")
        await asyncio.sleep(0.05)


def write_events(client, db, aggregates: list[str], versions: range, per_txn: int = 300) -> list:
    """Write events round-robin over aggregates, versions in order, a few hundred per transaction."""
    envs = [
        build_envelope(ORIGIN, "diagnostics.EchoRequested", agg, v, EchoRequest(message=agg))
        for v in versions
        for agg in aggregates
    ]
    for start in range(0, len(envs), per_txn):
        chunk = envs[start : start + per_txn]

        def insert(uow: UnitOfWork, chunk=chunk) -> None:
            for env in chunk:
                uow.add(TOPIC, env)

        write_with_events(client, db, insert)
    return envs


async def consume(bootstrap: str, want: set[str], within: float = 60.0) -> list:
    """Read the topic from the beginning until every wanted event id was seen."""
    consumer = AIOKafkaConsumer(
        TOPIC, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    seen: list = []
    ids: set[str] = set()
    deadline = time.monotonic() + within
    try:
        while not want <= ids and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for messages in batch.values():
                for msg in messages:
                    env = parse_envelope(msg.value)
                    headers = dict(msg.headers)
                    assert msg.key == env.aggregate_id.encode()
                    assert headers["event_type"] == env.event_type.encode()
                    assert headers["trace_id"] == env.trace_id.encode()
                    seen.append((env.aggregate_id, env.aggregate_version, env.event_id))
                    ids.add(env.event_id)
    finally:
        await consumer.stop()
    return seen


def check_per_aggregate_order(seen: list, envs: list) -> int:
    """Every event present; per aggregate, first deliveries exactly in version order. Returns the
    number of redeliveries (duplicates), which at-least-once allows."""
    want = {env.event_id: (env.aggregate_id, env.aggregate_version) for env in envs}
    missing = set(want) - {event_id for _, _, event_id in seen}
    assert not missing, f"{len(missing)} events never reached Kafka"
    expected_next: dict[str, int] = {}
    for env in envs:
        expected_next.setdefault(env.aggregate_id, env.aggregate_version)
        expected_next[env.aggregate_id] = min(
            expected_next[env.aggregate_id], env.aggregate_version
        )
    delivered: set[str] = set()
    duplicates = 0
    for aggregate, version, event_id in seen:
        if event_id not in want:
            continue
        if event_id in delivered:
            duplicates += 1  # a redelivery of something already delivered
            continue
        assert version == expected_next[aggregate], (
            f"{aggregate}: version {version} first delivered before {expected_next[aggregate]}"
        )
        expected_next[aggregate] = version + 1
        delivered.add(event_id)
    return duplicates


def relay_settings(uri: str, bootstrap: str, local: bool, **extra) -> RelaySettings:
    values = {
        "service": SERVICE,
        "mongodb_uri": uri,
        "kafka_bootstrap": bootstrap,
        "kafka_local_profile": local,
        "outbox_lease_seconds": 3.0,
        "outbox_publish_timeout_seconds": 1.0,
        "outbox_backoff_initial_seconds": 0.05,
        "outbox_backoff_max_seconds": 0.5,
        "outbox_metrics_interval_seconds": 0.1,
        "outbox_batch_size": 100,
        **extra,
    }
    return RelaySettings(**values)


@pytest.fixture
def mongo(mongodb_server, unique_name):
    client = make_client(
        PlatformSettings(service=SERVICE, mongodb_uri=mongodb_server.uri(unique_name))
    )
    db = client.get_default_database()
    Outbox(db).ensure_indexes()
    yield client, db
    client.drop_database(unique_name)
    client.close()


def unsent(db) -> int:
    return db.outbox.count_documents({"sent_at": None})


def all_sent(db) -> bool:
    # A point query on the index: cheap enough to poll without slowing the relay down.
    return db.outbox.find_one({"sent_at": None}, {"_id": 1}) is None


def some_sent(db) -> bool:
    return db.outbox.find_one({"sent_at": {"$ne": None}}, {"_id": 1}) is not None


def start_relay_process(uri: str, bootstrap: str, local: bool, log_path) -> subprocess.Popen:
    env = {
        **os.environ,
        "SSG_SERVICE": SERVICE,
        "SSG_MONGODB_URI": uri,
        "SSG_KAFKA_BOOTSTRAP": bootstrap,
        "SSG_KAFKA_LOCAL_PROFILE": "true" if local else "false",
        "SSG_METRICS_PORT": "0",
        "SSG_OUTBOX_BATCH_SIZE": "250",
        "SSG_OUTBOX_LEASE_SECONDS": "3",
        "SSG_OUTBOX_PUBLISH_TIMEOUT_SECONDS": "1",
    }
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "ssg.platform.events.relay"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


@pytest.mark.timeout(300)  # 3000 rows through SecantusDB take ~45 s here
async def test_relay_killed_mid_batch_loses_nothing_and_keeps_order(
    mongo, mongodb_server, kafka_server, unique_name, tmp_path
):
    client, db = mongo
    await ensure_topics(kafka_server.bootstrap, [TOPIC], partitions=3, dlq=False)
    aggregates = [f"{unique_name}-agg-{i:02d}" for i in range(30)]
    envs = write_events(client, db, aggregates, range(1, 101))
    assert unsent(db) == 3000
    uri = mongodb_server.uri(unique_name)
    log_path = tmp_path / "relay.log"

    first = start_relay_process(uri, kafka_server.bootstrap, kafka_server.local, log_path)
    try:
        # Kill it once some rows are marked sent and others are not: mid-run, mid-batch.
        await eventually(lambda: some_sent(db) or first.poll() is not None, 60, "first marks")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(10)
    left_at_kill = unsent(db)
    assert first.returncode == -signal.SIGKILL, log_path.read_text()
    assert 0 < left_at_kill < 3000, "the relay was not killed mid-run"

    second = start_relay_process(uri, kafka_server.bootstrap, kafka_server.local, log_path)
    try:
        # It must wait out the dead relay's lease, then publish the rest.
        await eventually(lambda: all_sent(db) or second.poll() is not None, 120, "all rows sent")
        assert second.poll() is None, log_path.read_text()[-3000:]
        second.send_signal(signal.SIGTERM)
        await eventually(lambda: second.poll() is not None, 20, "relay exit on SIGTERM")
    finally:
        if second.poll() is None:
            second.kill()
            second.wait(10)
    assert second.returncode == 0, log_path.read_text()[-3000:]
    # A clean stop hands the lease back at once.
    assert db.outbox_lease.find_one()["holder"] is None

    seen = await consume(kafka_server.bootstrap, {env.event_id for env in envs})
    duplicates = check_per_aggregate_order(seen, envs)
    # At least once: at most the rows acknowledged but unmarked at the kill come again.
    assert duplicates <= left_at_kill
    assert '"msg": "outbox lease acquired"' in log_path.read_text()


async def test_relay_retries_while_the_broker_is_down_and_publishes_when_it_returns(
    mongo, mongodb_server, tmp_path, unique_name
):
    client, db = mongo
    broker = servers.start_kafka(tmp_path)
    bootstrap = f"{servers.LOOPBACK}:{broker.port}"
    stop = asyncio.Event()
    relay = OutboxRelay.from_settings(
        relay_settings(mongodb_server.uri(unique_name), bootstrap, True), client
    )

    def failures() -> float:
        sample = REGISTRY.get_sample_value(
            "ssg_outbox_publish_failures_total", {"service": SERVICE}
        )
        return sample or 0.0

    task = None
    try:
        await ensure_topics(bootstrap, [TOPIC], partitions=2, dlq=False)
        aggregates = ["a", "b"]
        write_events(client, db, aggregates, range(1, 11))
        task = asyncio.create_task(relay.run(stop))
        await eventually(lambda: all_sent(db), 30, "first events sent")

        broker.stop()
        later = write_events(client, db, aggregates, range(11, 21))
        before = failures()
        await eventually(lambda: failures() >= before + 2, 30, "failed attempts while down")
        assert unsent(db) == 20  # nothing is marked sent while the broker is away

        # Same port, empty memory: the topic has to be created again.
        broker = servers.start_kafka(tmp_path, port=broker.port)
        await ensure_topics(bootstrap, [TOPIC], partitions=2, dlq=False)
        await eventually(lambda: all_sent(db), 60, "events sent after the broker returned")
        seen = await consume(bootstrap, {env.event_id for env in later})
        check_per_aggregate_order(seen, later)
        assert REGISTRY.get_sample_value("ssg_outbox_backlog", {"service": SERVICE}) is not None
    finally:
        stop.set()
        if task is not None:
            await asyncio.wait_for(task, 30)
        broker.stop()


async def test_lease_keeps_a_second_relay_idle_until_the_first_lets_go(
    mongo, mongodb_server, kafka_server, unique_name
):
    client, db = mongo
    await ensure_topics(kafka_server.bootstrap, [TOPIC], partitions=3, dlq=False)
    # A long lease: here the hand-over must come from the release, not from expiry.
    settings = relay_settings(
        mongodb_server.uri(unique_name),
        kafka_server.bootstrap,
        kafka_server.local,
        outbox_lease_seconds=10.0,
    )
    first, second = (OutboxRelay.from_settings(settings, client) for _ in range(2))
    stop_first, stop_second = asyncio.Event(), asyncio.Event()
    published_before = (
        REGISTRY.get_sample_value("ssg_outbox_published_total", {"service": SERVICE}) or 0.0
    )
    first_task = asyncio.create_task(first.run(stop_first))
    second_task = None
    try:
        await eventually(lambda: first.is_leader, 20, "first relay takes the lease")
        second_task = asyncio.create_task(second.run(stop_second))
        envs = write_events(client, db, ["x", "y", "z"], range(1, 61))
        await eventually(lambda: all_sent(db), 60, "events sent")
        assert first.published == len(envs)
        assert second.published == 0 and not second.is_leader
        assert db.outbox_lease.find_one()["holder"] == first.lease.holder
        assert REGISTRY.get_sample_value(
            "ssg_outbox_published_total", {"service": SERVICE}
        ) == pytest.approx(published_before + len(envs))

        stop_first.set()
        await asyncio.wait_for(first_task, 30)
        more = write_events(client, db, ["x"], range(61, 71))
        await eventually(lambda: all_sent(db), 30, "second relay publishes")
        assert second.is_leader
        assert second.published == len(more)
        assert first.published == len(envs)
        seen = await consume(kafka_server.bootstrap, {env.event_id for env in envs + more})
        assert check_per_aggregate_order(seen, envs + more) == 0
    finally:
        stop_first.set()
        stop_second.set()
        await asyncio.wait_for(first_task, 30)
        if second_task is not None:
            await asyncio.wait_for(second_task, 30)
