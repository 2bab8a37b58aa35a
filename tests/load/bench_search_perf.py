"""Benchmark: the search service's speed, each side by side with its bare equivalent.

Tansu (Kafka) and osmem (OpenSearch) are started on loopback; the documents are the catalog
demo set (bench_search.demo_events) repeated under new ids.

1. Indexing throughput: N solution events are put on the topics first; then the indexer (the
   faust worker, in this process, default batch settings) indexes them, timed from its start
   and from its first document; next to a bare ``helpers.async_bulk`` loop writing the same
   documents (chunks of 500) into indices of their own. Goal: pipeline >= 0.5x bare.
2. Freshness: with the indexer running and the API (``python -m ssg.search``, its own process)
   serving, one new SolutionPublished event at a time is produced and Search is polled (every
   10 ms) until it finds it. The catalog's own path (PublishSolution -> outbox -> relay) is
   not part of this run: the outbox benchmark measures it. Goal: p95 <= 1 s.
3. Query overhead: with 20,000 solutions indexed, the judged queries are sent at concurrency
   16 through gRPC to the API and, in alternating rounds, straight to OpenSearch with the
   body the API sends. Goal: gRPC p99 <= 1.5x direct p99 + 5 ms.

    uv run python tests/load/bench_search_perf.py      # prints a markdown section
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import grpc
from aiokafka import AIOKafkaProducer
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opensearchpy import AsyncOpenSearch
from opensearchpy.helpers import async_bulk

from ssg.contracts.catalog.v1 import events_pb2 as cat
from ssg.contracts.events.v1 import envelope_pb2
from ssg.contracts.search.v1 import search_service_pb2 as pb
from ssg.contracts.search.v1 import search_service_pb2_grpc as pb_grpc
from ssg.platform.auth.tokens import DEV_SECRET
from ssg.platform.events.consumer import RetryPolicy
from ssg.platform.events.envelope import build_envelope, unpack_payload
from ssg.platform.events.faust_app import ensure_faust_topics
from ssg.platform.events.kafka import producer_options
from ssg.platform.settings import load_settings
from ssg.search.domain.documents import EntityType, Upsert, action_for
from ssg.search.domain.indices import alias_name
from ssg.search.domain.queries import Ranking, SearchQuery, search_body
from ssg.search.events.indexer import create_indexer_app
from ssg.search.events.topics import ORGANIZATION_TOPIC, SOLUTION_TOPIC
from ssg.search.settings import SearchSettings
from ssg.search.store.indices import ensure_indices
from ssg.search.store.writer import BulkWriter
from ssg.testing import servers

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_search import ORIGIN, QUERIES, demo_events

THROUGHPUT_EVENTS = 5_000
FRESHNESS_SAMPLES = 40
STORED = 20_000
CONCURRENCY = 16
ROUNDS = 3
REQUESTS_PER_ROUND = 48
PHASE_SECONDS = 300
RUN_DIR = Path(__file__).resolve().parents[2] / ".run"


def note(text: str) -> None:
    """Progress on stderr (the section goes to stdout)."""
    print(f"[bench_search_perf {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def copies(
    events: Sequence[envelope_pb2.Envelope], n: int, tag: str
) -> list[envelope_pb2.Envelope]:
    """n SolutionPublished events made from the demo solutions under new ids."""
    solutions = [e for e in events if e.event_type == "catalog.SolutionPublished"]
    out = []
    for i in range(n):
        source = unpack_payload(solutions[i % len(solutions)], cat.SolutionPublished)
        source.solution.id = f"{tag}-{i:06d}"
        out.append(
            build_envelope(ORIGIN, "catalog.SolutionPublished", source.solution.id, 1, source)
        )
    return out


async def produce(
    settings: SearchSettings, topic: str, events: Sequence[envelope_pb2.Envelope]
) -> None:
    producer = AIOKafkaProducer(**producer_options(settings))
    await producer.start()
    try:
        # In chunks: a loaded machine must not time out a send buffered behind thousands.
        for start in range(0, len(events), 200):
            sent = [
                await producer.send(topic, value=e.SerializeToString(), key=e.aggregate_id.encode())
                for e in events[start : start + 200]
            ]
            await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def count(client: AsyncOpenSearch, prefix: str) -> int:
    reply = await client.count(index=alias_name(prefix, EntityType.SOLUTION))
    return int(reply["count"])


async def throughput(
    settings: SearchSettings,
    client: AsyncOpenSearch,
    orgs: Sequence[envelope_pb2.Envelope],
    events: Sequence[envelope_pb2.Envelope],
    workdir: Path,
) -> tuple[list[str], Any]:
    """Section rows; the running indexer app (left running for the freshness phase)."""
    await produce(settings, ORGANIZATION_TOPIC, orgs)
    await produce(settings, SOLUTION_TOPIC, events)
    # Bare: the same documents straight into indices of their own.
    bare_prefix = settings.index_prefix + "-bare"
    await ensure_indices(client, bare_prefix)
    docs = []
    for env in events:
        action = action_for(env)
        assert isinstance(action, Upsert)
        docs.append(
            {
                "_index": alias_name(bare_prefix, EntityType.SOLUTION),
                "_id": action.id,
                "_source": action.document,
            }
        )
    t0 = time.monotonic()
    await async_bulk(client, docs, chunk_size=500)
    bare_seconds = time.monotonic() - t0
    bare_rate = len(docs) / bare_seconds

    await ensure_indices(client, settings.index_prefix)
    writer = BulkWriter(client, settings.index_prefix, RetryPolicy.from_settings(settings))
    app, _ = create_indexer_app(settings, writer, datadir=str(workdir / "faust"))
    await ensure_faust_topics(app, [ORGANIZATION_TOPIC, SOLUTION_TOPIC])
    started = time.monotonic()
    await app.start()
    try:
        rows = await _timed(client, settings, events, started, bare_rate)
    except BaseException:
        await asyncio.wait_for(app.stop(), 30)
        raise
    return rows, app


async def _timed(
    client: AsyncOpenSearch,
    settings: SearchSettings,
    events: Sequence[envelope_pb2.Envelope],
    started: float,
    bare_rate: float,
) -> list[str]:
    """Wait for the indexer to have written every event; the section rows."""
    first = None
    deadline = started + PHASE_SECONDS
    while (n := await count(client, settings.index_prefix)) < len(events):
        if n and first is None:
            first = (time.monotonic(), n)
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the indexer wrote {n} of {len(events)} documents in {PHASE_SECONDS} s"
            )
        await asyncio.sleep(0.05)
    done = time.monotonic()
    assert first is not None
    total_rate = len(events) / (done - started)
    steady_rate = (len(events) - first[1]) / max(done - first[0], 1e-9)
    return [
        "| indexing | pipeline (from worker start) | bare `async_bulk` | pipeline (from first document) | ratio (steady) | goal |",
        "|---|---|---|---|---|---|",
        f"| {len(events):,} solution events | {total_rate:,.0f} docs/s | {bare_rate:,.0f} docs/s | "
        f"{steady_rate:,.0f} docs/s | {steady_rate / bare_rate:.2f}x | >= 0.5x: "
        f"**{'met' if steady_rate / bare_rate >= 0.5 else 'NOT met'}** |",
    ]


def api_process(settings: SearchSettings, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSG_")}
    env.update(
        SSG_GRPC_PORT=str(port),
        SSG_METRICS_PORT=str(servers.free_port()),
        SSG_OPENSEARCH_URL=settings.opensearch_url,
        SSG_KAFKA_BOOTSTRAP=settings.kafka_bootstrap,
        SSG_KAFKA_LOCAL_PROFILE="true",
        SSG_INDEX_PREFIX=settings.index_prefix,
        SSG_JWT_SECRET=DEV_SECRET,
        SSG_LOG_LEVEL="WARNING",
    )
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "ssg.search"], env=env, stdout=out, stderr=subprocess.STDOUT
        )


async def wait_serving(channel: grpc.aio.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            reply = await health.Check(
                health_pb2.HealthCheckRequest(service="ssg.search.v1.SearchService"), timeout=1
            )
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.aio.AioRpcError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("the search API did not start")


def pct(values: Sequence[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


async def freshness(
    settings: SearchSettings, stub: pb_grpc.SearchServiceStub, template: envelope_pb2.Envelope
) -> list[str]:
    """Section rows: produce one event, poll Search until it is found."""
    producer = AIOKafkaProducer(**producer_options(settings))
    await producer.start()
    latencies = []
    try:
        for i in range(FRESHNESS_SAMPLES):
            marker = f"fresh{i:03d}x{os.getpid()}"
            payload = unpack_payload(template, cat.SolutionPublished)
            payload.solution.id = f"fresh-{i:04d}-{os.getpid()}"
            payload.solution.title = f"{payload.solution.title} {marker}"
            env = build_envelope(
                ORIGIN, "catalog.SolutionPublished", payload.solution.id, 1, payload
            )
            t0 = time.monotonic()
            await producer.send_and_wait(
                SOLUTION_TOPIC, value=env.SerializeToString(), key=env.aggregate_id.encode()
            )
            while True:
                reply = await stub.Search(pb.SearchRequest(query=marker), timeout=5)
                if any(h.id == payload.solution.id for h in reply.hits):
                    break
                await asyncio.sleep(0.01)
            latencies.append(time.monotonic() - t0)
    finally:
        await producer.stop()
    p95 = pct(latencies, 95)
    return [
        "| freshness (event produced -> found by Search) | samples | p50 | p95 | max | goal |",
        "|---|---|---|---|---|---|",
        f"| SolutionPublished on Kafka -> gRPC Search hit | {len(latencies)} | {pct(latencies, 50):.0f} ms | "
        f"{p95:.0f} ms | {max(latencies) * 1000:.0f} ms | p95 <= 1 s: **{'met' if p95 <= 1000 else 'NOT met'}** |",
    ]


async def load(
    call: Callable[[str], Awaitable[object]], texts: Sequence[str], n: int, latencies: list[float]
) -> int:
    """n calls at CONCURRENCY; latencies appended; the failures."""
    queue = list(range(n))
    failures = 0

    async def worker() -> None:
        nonlocal failures
        while queue:
            i = queue.pop()
            t0 = time.monotonic()
            try:
                await call(texts[i % len(texts)])
            except Exception:
                failures += 1
                continue
            latencies.append(time.monotonic() - t0)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return failures


async def overhead(
    settings: SearchSettings, client: AsyncOpenSearch, stub: pb_grpc.SearchServiceStub, stored: int
) -> list[str]:
    """Section rows: the same queries through gRPC and straight to OpenSearch."""
    texts = [q["q"] for q in json.loads(QUERIES.read_text())["queries"]]
    index = ",".join(alias_name(settings.index_prefix, t) for t in EntityType)
    ranking = Ranking()

    async def direct(text: str) -> object:
        return await client.search(index=index, body=search_body(SearchQuery(text=text), ranking))

    async def via_grpc(text: str) -> object:
        return await stub.Search(pb.SearchRequest(query=text), timeout=10)

    sides: dict[str, list[float]] = {"grpc": [], "direct": []}
    failures = {"grpc": 0, "direct": 0}
    await load(via_grpc, texts, 50, [])  # warm-up
    await load(direct, texts, 50, [])
    for n in range(ROUNDS):
        note(f"overhead round {n + 1} of {ROUNDS}")
        failures["grpc"] += await load(via_grpc, texts, REQUESTS_PER_ROUND, sides["grpc"])
        failures["direct"] += await load(direct, texts, REQUESTS_PER_ROUND, sides["direct"])
    g99, d99 = pct(sides["grpc"], 99), pct(sides["direct"], 99)
    limit = 1.5 * d99 + 5
    if failures["grpc"] or failures["direct"]:
        # Timed-out calls leave the slow tail out of the percentiles: no verdict on those.
        verdict = "not measured (calls failed: the server under test is saturated)"
    else:
        verdict = "met" if g99 <= limit else "NOT met"
    return [
        f"| query path ({stored:,} solutions, concurrency {CONCURRENCY}) | requests | p50 | p99 | failures |",
        "|---|---|---|---|---|",
        f"| gRPC Search (API process) | {len(sides['grpc'])} | {pct(sides['grpc'], 50):.1f} ms | {g99:.1f} ms | {failures['grpc']} |",
        f"| same body straight to OpenSearch | {len(sides['direct'])} | {pct(sides['direct'], 50):.1f} ms | {d99:.1f} ms | {failures['direct']} |",
        "",
        f"Goal gRPC p99 <= 1.5x direct p99 + 5 ms = {limit:.1f} ms: **{verdict}**.",
    ]


async def run() -> str:
    """Start Tansu and osmem, run the three phases, stop everything; the markdown section."""
    # Under the checkout's .run/ (ignored by git), not /tmp: a shared machine's /tmp cleaners
    # must not take the servers' files away mid-run.
    workdir = RUN_DIR / f"bench-search-perf-{os.getpid()}"
    workdir.mkdir(parents=True, exist_ok=True)
    kafka = servers.start_kafka(workdir)
    opensearch = servers.start_opensearch(workdir)
    settings = load_settings(
        SearchSettings,
        instance_id="bench",
        kafka_bootstrap=f"{servers.LOOPBACK}:{kafka.port}",
        kafka_local_profile=True,
        opensearch_url=f"http://{servers.LOOPBACK}:{opensearch.port}",
        index_prefix="perf",
        faust_topic_partitions=4,
        log_level="WARNING",
    )
    client = AsyncOpenSearch(settings.opensearch_url, timeout=60)
    app = None
    api = None
    channel = None
    sections: list[str] = ["## Search speed (indexing, freshness, query overhead)", ""]
    try:
        events, *_ = demo_events()
        orgs = [e for e in events if e.event_type.startswith("registration.")]
        pipeline_events = copies(events, THROUGHPUT_EVENTS, "tp")
        note(f"throughput: {len(pipeline_events)} events")
        rows, app = await throughput(settings, client, orgs, pipeline_events, workdir)
        sections += [*rows, ""]

        note("freshness")
        port = servers.free_port()
        api = api_process(settings, port, workdir / "api.log")
        channel = grpc.aio.insecure_channel(f"{servers.LOOPBACK}:{port}")
        await wait_serving(channel)
        stub = pb_grpc.SearchServiceStub(channel)
        sections += await freshness(settings, stub, pipeline_events[0]) + [""]

        note("overhead")
        # Fill up to STORED solutions (bare bulk: the pipeline was measured above).
        more = copies(events, STORED - await count(client, settings.index_prefix), "st")
        docs = []
        for env in more:
            action = action_for(env)
            assert isinstance(action, Upsert)
            docs.append(
                {
                    "_index": alias_name(settings.index_prefix, EntityType.SOLUTION),
                    "_id": action.id,
                    "_source": action.document,
                }
            )
        await async_bulk(client, docs, chunk_size=1000)
        stored = await count(client, settings.index_prefix)
        sections += await overhead(settings, client, stub, stored)
    finally:
        if channel is not None:
            await channel.close()
        if api is not None:
            api.terminate()
            api.wait(30)
        if app is not None:
            await asyncio.wait_for(app.stop(), 30)
        await client.close()
        opensearch.stop()
        kafka.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return "\n".join(sections)


if __name__ == "__main__":
    # SIGTERM (a timeout) unwinds like Ctrl-C, so the servers started here are stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    print(asyncio.run(run()))
