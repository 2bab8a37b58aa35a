"""The outbox relay against real SecantusDB and Tansu: the change-stream path with its scan
bootstrap, crash mid-stream, restart from the checkpoint, lost resume token, broker outage, lease."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
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


def checkpoint(db) -> dict:
    """The relay's checkpoint in the lease document ({} before the first one)."""
    doc = db.outbox_lease.find_one({}, {"checkpoint": 1}) or {}
    return doc.get("checkpoint") or {}


def unpublished_filter(db) -> dict:
    """Rows neither marked sent (scan path) nor covered by the checkpoint (stream path).

    Exact here: one writer process, so ``seq`` order is commit order."""
    last_seq = checkpoint(db).get("last_seq")
    return {"sent_at": None, **({"seq": {"$gt": last_seq}} if last_seq else {})}


def unpublished(db) -> int:
    return db.outbox.count_documents(unpublished_filter(db))


def all_published(db) -> bool:
    # Point queries on the lease and the (sent_at, seq) index: cheap enough to poll.
    return db.outbox.find_one(unpublished_filter(db), {"_id": 1}) is None


def stream_checkpointed(db) -> bool:
    """The relay is past its bootstrap and has checkpointed rows published from the stream."""
    return bool(checkpoint(db).get("last_seq"))


class Writer(threading.Thread):
    """Writes events in the background (one per transaction, a version of every aggregate in
    turn)."""

    def __init__(self, client, db, aggregates: list[str], versions: range) -> None:
        super().__init__(daemon=True)
        self.client, self.db, self.aggregates, self.versions = client, db, aggregates, versions
        self.envs: list = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for version in self.versions:
                # One event per transaction: a transaction's rows go out in one insert, so
                # bigger ones would finish writing before the relay's scan, the seam under test.
                self.envs += write_events(
                    self.client, self.db, self.aggregates, range(version, version + 1), per_txn=1
                )
        except BaseException as exc:  # surfaced by finish()
            self.error = exc

    async def finish(self, within: float = 120) -> list:
        await eventually(lambda: not self.is_alive(), within, "writer done")
        assert self.error is None, repr(self.error)
        return self.envs


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


def published_total() -> float:
    return REGISTRY.get_sample_value("ssg_outbox_published_total", {"service": SERVICE}) or 0.0


async def stop_relay(stop: asyncio.Event, task: asyncio.Task | None) -> None:
    stop.set()
    if task is not None:
        await asyncio.wait_for(task, 30)


@pytest.mark.timeout(240)
async def test_relay_killed_mid_stream_loses_nothing_and_keeps_order(
    mongo, mongodb_server, kafka_server, unique_name, tmp_path
):
    client, db = mongo
    await ensure_topics(kafka_server.bootstrap, [TOPIC], partitions=3, dlq=False)
    aggregates = [f"{unique_name}-agg-{i:02d}" for i in range(30)]
    # Rows from before any relay ran go out through the bootstrap scan...
    envs = write_events(client, db, aggregates, range(1, 6))
    uri = mongodb_server.uri(unique_name)
    log_path = tmp_path / "relay.log"

    first = start_relay_process(uri, kafka_server.bootstrap, kafka_server.local, log_path)
    # ...the rest through the stream, written while the relay runs, once the scan is done.
    writer = Writer(client, db, aggregates, range(6, 101))
    try:
        await eventually(
            lambda: "resume_token" in checkpoint(db) or first.poll() is not None, 60, "bootstrap"
        )
        writer.start()
        # Kill it once it publishes from the stream, while the writer is still writing.
        await eventually(
            lambda: stream_checkpointed(db) or first.poll() is not None, 60, "first checkpoint"
        )
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        writer_alive_at_kill = writer.is_alive()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(10)
    assert first.returncode == -signal.SIGKILL, log_path.read_text()
    envs += await writer.finish()
    assert writer_alive_at_kill, "the writer finished before the kill: not mid-stream"
    left_at_kill = unpublished(db)
    assert 0 < left_at_kill < len(envs), "the relay was not killed mid-run"

    second = start_relay_process(uri, kafka_server.bootstrap, kafka_server.local, log_path)
    try:
        # It must wait out the dead relay's lease, then resume from the checkpoint.
        await eventually(
            lambda: all_published(db) or second.poll() is not None, 120, "all rows published"
        )
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
    # At least once: only rows acknowledged after the last checkpoint come again: at most the
    # batch in flight at the kill (the subprocess's batch size), plus the read-ahead batch.
    assert duplicates <= 250, duplicates
    logs = log_path.read_text()
    assert logs.count("outbox lease acquired") == 2
    # The restart resumed from the checkpoint: one bootstrap scan in all, no fallback.
    assert logs.count("outbox scan done") == 1, logs[-3000:]
    assert "cannot resume" not in logs


async def test_rows_written_before_and_while_the_relay_runs_all_arrive_without_a_gap(
    mongo, mongodb_server, kafka_server, unique_name
):
    client, db = mongo
    await ensure_topics(kafka_server.bootstrap, [TOPIC], partitions=3, dlq=False)
    aggregates = [f"{unique_name}-{i}" for i in range(10)]
    before = write_events(client, db, aggregates, range(1, 31))
    relay = OutboxRelay.from_settings(
        relay_settings(mongodb_server.uri(unique_name), kafka_server.bootstrap, kafka_server.local),
        client,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    # Writing starts with the relay, so commits land during the scan and around the stream's
    # start position: the seam the bootstrap must close.
    writer = Writer(client, db, aggregates, range(31, 131))
    writer.start()
    try:
        during = await writer.finish()
        await eventually(lambda: all_published(db), 60, "all rows published")
    finally:
        await stop_relay(stop, task)
    envs = before + during
    seen = await consume(kafka_server.bootstrap, {env.event_id for env in envs})
    duplicates = check_per_aggregate_order(seen, envs)
    assert duplicates == 0  # the stream skipped what the scan had published
    assert relay.published == len(envs)
    assert relay.fallbacks == 0
    # Pre-written rows went out through the scan (marked), later ones through the stream (not).
    marked = db.outbox.count_documents({"sent_at": {"$ne": None}})
    assert len(before) <= marked < len(envs)
    assert relay.checkpoints > 0


async def test_a_restart_resumes_from_the_checkpoint(
    mongo, mongodb_server, kafka_server, unique_name
):
    client, db = mongo
    await ensure_topics(kafka_server.bootstrap, [TOPIC], partitions=3, dlq=False)
    settings = relay_settings(
        mongodb_server.uri(unique_name), kafka_server.bootstrap, kafka_server.local
    )
    first = OutboxRelay.from_settings(settings, client)
    stop = asyncio.Event()
    task = asyncio.create_task(first.run(stop))
    try:
        await eventually(lambda: first.is_leader and first.checkpoints, 20, "first checkpoint")
        envs = write_events(client, db, ["r1", "r2", "r3"], range(1, 201))
        await eventually(lambda: all_published(db), 60, "first rows published")
    finally:
        await stop_relay(stop, task)
    assert first.published == len(envs)
    # Written while no relay runs: the stream history has them after the checkpoint.
    more = write_events(client, db, ["r1", "r2", "r3"], range(201, 241))

    second = OutboxRelay.from_settings(settings, client)
    stop = asyncio.Event()
    task = asyncio.create_task(second.run(stop))
    try:
        await eventually(lambda: all_published(db), 60, "rows written while stopped published")
    finally:
        await stop_relay(stop, task)
    assert second.fallbacks == 0
    # Not everything again: at most one batch more than what was new.
    assert len(more) <= second.published <= len(more) + settings.outbox_batch_size
    seen = await consume(kafka_server.bootstrap, {env.event_id for env in envs + more})
    duplicates = check_per_aggregate_order(seen, envs + more)
    assert duplicates <= settings.outbox_batch_size


def foreign_token(db) -> dict:
    """A well-formed resume token of another collection: valid syntax, wrong history."""
    with db.elsewhere.watch(max_await_time_ms=50) as stream:
        db.elsewhere.insert_one({"x": 1})
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            change = stream.try_next()
            if change is not None:
                return change["_id"]
    pytest.fail("no change on the other collection")


@pytest.mark.parametrize("kind", ["garbage", "foreign"])
async def test_an_unusable_resume_token_falls_back_to_a_scan(
    mongo, mongodb_server, kafka_server, unique_name, kind, caplog
):
    client, db = mongo
    await ensure_topics(kafka_server.bootstrap, [TOPIC], partitions=3, dlq=False)
    settings = relay_settings(
        mongodb_server.uri(unique_name), kafka_server.bootstrap, kafka_server.local
    )
    first = OutboxRelay.from_settings(settings, client)
    stop = asyncio.Event()
    task = asyncio.create_task(first.run(stop))
    try:
        await eventually(lambda: first.is_leader and first.checkpoints, 20, "first checkpoint")
        envs = write_events(client, db, ["f1", "f2"], range(1, 51))
        await eventually(lambda: all_published(db), 60, "first rows published")
    finally:
        await stop_relay(stop, task)
    # The history behind the checkpoint is gone (simulated): its token cannot be resumed.
    bad = {"_data": "00ff"} if kind == "garbage" else foreign_token(db)
    db.outbox_lease.update_one({}, {"$set": {"checkpoint.resume_token": bad}})
    more = write_events(client, db, ["f1", "f2", "f3"], range(51, 81))

    second = OutboxRelay.from_settings(settings, client)
    stop = asyncio.Event()
    task = asyncio.create_task(second.run(stop))
    try:
        with caplog.at_level("WARNING", logger="ssg.platform.events.relay"):
            await eventually(lambda: second.fallbacks == 1, 20, "fallback")
            await eventually(lambda: all_published(db), 60, "rows published after the fallback")
            # New rows keep flowing through the new stream position.
            latest = write_events(client, db, ["f1"], range(81, 91))
            await eventually(lambda: all_published(db), 60, "rows written after the fallback")
    finally:
        await stop_relay(stop, task)
    assert any("cannot resume" in r.getMessage() for r in caplog.records)
    assert checkpoint(db)["resume_token"] != bad
    seen = await consume(kafka_server.bootstrap, {env.event_id for env in envs + more + latest})
    duplicates = check_per_aggregate_order(seen, envs + more + latest)
    # Inside the safety margin everything unmarked is rescanned: all of the first relay's rows.
    assert duplicates <= len(envs)


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
        await eventually(lambda: all_published(db), 30, "first events sent")
        await eventually(lambda: relay.checkpoints, 30, "bootstrap checkpoint")

        broker.stop()
        before_outage = checkpoint(db)
        later = write_events(client, db, aggregates, range(11, 21))
        before = failures()
        await eventually(lambda: failures() >= before + 2, 30, "failed attempts while down")
        # Nothing is checkpointed (or marked) while the broker is away.
        assert unpublished(db) == 20
        assert checkpoint(db).get("last_seq") == before_outage.get("last_seq")

        # Same port, empty memory: the topic has to be created again.
        broker = servers.start_kafka(tmp_path, port=broker.port)
        await ensure_topics(bootstrap, [TOPIC], partitions=2, dlq=False)
        await eventually(lambda: all_published(db), 60, "events sent after the broker returned")
        seen = await consume(bootstrap, {env.event_id for env in later})
        check_per_aggregate_order(seen, later)
        await eventually(
            lambda: REGISTRY.get_sample_value("ssg_outbox_backlog", {"service": SERVICE}) == 0,
            10,
            "backlog gauge back to 0",
        )
    finally:
        await stop_relay(stop, task)
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
    published_before = published_total()
    first_task = asyncio.create_task(first.run(stop_first))
    second_task = None
    try:
        await eventually(lambda: first.is_leader, 20, "first relay takes the lease")
        second_task = asyncio.create_task(second.run(stop_second))
        envs = write_events(client, db, ["x", "y", "z"], range(1, 61))
        await eventually(lambda: all_published(db), 60, "events sent")
        assert first.published == len(envs)
        assert second.published == 0 and not second.is_leader
        assert db.outbox_lease.find_one()["holder"] == first.lease.holder
        assert published_total() == pytest.approx(published_before + len(envs))

        stop_first.set()
        await asyncio.wait_for(first_task, 30)
        more = write_events(client, db, ["x"], range(61, 71))
        await eventually(lambda: all_published(db), 30, "second relay publishes")
        assert second.is_leader
        # It resumed from the first relay's checkpoint: the new rows, plus (only when the hand-over
        # came while the first relay's stream was still catching up with its bootstrap scan) the
        # rows that scan sent, which the stream position had not yet passed (ADR 0005).
        assert len(more) <= second.published <= len(more) + len(envs)
        assert first.published == len(envs)
        seen = await consume(kafka_server.bootstrap, {env.event_id for env in envs + more})
        assert check_per_aggregate_order(seen, envs + more) == 0
    finally:
        stop_first.set()
        stop_second.set()
        await asyncio.wait_for(first_task, 30)
        if second_task is not None:
            await asyncio.wait_for(second_task, 30)
