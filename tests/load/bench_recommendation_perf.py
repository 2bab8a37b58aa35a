"""Benchmark: Recommend and MatchNeed through gRPC at 20,000 items and 10,000 people, beside the
bare grpc.aio Echo server of the Foundation benchmark (bench_grpc) in the same run, and the
profile update lag through the real worker and Kafka.

MongoDB (SecantusDB) and Kafka (Tansu) run on loopback; ``python -m ssg.recommendation`` (the API,
full interceptor stack), ``python -m ssg.recommendation.worker`` and the bare server each in a
process of their own. The items are the catalog demo items of the offline evaluation
(bench_recommendation) repeated under new ids, plus its 150 needs; 10,000 people with latent
interests (a primary and a secondary SDG) made 10-40 interactions each, loaded through the
store's bulk loader (the worker's arithmetic: profiles, popularity, co-interaction counts).

1. Latency: one client (this process) at concurrency 16 with an operator token; Recommend for a
   random person (k 10) and MatchNeed for a random stored need (k 10), each phase in rounds
   alternating with the bare Echo, every call of a round awaited before the next round. Goals:
   p99 <= 50 ms and >= 0.25x the bare server's req/s.
   The people's recommendation lists are stored after the bulk load as the worker stores them
   (ADR 0054); a third phase asks for 11 items, more than a stored list holds, to measure the
   lists computed per call (filtered requests, profiles without a current list).
2. Profile update lag: an InteractionRecorded event of a new person is produced on Kafka and
   Recommend for that person is polled (every 10 ms) until it is no longer a cold start, i.e.
   the worker applied the event and stored the person's list, and the API served it.
   Goal: p95 <= 2 s.

    uv run python tests/load/bench_recommendation_perf.py     # prints a markdown section
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_grpc  # the Foundation benchmark: its bare server, Side, rounds and process helpers
import bench_recommendation
import grpc
from aiokafka import AIOKafkaProducer
from pymongo import MongoClient

from ssg.contracts.diagnostics.v1 import diagnostics_pb2 as diag
from ssg.contracts.diagnostics.v1 import diagnostics_pb2_grpc as diag_grpc
from ssg.contracts.recommendation.v1 import interaction_pb2
from ssg.contracts.recommendation.v1 import recommendation_service_pb2 as pb
from ssg.contracts.recommendation.v1 import recommendation_service_pb2_grpc as pb_grpc
from ssg.platform.auth.tokens import DEV_SECRET, DevTokenIssuer, Role
from ssg.platform.events.envelope import Origin
from ssg.platform.events.kafka import producer_options
from ssg.platform.events.outbox import next_seq
from ssg.platform.events.topics import ensure_topics
from ssg.platform.grpc.client import channel
from ssg.platform.settings import load_settings
from ssg.recommendation.bootstrap import backfill_lists, build_store
from ssg.recommendation.domain.model import Item, ItemKind
from ssg.recommendation.events.publisher import INTERACTION_TOPIC, MATCH_TOPIC, EventFactory
from ssg.recommendation.settings import RecommendationSettings
from ssg.recommendation.store.documents import item_doc, organization_doc
from ssg.recommendation.store.mongo import InteractionFacts
from ssg.recommendation.worker import TOPICS as WORKER_TOPICS
from ssg.testing import servers

ITEMS = 20_000
USERS = 10_000
CONCURRENCY = 16
ROUNDS = 4
ROUND_SECONDS = 2.0
WARMUP_SECONDS = 1.0
LAG_SAMPLES = 40
LAG_TIMEOUT = 30.0
P99_GOAL_MS = 50.0
RATIO_GOAL = 0.25
LAG_GOAL_S = 2.0
INSTANCE = "global"
SEED = 20261127
NOW = datetime.now(UTC)
RUN_DIR = Path(__file__).resolve().parents[2] / ".run"


def note(text: str) -> None:
    """Progress on stderr (the section goes to stdout)."""
    print(f"[bench_recommendation_perf {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr)


def world(items: int, users: int) -> tuple[list[Item], list[str], list[InteractionFacts], dict]:
    """Items (demo items under new ids, then the demo needs), need ids, interactions, orgs."""
    rng = random.Random(SEED)
    demo_world = bench_recommendation.build_world()
    needs = [
        Item(
            f"need{n:04d}",
            ItemKind.NEED,
            spec.title,
            spec.problem,
            organization_id=spec.seeker_organization_id,
            sdgs=spec.sdgs,
            targets=spec.targets,
            country=spec.country,
            published_at=NOW - timedelta(days=rng.uniform(0, 60)),
        )
        for n, (spec, _) in enumerate(demo_world.needs)
    ]
    base = demo_world.items
    many = [
        replace(
            base[n % len(base)],
            id=f"item{n:05d}",
            published_at=NOW - timedelta(days=rng.uniform(0, 720)),
        )
        for n in range(items - len(needs))
    ]
    catalog = many + needs
    # Per SDG the items with it, drawn with a Pareto appeal (popularity bias) in O(log n).
    appeal = [rng.paretovariate(1.5) for _ in many]
    by_sdg: dict[int, list[int]] = defaultdict(list)
    for n, item in enumerate(many):
        for g in item.sdgs:
            by_sdg[g].append(n)
    cumulative = {
        g: list(itertools.accumulate(appeal[i] for i in found)) for g, found in by_sdg.items()
    }
    everything = list(itertools.accumulate(appeal))

    def draw(found: list[int], cum: list[float]) -> Item:
        return many[found[bisect.bisect_left(cum, rng.random() * cum[-1])]]

    all_positions = list(range(len(many)))
    interactions: list[InteractionFacts] = []
    kinds, odds = list(bench_recommendation.KINDS), bench_recommendation.KIND_ODDS
    sdgs = sorted(by_sdg)
    for u in range(users):
        primary, secondary = rng.sample(sdgs, 2)
        for _ in range(rng.randint(10, 40)):
            roll = rng.random()
            if roll < 0.6:
                item = draw(by_sdg[primary], cumulative[primary])
            elif roll < 0.8:
                item = draw(by_sdg[secondary], cumulative[secondary])
            else:
                item = draw(all_positions, everything)
            at = NOW - timedelta(days=rng.uniform(0, 90))
            kind = rng.choices(kinds, odds)[0]
            interactions.append(InteractionFacts(f"person{u:05d}", "", item.id, kind, at))
    interactions.sort(key=lambda f: f.at)
    return catalog, [n.id for n in needs], interactions, demo_world.organizations


def load(
    settings: RecommendationSettings, items_wanted: int, users: int
) -> tuple[list[str], float, float]:
    """Store the world; the need ids, the seconds it took and the seconds of it spent storing
    the recommendation lists."""
    started = time.monotonic()
    items, need_ids, interactions, organizations = world(items_wanted, users)
    client: MongoClient[dict] = MongoClient(settings.mongodb_uri)
    try:
        store = build_store(settings, client)
        store.ensure_indexes()
        docs = [
            {**item_doc(i), "_id": i.id, "stored_at": next_seq(), "aggregate_version": 1}
            for i in items
        ]
        for start in range(0, len(docs), 1000):
            store.items.insert_many(docs[start : start + 1000])
        store.mark_items_changed(max(d["stored_at"] for d in docs))
        store.organizations.insert_many(
            [
                {**organization_doc(o), "_id": o.id, "aggregate_version": 1}
                for o in organizations.values()
            ]
        )
        store.load_history(interactions, {i.id: i for i in items})
        note(f"stored {len(items)} items, {len(interactions)} interactions of {users} people")
        # The worker stores a profile's list with each interaction it applies (ADR 0054); the
        # bulk loader bypasses it, so the lists are computed here as after a restore.
        backfill_started = time.monotonic()
        stored = backfill_lists(store, max_items=items_wanted)
        backfill = time.monotonic() - backfill_started
        note(f"stored the recommendation lists of {stored} profiles in {backfill:.0f} s")
    finally:
        client.close()
    return need_ids, time.monotonic() - started, backfill


def env_for(settings: RecommendationSettings, port: int) -> dict[str, str]:
    """Environment of the API and worker processes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSG_")}
    return env | {
        "SSG_SERVICE": "recommendation",
        "SSG_INSTANCE": INSTANCE,
        "SSG_INSTANCE_ID": f"bench-{port}",
        "SSG_GRPC_HOST": "127.0.0.1",
        "SSG_GRPC_PORT": str(port),
        "SSG_METRICS_HOST": "127.0.0.1",
        "SSG_METRICS_PORT": str(servers.free_port()),
        "SSG_MONGODB_URI": settings.mongodb_uri,
        "SSG_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "SSG_KAFKA_LOCAL_PROFILE": "true",
        "SSG_JWT_SECRET": DEV_SECRET,
        "SSG_GRACE_SECONDS": "1",
        "SSG_LOG_LEVEL": "WARNING",
        "SSG_WORKER_GROUP": "bench-recommendation",
    }


def pct(values: list[float], q: int) -> float:
    """Percentile q of seconds, in ms."""
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


async def wait_for(call: Callable[[], Awaitable[object]], within: float, what: str) -> None:
    """Retry call until it succeeds (the API's first call loads the item index)."""
    deadline = time.monotonic() + within
    while True:
        try:
            await call()
            return
        except grpc.aio.AioRpcError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not answer within {within:.0f} s") from None
            await asyncio.sleep(0.2)


async def latency(
    api: bench_grpc.Side, bare: bench_grpc.Side, operator: str, need_ids: list[str], users: int
) -> list[tuple[bench_grpc.Side, bench_grpc.Side]]:
    """Both phases; (call side, bare side beside it) per phase."""
    rng = random.Random(SEED)
    phases = []
    async with (
        channel(api.address, token=operator) as api_channel,
        channel(bare.address, token=operator) as bare_channel,
    ):
        stub = pb_grpc.RecommendationServiceStub(api_channel)
        echo = diag_grpc.DiagnosticsServiceStub(bare_channel)

        async def recommend() -> object:
            user = f"person{rng.randrange(users):05d}"
            return await stub.Recommend(pb.RecommendRequest(user_id=user, page_size=10), timeout=30)

        async def recommend_computed() -> object:
            # More than a stored list holds: computed per call, the path of filtered requests
            # and of profiles without a current stored list.
            user = f"person{rng.randrange(users):05d}"
            return await stub.Recommend(pb.RecommendRequest(user_id=user, page_size=11), timeout=30)

        async def match_need() -> object:
            need = rng.choice(need_ids)
            return await stub.MatchNeed(pb.MatchNeedRequest(need_id=need, page_size=10), timeout=30)

        await wait_for(recommend, 300, "the recommendation API")
        await wait_for(match_need, 60, "MatchNeed")
        # The API fits its SDG classifier beside the server as it starts (seconds of CPU at
        # 20,000 items); a SuggestSdgs call returns once that fit is done, so no round
        # measures the start-up work.
        await stub.SuggestSdgs(pb.SuggestSdgsRequest(text="clean water for villages"), timeout=300)
        await bench_grpc._wait_ready(echo, bare, within=30)
        request = diag.EchoRequest(message="ping")

        async def echo_once() -> object:
            return await echo.Echo(request, timeout=30)

        for name, call in (
            ("Recommend", recommend),
            ("Recommend, computed (k 11)", recommend_computed),
            ("MatchNeed", match_need),
        ):
            side = bench_grpc.Side(name, api.process, api.address)
            beside = bench_grpc.Side(f"bare Echo (beside {name})", bare.process, bare.address)
            await bench_grpc.round_of(side, call, WARMUP_SECONDS, False)
            await bench_grpc.round_of(beside, echo_once, WARMUP_SECONDS, False)
            for n in range(ROUNDS):
                note(f"{name} round {n + 1} of {ROUNDS}")
                order = ((side, call), (beside, echo_once))
                for s, c in order if n % 2 == 0 else order[::-1]:
                    await bench_grpc.round_of(s, c, ROUND_SECONDS, True)
            phases.append((side, beside))
    return phases


async def lag(
    settings: RecommendationSettings, api: bench_grpc.Side, operator: str, item_ids: list[str]
) -> list[float]:
    """Seconds from producing an interaction of a new person until Recommend reflects it."""
    events = EventFactory(Origin("recommendation", INSTANCE, "bench"))
    producer = AIOKafkaProducer(**producer_options(settings))
    await producer.start()
    rng = random.Random(SEED + 1)
    found: list[float] = []
    try:
        async with channel(api.address, token=operator) as api_channel:
            stub = pb_grpc.RecommendationServiceStub(api_channel)
            # The worker has joined its group once an event of a throwaway person is applied.
            for n in range(LAG_SAMPLES + 1):
                user = f"lag{n:03d}{uuid.uuid4().hex[:8]}"
                now = datetime.now(UTC)
                interaction = interaction_pb2.Interaction(
                    id=uuid.uuid4().hex,
                    user_id=user,
                    item_id=rng.choice(item_ids),
                    kind=interaction_pb2.INTERACTION_KIND_SAVE,
                )
                interaction.occur_time.FromDatetime(now)
                event = events.interaction_recorded(interaction, now)
                started = time.monotonic()
                await producer.send_and_wait(
                    INTERACTION_TOPIC, event.envelope.SerializeToString(), key=user.encode()
                )
                limit = 120.0 if n == 0 else LAG_TIMEOUT
                while True:
                    reply = await stub.Recommend(
                        pb.RecommendRequest(user_id=user, page_size=10), timeout=30
                    )
                    if not reply.cold_start:
                        break
                    if time.monotonic() - started > limit:
                        raise RuntimeError(f"interaction of {user} not reflected in {limit:.0f} s")
                    await asyncio.sleep(0.01)
                if n:
                    found.append(time.monotonic() - started)
    finally:
        await producer.stop()
    return found


def start_logged(
    name: str, argv: list[str], port: int, env: dict[str, str], log: Path
) -> bench_grpc.Side:
    """A process of the service with its output in log (read when it fails)."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
    return bench_grpc.Side(name, process, f"127.0.0.1:{port}")


async def run(items: int = ITEMS, users: int = USERS) -> str:
    """Start the servers and processes, run both parts, stop everything; the markdown section."""
    workdir = RUN_DIR / f"bench-recommendation-perf-{os.getpid()}"
    workdir.mkdir(parents=True, exist_ok=True)
    mongo = servers.start_mongodb(workdir)
    kafka = servers.start_kafka(workdir)
    started: list[bench_grpc.Side] = []
    concurrency = bench_grpc.CONCURRENCY
    bench_grpc.CONCURRENCY = CONCURRENCY  # round_of reads it
    try:
        settings = load_settings(
            RecommendationSettings,
            instance=INSTANCE,
            mongodb_uri=servers.mongodb_uri(mongo.port, "recommendation"),
            kafka_bootstrap=f"{servers.LOOPBACK}:{kafka.port}",
            kafka_local_profile=True,
            jwt_secret=DEV_SECRET,
        )
        need_ids, load_seconds, backfill_seconds = await asyncio.to_thread(
            load, settings, items, users
        )
        api_port, bare_port, worker_port = (servers.free_port() for _ in range(3))
        api = start_logged(
            "recommendation API",
            [sys.executable, "-m", "ssg.recommendation"],
            api_port,
            env_for(settings, api_port),
            workdir / "api.log",
        )
        started.append(api)
        bare = bench_grpc._start(
            "bare grpc.aio Echo",
            [sys.executable, bench_grpc.__file__, "--serve-bare", str(bare_port)],
            bare_port,
            dict(os.environ),
        )
        started.append(bare)
        operator = DevTokenIssuer().issue("bench-operator", [Role.OPERATOR], instance=INSTANCE)
        phases = await latency(api, bare, operator, need_ids, users)
        await ensure_topics(settings.kafka_bootstrap, [*WORKER_TOPICS, MATCH_TOPIC], partitions=3)
        worker = start_logged(
            "recommendation worker",
            [sys.executable, "-m", "ssg.recommendation.worker"],
            worker_port,
            env_for(settings, worker_port),
            workdir / "worker.log",
        )
        started.append(worker)
        note("profile update lag")
        lags = await lag(settings, api, operator, [f"item{n:05d}" for n in range(100)])
    except BaseException:
        for log in sorted(workdir.glob("*.log")):
            note(f"{log.name}:\n" + "\n".join(log.read_text(errors="replace").splitlines()[-30:]))
        raise
    finally:
        bench_grpc.CONCURRENCY = concurrency
        # The worker before the broker: a worker whose broker vanished can hang on SIGTERM.
        for side in reversed(started):
            bench_grpc._stop(side)
        kafka.stop()
        mongo.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return report(phases, lags, load_seconds, backfill_seconds, items, users)


def report(
    phases: list[tuple[bench_grpc.Side, bench_grpc.Side]],
    lags: list[float],
    load_seconds: float,
    backfill_seconds: float,
    items: int,
    users: int,
) -> str:
    """The markdown section."""
    rows = []
    verdicts = []
    for side, bare in phases:
        ratio = side.rps / bare.rps if bare.rps else 0.0
        paired = statistics.median(
            a / b for a, b in zip(side.round_rps, bare.round_rps, strict=True) if b
        )
        for s in (side, bare):
            rows.append(
                f"| {s.name} | {s.rps:,.0f} | {s.percentile(50):.1f} | {s.percentile(99):.1f} "
                f"| {s.cpu_us_per_request:,.0f} | {s.requests:,} | {s.errors} |"
            )
        p99 = side.percentile(99)
        verdicts.append(
            f"- {side.name}: p99 {p99:.1f} ms (goal <= {P99_GOAL_MS:g} ms: "
            f"**{'met' if p99 <= P99_GOAL_MS and not side.errors else 'NOT met'}**); "
            f"{ratio:.2f}x the bare server's req/s (goal >= {RATIO_GOAL}x: "
            f"**{'met' if ratio >= RATIO_GOAL else 'NOT met'}**; median of paired rounds {paired:.2f}x)"
        )
    p95 = pct(lags, 95)
    return "\n".join(
        [
            "## Recommendation speed (gRPC latency, profile update lag)",
            "",
            f"{items:,} items (the demo items of the offline evaluation repeated under new ids, "
            f"with its needs) and {users:,} people with 10-40 interactions each, stored in "
            f"{load_seconds:.0f} s through the store's bulk loader (of which {backfill_seconds:.0f} s "
            "computing and storing every profile's recommendation list, ADR 0054); MongoDB "
            "(SecantusDB), "
            "`python -m ssg.recommendation` (full interceptor stack), the worker and the bare "
            "grpc.aio Echo server of the gRPC benchmark each in a process of their own on "
            f"loopback; one client at concurrency {CONCURRENCY} with an operator token. "
            "Recommend asks for a random person's 10 items (their stored list), "
            "'Recommend, computed' for 11 (more than a stored list holds, so computed per call "
            "as filtered requests are), MatchNeed for a random stored need's "
            f"10 solutions; {ROUNDS} rounds of {ROUND_SECONDS:g} s per side, alternating with the "
            "bare Echo.",
            "",
            "| call | req/s | p50 ms | p99 ms | server CPU us/req | requests | errors |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            *verdicts,
            "",
            "| profile update lag (InteractionRecorded on Kafka -> Recommend no longer a cold "
            "start) | samples | p50 | p95 | max | goal |",
            "|---|---:|---:|---:|---:|---|",
            f"| worker (`python -m ssg.recommendation.worker`) + API | {len(lags)} | "
            f"{pct(lags, 50):.0f} ms | {p95:.0f} ms | {max(lags) * 1000:.0f} ms | p95 <= "
            f"{LAG_GOAL_S:g} s: **{'met' if p95 <= LAG_GOAL_S * 1000 else 'NOT met'}** |",
            "",
            f"Machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end; "
            "the client, the API, the worker, MongoDB and Kafka share it.",
            "",
        ]
    )


def main() -> None:
    """Print the section; --items/--users for a smaller trial run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=ITEMS)
    parser.add_argument("--users", type=int, default=USERS)
    args = parser.parse_args()
    # SIGTERM (a timeout) unwinds like Ctrl-C, so the servers started here are stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    print(asyncio.run(run(args.items, args.users)))


if __name__ == "__main__":
    main()
