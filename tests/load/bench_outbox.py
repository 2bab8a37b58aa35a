"""Benchmark: outbox relay throughput against a bare aiokafka send loop of the same messages,
same producer options, same broker, one run. Two relay paths are measured:

* stream (steady state): the relay is running and caught up; a writer inserts N events in
  transactions of 100 as fast as it can; time from the first insert to the last acknowledgement.
* bootstrap scan: N events written before the relay starts (no checkpoint yet); time from the
  relay's start until every row is acknowledged and marked sent.

``await run()`` returns a markdown section; ``python tests/load/bench_outbox.py`` starts its own
servers (Tansu + SecantusDB via ssg.testing.servers) and prints it. Set SSG_TEST_KAFKA_BOOTSTRAP
and SSG_TEST_MONGODB_URI to measure against servers that are already running instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator

from aiokafka import AIOKafkaProducer
from pymongo import MongoClient
from pymongo.database import Database

from ssg.contracts.diagnostics.v1.diagnostics_pb2 import EchoRequest
from ssg.platform.events.envelope import Origin, build_envelope
from ssg.platform.events.kafka import producer_options
from ssg.platform.events.outbox import Outbox, UnitOfWork, write_with_events
from ssg.platform.events.relay import OutboxRelay, RelaySettings
from ssg.platform.events.topics import ensure_topics
from ssg.platform.mongo import Doc, make_client, run_sync
from ssg.testing import servers

SERVICE = "bench-outbox"
GOAL_RATIO = 0.5
# The whole run (both relay paths) stops here; the scan path alone took ~45 s for 5,000 rows.
TIME_LIMIT_S = 240.0
WRITER_TXN = 100


@contextlib.contextmanager
def _servers() -> Iterator[tuple[str, str, bool]]:
    """(kafka bootstrap, mongodb base uri, local broker?) — external ones if set, else our own."""
    kafka = os.environ.get("SSG_TEST_KAFKA_BOOTSTRAP")
    mongo = os.environ.get("SSG_TEST_MONGODB_URI")
    workdir = servers.scratch_dir("ssg-bench-outbox-")
    started: list[servers.ServerProcess] = []
    try:
        if not kafka:
            started.append(servers.start_kafka(workdir))
            kafka = f"{servers.LOOPBACK}:{started[-1].port}"
        if not mongo:
            started.append(servers.start_mongodb(workdir))
            mongo = servers.mongodb_uri(started[-1].port, "bench")
        yield kafka, mongo, "SSG_TEST_KAFKA_BOOTSTRAP" not in os.environ
    finally:
        for proc in reversed(started):
            proc.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _with_db(uri: str, db: str) -> str:
    head, _, query = uri.partition("?")
    host = head.rstrip("/").rsplit("/", 1)[0] if head.count("/") > 2 else head.rstrip("/")
    return f"{host}/{db}" + (f"?{query}" if query else "")


async def run(n: int = 5000, aggregates: int = 50, partitions: int = 3) -> str:
    """Measure both paths once and return the markdown section."""
    with _servers() as (bootstrap, mongo_uri, local):
        return await _measure(bootstrap, mongo_uri, local, n, aggregates, partitions)


def _envelopes(origin: Origin, tag: str, n: int, aggregates: int) -> list:
    return [
        build_envelope(origin, "bench.Happened", f"{tag}-{a}", v, EchoRequest(message="x" * 64))
        for v in range(1, n // aggregates + 1)
        for a in range(aggregates)
    ]


def _write(
    client: MongoClient[Doc], db: Database[Doc], topic: str, envs: list, per_txn: int
) -> None:
    for start in range(0, len(envs), per_txn):
        chunk = envs[start : start + per_txn]

        def insert(uow: UnitOfWork, chunk: list = chunk) -> None:
            for env in chunk:
                uow.add(topic, env)

        write_with_events(client, db, insert)


async def _until(predicate: Callable[[], Awaitable[bool]], deadline: float) -> float | None:
    """Seconds (perf_counter) when predicate first held, or None past the deadline."""
    while time.perf_counter() < deadline:
        if await predicate():
            return time.perf_counter()
        await asyncio.sleep(0.01)
    return None


async def _measure(
    bootstrap: str, mongo_uri: str, local: bool, n: int, aggregates: int, partitions: int
) -> str:
    run_id = uuid.uuid4().hex[:8]
    origin = Origin(SERVICE, "global", "bench")
    bare_topic = f"bench.bare-{run_id}-events.v1"
    stream_topic = f"bench.stream-{run_id}-events.v1"
    scan_topic = f"bench.scan-{run_id}-events.v1"
    await ensure_topics(
        bootstrap, [bare_topic, stream_topic, scan_topic], partitions=partitions, dlq=False
    )
    deadline = time.perf_counter() + TIME_LIMIT_S

    def settings_for(db_name: str) -> RelaySettings:
        return RelaySettings(
            service=SERVICE,
            mongodb_uri=_with_db(mongo_uri, db_name),
            kafka_bootstrap=bootstrap,
            kafka_local_profile=local,
            outbox_metrics_interval_seconds=5.0,
        )

    # 1. Bare loop: the same keys, values and headers, pipelined, then wait for every ack.
    settings = settings_for(f"bench-outbox-{run_id}-stream")
    bare_envs = _envelopes(origin, "bare", n, aggregates)
    producer = AIOKafkaProducer(**producer_options(settings))
    await producer.start()
    try:
        started = time.perf_counter()
        futures = [
            await producer.send(
                bare_topic,
                env.SerializeToString(),
                key=env.aggregate_id.encode(),
                headers=[
                    ("event_type", env.event_type.encode()),
                    ("trace_id", env.trace_id.encode()),
                    ("event_id", env.event_id.encode()),
                ],
            )
            for env in bare_envs
        ]
        await asyncio.wait_for(asyncio.gather(*futures), TIME_LIMIT_S)
        bare_s = time.perf_counter() - started
    finally:
        await producer.stop()
    total = len(bare_envs)
    envelope_size = len(bare_envs[0].SerializeToString())

    # 2. Stream path: relay running and caught up; the writer inserts as fast as it can.
    stream_s, writer_s, catchup_s, transfer_s = await _stream_path(
        settings,
        stream_topic,
        _envelopes(origin, "stream", n, aggregates),
        _envelopes(origin, "catchup", n, aggregates),
        deadline,
    )
    # 3. Bootstrap scan path: rows written before the relay's first start.
    scan_s = await _scan_path(
        settings_for(f"bench-outbox-{run_id}-scan"),
        scan_topic,
        _envelopes(origin, "scan", n, aggregates),
        deadline,
    )

    bare_rate = total / bare_s
    lines = [
        "## Outbox relay throughput",
        "",
        f"{total} events per path ({aggregates} aggregates, {partitions} partitions, "
        f"{envelope_size} B envelopes), relay batch {settings.outbox_batch_size}, batch wait "
        f"{settings.outbox_batch_wait_seconds * 1000:.0f} ms; broker: "
        f"{'Tansu stand-in (local profile: one message per batch, no idempotence)' if local else 'Kafka'}"
        f" at {bootstrap}; outbox in "
        f"{'the SecantusDB stand-in' if 'replicaSet=secantus' in mongo_uri else 'MongoDB'}. "
        f"Stream: the writer inserts in transactions of {WRITER_TXN} rows as fast as it can while "
        "the relay runs, timed from the first insert to the last acknowledgement (bounded "
        "by the writer's rate: it shows that the relay keeps up, not its capacity). Catch-up: "
        "the same number of rows written while the relay was stopped after a checkpoint, timed "
        "from a new relay's start (lease, producer, resume) until all are acknowledged: the stream "
        "path's own rate, which the goal applies to; measured both with the relay's start-up "
        "and from its first acknowledgement (the transfer alone; the bare loop's timing also "
        "starts after its producer started). Scan: rows written before the relay's first start (the "
        "bootstrap path), timed until all are acknowledged and marked sent.",
        "",
        "| path | seconds | events/s | ratio to bare |",
        "|---|---:|---:|---:|",
        f"| bare aiokafka send loop (pipelined) | {bare_s:.2f} | {bare_rate:,.0f} | 1.00x |",
    ]
    if writer_s is not None:
        lines.append(
            f"| writer alone (transactions of {WRITER_TXN}, during the stream run) | "
            f"{writer_s:.2f} | {total / writer_s:,.0f} | - |"
        )
    verdict = ""
    for label, seconds in (
        ("relay, stream path, steady state (bounded by the writer)", stream_s),
        ("relay, stream path, catch-up from a checkpoint (with start-up)", catchup_s),
        ("relay, stream path, catch-up, transfer only", transfer_s),
        ("relay, bootstrap scan path", scan_s),
    ):
        if seconds is None:
            lines.append(f"| {label} | > {TIME_LIMIT_S:.0f} (stopped) | - | - |")
            continue
        ratio = (total / seconds) / bare_rate
        lines.append(f"| {label} | {seconds:.2f} | {total / seconds:,.0f} | {ratio:.2f}x |")
        if "catch-up" in label:
            verdict += (
                f"Stream path / bare, {label.split(', ')[-1]}: **{ratio:.2f}x** "
                f"({'meets' if ratio >= GOAL_RATIO else 'misses'} the goal of >= {GOAL_RATIO}x). "
            )
    lines += ["", verdict or f"Stream path: **did not finish within {TIME_LIMIT_S:.0f} s**."]
    return "\n".join(lines) + "\n"


async def _stream_path(
    settings: RelaySettings, topic: str, envs: list, catchup_envs: list, deadline: float
) -> tuple[float | None, float | None, float | None, float | None]:
    """Seconds: first insert to last ack, the writer alone, catch-up from a checkpoint (from the
    relay's start, and from its first acknowledgement: the transfer alone)."""
    client = make_client(settings)
    db = client.get_default_database()
    relay = OutboxRelay.from_settings(settings, client)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:

        async def caught_up() -> bool:
            return relay.is_leader and relay.checkpoints > 0

        # Steady state: the (empty) bootstrap is over and the relay tails the stream.
        if await _until(caught_up, deadline) is None:
            return None, None, None, None
        base = relay.published
        started = time.perf_counter()
        writer = asyncio.ensure_future(run_sync(_timed_write, client, db, topic, envs))

        async def all_acked() -> bool:
            return relay.published - base >= len(envs)

        done = await _until(all_acked, deadline)
        writer_s = await writer
        if done is None:
            return None, writer_s, None, None
        stream_s = done - started
        stop.set()
        await asyncio.wait_for(task, 60)

        # Catch-up: the same number of rows waits in the stream history behind the checkpoint;
        # a new relay resumes from it. This is the stream path's own capacity (no writer).
        await run_sync(_write, client, db, topic, catchup_envs, WRITER_TXN)
        relay = OutboxRelay.from_settings(settings, client)
        stop = asyncio.Event()
        started = time.perf_counter()
        task = asyncio.create_task(relay.run(stop))

        async def first_acked() -> bool:
            return relay.published >= 1

        async def caught_up_again() -> bool:
            return relay.published >= len(catchup_envs)

        first = await _until(first_acked, deadline)
        done = await _until(caught_up_again, deadline)
        if done is None or first is None:
            return stream_s, writer_s, None, None
        return stream_s, writer_s, done - started, done - first
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
        client.drop_database(db.name)
        client.close()


def _timed_write(client: MongoClient[Doc], db: Database[Doc], topic: str, envs: list) -> float:
    started = time.perf_counter()
    _write(client, db, topic, envs, WRITER_TXN)
    return time.perf_counter() - started


async def _scan_path(
    settings: RelaySettings, topic: str, envs: list, deadline: float
) -> float | None:
    """Seconds from the relay's first start until every pre-written row is marked sent."""
    client = make_client(settings)
    db = client.get_default_database()
    try:
        Outbox(db).ensure_indexes()
        await run_sync(_write, client, db, topic, envs, 500)
        relay = OutboxRelay.from_settings(settings, client)
        stop = asyncio.Event()
        started = time.perf_counter()
        task = asyncio.create_task(relay.run(stop))
        try:

            async def all_marked() -> bool:
                if relay.published < len(envs):
                    return False
                left = await run_sync(db.outbox.find_one, {"sent_at": None}, {"_id": 1})
                return left is None

            done = await _until(all_marked, deadline)
            return done - started if done else None
        finally:
            stop.set()
            await asyncio.wait_for(task, 60)
    finally:
        client.drop_database(db.name)
        client.close()


if __name__ == "__main__":
    print(asyncio.run(run()))
