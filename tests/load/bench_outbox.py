"""Benchmark: outbox relay throughput (rows drained from MongoDB to Kafka, marked sent) against a
bare aiokafka send loop of the same messages, same producer options, same broker, one run.

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
from collections.abc import Iterator

from aiokafka import AIOKafkaProducer

from ssg.contracts.diagnostics.v1.diagnostics_pb2 import EchoRequest
from ssg.platform.events.envelope import Origin, build_envelope
from ssg.platform.events.kafka import producer_options
from ssg.platform.events.outbox import Outbox, OutboxRow, UnitOfWork, write_with_events
from ssg.platform.events.relay import OutboxRelay, RelaySettings
from ssg.platform.events.topics import ensure_topics
from ssg.platform.mongo import make_client, run_sync
from ssg.testing import servers

SERVICE = "bench-outbox"
GOAL_RATIO = 0.5
TIME_LIMIT_S = 240.0


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


async def _measure(
    bootstrap: str, mongo_uri: str, local: bool, n: int, aggregates: int, partitions: int
) -> str:
    run_id = uuid.uuid4().hex[:8]
    db_name = f"bench-outbox-{run_id}"
    relay_topic = f"bench.outbox-{run_id}-events.v1"
    bare_topic = f"bench.bare-{run_id}-events.v1"
    settings = RelaySettings(
        service=SERVICE,
        mongodb_uri=_with_db(mongo_uri, db_name),
        kafka_bootstrap=bootstrap,
        kafka_local_profile=local,
        outbox_metrics_interval_seconds=5.0,
    )
    await ensure_topics(bootstrap, [relay_topic, bare_topic], partitions=partitions, dlq=False)
    client = make_client(settings)
    db = client.get_default_database()
    try:
        outbox = Outbox(db)
        outbox.ensure_indexes()
        origin = Origin(SERVICE, settings.instance, "bench")
        envs = [
            build_envelope(origin, "bench.Happened", f"agg-{a}", v, EchoRequest(message="x" * 64))
            for v in range(1, n // aggregates + 1)
            for a in range(aggregates)
        ]
        for start in range(0, len(envs), 500):
            chunk = envs[start : start + 500]

            def insert(uow: UnitOfWork, chunk: list = chunk) -> None:
                for env in chunk:
                    uow.add(relay_topic, env)

            await run_sync(write_with_events, client, db, insert)
        rows = [OutboxRow.from_doc(d) for d in db.outbox.find().sort("seq", 1)]
        total = len(rows)

        # 1. Bare loop: the same keys, values and headers, pipelined, then wait for every ack.
        producer = AIOKafkaProducer(**producer_options(settings))
        await producer.start()
        try:
            started = time.perf_counter()
            futures = [
                await producer.send(
                    bare_topic,
                    row.value,
                    key=row.key.encode(),
                    headers=[
                        ("event_type", row.event_type.encode()),
                        ("trace_id", row.trace_id.encode()),
                        ("event_id", row.event_id.encode()),
                    ],
                )
                for row in rows
            ]
            await asyncio.wait_for(asyncio.gather(*futures), TIME_LIMIT_S)
            bare_s = time.perf_counter() - started
        finally:
            await producer.stop()

        # 2. The relay drains the outbox: until every row is acknowledged and marked sent.
        relay = OutboxRelay.from_settings(settings, client)
        stop = asyncio.Event()
        started = time.perf_counter()
        task = asyncio.create_task(relay.run(stop))
        relay_s: float | None = None
        acked_s: float | None = None
        deadline = started + TIME_LIMIT_S
        try:
            while time.perf_counter() < deadline:
                if acked_s is None and relay.published >= total:
                    acked_s = time.perf_counter() - started
                none_left = await run_sync(db.outbox.find_one, {"sent_at": None}, {"_id": 1})
                if none_left is None:
                    relay_s = time.perf_counter() - started
                    break
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await asyncio.wait_for(task, 60)
    finally:
        client.drop_database(db_name)
        client.close()

    bare_rate = total / bare_s
    lines = [
        "## Outbox relay throughput",
        "",
        f"{total} events ({aggregates} aggregates, {partitions} partitions, "
        f"{len(rows[0].value)} B envelopes), relay batch {settings.outbox_batch_size}; "
        f"broker: {'Tansu (local profile: one message per batch)' if local else 'Kafka'} "
        f"at {bootstrap}; outbox in "
        f"{'SecantusDB' if 'replicaSet=secantus' in mongo_uri else 'MongoDB'}.",
        "",
        "| path | seconds | events/s |",
        "|---|---:|---:|",
        f"| bare aiokafka send loop (pipelined) | {bare_s:.2f} | {bare_rate:,.0f} |",
    ]
    if acked_s is not None:
        lines.append(
            f"| relay, all rows acknowledged by Kafka | {acked_s:.2f} | {total / acked_s:,.0f} |"
        )
    if relay_s is None:
        lines += [
            f"| relay, all rows marked sent | > {TIME_LIMIT_S:.0f} (stopped) | - |",
            "",
            f"Result: **did not finish within {TIME_LIMIT_S:.0f} s** "
            f"(goal >= {GOAL_RATIO}x the bare loop).",
        ]
    else:
        ratio = (total / relay_s) / bare_rate
        verdict = "meets" if ratio >= GOAL_RATIO else "misses"
        lines += [
            f"| relay, all rows marked sent | {relay_s:.2f} | {total / relay_s:,.0f} |",
            "",
            f"Ratio relay / bare: **{ratio:.2f}x** ({verdict} the goal of >= {GOAL_RATIO}x).",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(asyncio.run(run()))
