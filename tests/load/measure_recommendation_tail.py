"""Where the Recommend / MatchNeed tail comes from (issue #7): the world of
bench_recommendation_perf (20,000 items, --users people, lists backfilled) on a local SecantusDB,
then API processes one after the other on that same world, each asked Recommend (stored list,
k 10) and MatchNeed (k 10) at concurrency 16 for --seconds; per phase p50/p99 and the calls over
100 ms counted per second of the phase, so periodic stalls show. --python runs alternate with
another interpreter (e.g. main's checkout, ``/work/main/.venv/bin/python``) for an A/B on one
world. Not part of run_all:
``uv run --frozen python tests/load/measure_recommendation_tail.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_grpc
import bench_recommendation_perf as perf

from ssg.contracts.recommendation.v1 import recommendation_service_pb2 as pb
from ssg.contracts.recommendation.v1 import recommendation_service_pb2_grpc as pb_grpc
from ssg.platform.auth.tokens import DEV_SECRET, DevTokenIssuer, Role
from ssg.platform.grpc.client import channel
from ssg.platform.settings import load_settings
from ssg.recommendation.settings import RecommendationSettings
from ssg.testing import servers

SLOW_S = 0.1


async def phase(name: str, call: Callable[[], Awaitable[object]], seconds: float) -> None:
    """Calls back to back from CONCURRENCY workers for seconds; print the figures."""
    calls: list[tuple[float, float]] = []
    began = time.perf_counter()
    stop_at = began + seconds

    async def worker() -> None:
        while (started := time.perf_counter()) < stop_at:
            await call()
            calls.append((started - began, time.perf_counter() - started))

    await asyncio.gather(*(worker() for _ in range(perf.CONCURRENCY)))
    latencies = [latency for _, latency in calls]
    slow: dict[int, list[float]] = {}
    for at, latency in calls:
        if latency > SLOW_S:
            slow.setdefault(int(at), []).append(latency)
    print(
        f"  {name}: {len(calls) / seconds:.0f} req/s, p50 {perf.pct(latencies, 50):.1f} ms,"
        f" p99 {perf.pct(latencies, 99):.1f} ms, max {max(latencies) * 1000:.0f} ms",
        flush=True,
    )
    print(
        "  calls over 100 ms per second of the phase (count, max ms): "
        + ", ".join(f"{s}: {len(v)}/{max(v) * 1000:.0f}" for s, v in sorted(slow.items())),
        flush=True,
    )


async def ask(
    address: str, operator: str, users: int, need_ids: list[str], seconds: float, name: str
) -> None:
    """Both phases against one API process once it is ready."""
    rng = random.Random(perf.SEED)
    async with channel(address, token=operator) as api_channel:
        stub = pb_grpc.RecommendationServiceStub(api_channel)

        async def recommend() -> object:
            user = f"person{rng.randrange(users):05d}"
            return await stub.Recommend(pb.RecommendRequest(user_id=user, page_size=10), timeout=30)

        async def match_need() -> object:
            request = pb.MatchNeedRequest(need_id=rng.choice(need_ids), page_size=10)
            return await stub.MatchNeed(request, timeout=30)

        await perf.wait_for(recommend, 300, "the recommendation API")
        await perf.wait_for(match_need, 60, "MatchNeed")
        # As the benchmark: the start-up SDG classifier fit is done first.
        await stub.SuggestSdgs(pb.SuggestSdgsRequest(text="clean water"), timeout=300)
        print(f"{name} (load average {os.getloadavg()[0]:.1f})", flush=True)
        await phase("Recommend", recommend, seconds)
        await phase("MatchNeed", match_need, seconds)


async def measure(users: int, seconds: float, pythons: list[str]) -> None:
    """Load the world once, then one API process per interpreter in turn."""
    workdir = perf.RUN_DIR / f"measure-recommendation-tail-{os.getpid()}"
    workdir.mkdir(parents=True, exist_ok=True)
    mongo = servers.start_mongodb(workdir)
    kafka = servers.start_kafka(workdir)
    try:
        settings = load_settings(
            RecommendationSettings,
            instance=perf.INSTANCE,
            mongodb_uri=servers.mongodb_uri(mongo.port, "recommendation"),
            kafka_bootstrap=f"{servers.LOOPBACK}:{kafka.port}",
            kafka_local_profile=True,
            jwt_secret=DEV_SECRET,
        )
        need_ids, load_seconds, _ = await asyncio.to_thread(perf.load, settings, perf.ITEMS, users)
        print(f"loaded {perf.ITEMS} items, {users} people in {load_seconds:.0f} s", flush=True)
        operator = DevTokenIssuer().issue("bench-operator", [Role.OPERATOR], instance=perf.INSTANCE)
        for n, python in enumerate(pythons):
            port = servers.free_port()
            api = perf.start_logged(
                "recommendation API",
                [python, "-m", "ssg.recommendation"],
                port,
                perf.env_for(settings, port),
                workdir / f"api-{n}.log",
            )
            try:
                await ask(api.address, operator, users, need_ids, seconds, f"API {n + 1}: {python}")
            finally:
                bench_grpc._stop(api)
    finally:
        kafka.stop()
        mongo.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    """Parse the options and measure."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--python", help="another interpreter to alternate with this one")
    parser.add_argument("--pairs", type=int, default=2)
    args = parser.parse_args()
    pythons = [p for _ in range(args.pairs) for p in (args.python, sys.executable) if p]
    asyncio.run(measure(args.users, args.seconds, pythons))


if __name__ == "__main__":
    main()
