"""Probe: one document by ``_id`` at concurrency 32, the sync driver through ``run_sync`` against
pymongo's native ``AsyncMongoClient`` (same ``client_options``), on a SecantusDB started as the
tests start it. Prints calls/s and this process's CPU per call for each, alternating rounds.

    uv run python tests/load/probe_reads.py [--docs 1000] [--rounds 4] [--seconds 2]
    uv run python tests/load/probe_reads.py --profile-get-solution [--calls 2000]

It measures the client side only (the database's own cost is the same for both): what a Get
handler pays to fetch its document before any conversion. ``--profile-get-solution`` instead
stores a few hundred solutions (bench_catalog's loader) and runs GetSolution's handler in this
process under cProfile, one call at a time, as bench_catalog's reviewer calls it.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import random
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

from pymongo import AsyncMongoClient, MongoClient

from ssg.platform.auth.tokens import DEV_SECRET, Identity, Role
from ssg.platform.mongo import client_options, run_sync
from ssg.platform.settings import PlatformSettings, load_settings
from ssg.testing import servers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

CONCURRENCY = 32

Read = Callable[[str], Coroutine[Any, Any, object]]


async def _round(read: Read, ids: list[str], seconds: float) -> tuple[int, float, float]:
    """(calls, wall seconds, process CPU seconds) of CONCURRENCY workers reading for seconds."""
    rng = random.Random(1)
    stop = time.monotonic() + seconds
    calls = 0

    async def worker() -> None:
        nonlocal calls
        while time.monotonic() < stop:
            doc = await read(rng.choice(ids))
            assert doc is not None
            calls += 1

    cpu0, t0 = time.process_time(), time.monotonic()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return calls, time.monotonic() - t0, time.process_time() - cpu0


async def probe(docs: int, rounds: int, seconds: float) -> str:
    """Run the probe and return a markdown table."""
    workdir = servers.scratch_dir("ssg-probe-reads-")
    mongo = servers.start_mongodb(workdir)
    try:
        uri = servers.mongodb_uri(mongo.port, "probe")
        settings = load_settings(PlatformSettings, service="probe", mongodb_uri=uri)
        options = client_options(settings)
        sync: MongoClient[dict[str, Any]] = MongoClient(uri, **options)
        native: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, **options)
        coll = sync.get_default_database().things
        ids = [f"doc-{n:06d}" for n in range(docs)]
        body = {"name": "x" * 80, "tags": list(range(10)), "text": "y" * 400}
        coll.insert_many([{"_id": i, **body} for i in ids])
        acoll = native.get_default_database().things

        async def via_threads(doc_id: str) -> object:
            return await run_sync(coll.find_one, {"_id": doc_id})

        async def via_native(doc_id: str) -> object:
            return await acoll.find_one({"_id": doc_id})

        sides: dict[str, Read] = {
            "sync pymongo via run_sync": via_threads,
            "AsyncMongoClient": via_native,
        }
        results: dict[str, list[tuple[int, float, float]]] = {name: [] for name in sides}
        for read in sides.values():  # warm up pools and connections
            await _round(read, ids, 0.5)
        for r in range(rounds):
            order = list(sides) if r % 2 == 0 else list(reversed(sides))
            for name in order:
                results[name].append(await _round(sides[name], ids, seconds))
        await native.close()
        sync.close()
    finally:
        mongo.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    lines = [
        f"find_one by _id, concurrency {CONCURRENCY}, {docs:,} documents, {rounds} rounds of "
        f"{seconds:g} s per side, alternating; load average {os.getloadavg()[0]:.1f} at the end.",
        "",
        "| client | calls/s | client CPU us/call | median round calls/s |",
        "|---|---:|---:|---:|",
    ]
    for name, runs in results.items():
        calls = sum(c for c, _, _ in runs)
        wall = sum(w for _, w, _ in runs)
        cpu = sum(c for _, _, c in runs)
        median = statistics.median(c / w for c, w, _ in runs)
        lines.append(f"| {name} | {calls / wall:,.0f} | {cpu / calls * 1e6:,.0f} | {median:,.0f} |")
    return "\n".join(lines)


async def profile_get_solution(calls: int, stored: int = 300) -> str:
    """cProfile of calls GetSolution handler calls (servicer included), one at a time."""
    import bench_catalog

    from ssg.catalog.bootstrap import bootstrap
    from ssg.catalog.settings import CatalogSettings
    from ssg.platform.grpc import interceptors

    workdir = servers.scratch_dir("ssg-probe-reads-")
    mongo = servers.start_mongodb(workdir)
    try:
        settings = load_settings(
            CatalogSettings,
            instance=bench_catalog.INSTANCE,
            mongodb_uri=servers.mongodb_uri(mongo.port, "catalog"),
            jwt_secret=DEV_SECRET,
        )
        published, _, _ = await asyncio.to_thread(bench_catalog.load, settings, stored, 0)
        app = bootstrap(settings)
        try:
            from ssg.contracts.catalog.v1 import catalog_service_pb2 as pb

            reviewer = Identity(
                "bench-reviewer", frozenset({Role.REVIEWER}), instance=bench_catalog.INSTANCE
            )
            rng = random.Random(3)
            # As the auth interceptor would have set it for a call with the reviewer's token.
            interceptors._identity.set(reviewer)

            async def one() -> None:
                request = pb.GetSolutionRequest(id=rng.choice(published))
                reply = await app.servicer.GetSolution(request, None)
                reply.SerializeToString()

            for _ in range(50):
                await one()
            breakdown = _get_solution_steps(app, published, calls)
            profiler = cProfile.Profile()
            cpu0, t0 = time.process_time(), time.perf_counter()
            profiler.enable()
            for _ in range(calls):
                await one()
            profiler.disable()
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
        finally:
            app.close()
    finally:
        mongo.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(40)
    stats.sort_stats("tottime").print_stats(25)
    head = (
        f"GetSolution handler, {calls} calls one at a time, reviewer token, {stored} stored: "
        f"{cpu / calls * 1e6:,.0f} us CPU and {wall / calls * 1e6:,.0f} us wall per call "
        f"(under cProfile); load average {os.getloadavg()[0]:.1f}"
    )
    return head + "\n\n" + breakdown + "\n\n" + out.getvalue()


def _get_solution_steps(app: Any, published: list[str], calls: int) -> str:
    """CPU per call of each step of GetSolution, timed alone in this thread (no profiler)."""
    from ssg.catalog import mapping
    from ssg.catalog.store.documents import SOLUTIONS, record_from_doc

    db = app.store.db
    ids = [random.Random(5).choice(published) for _ in range(calls)]
    docs = [db.solutions.find_one({"_id": i}) for i in ids[:200]]
    records = [record_from_doc(SOLUTIONS, d) for d in docs]
    org_ids = [r.organization_id for r in records]
    messages = [mapping.solution_to_proto(r) for r in records]
    steps: dict[str, Callable[[int], object]] = {
        "find_one solution (pymongo, sync)": lambda n: db.solutions.find_one({"_id": ids[n]}),
        "find_one organization (read model)": lambda n: app.store.get_organization(
            org_ids[n % 200]
        ),
        "reviews_of (find + sort, staff only)": lambda n: app.store.reviews_of(ids[n]),
        "record_from_doc (document -> Solution)": lambda n: record_from_doc(
            SOLUTIONS, docs[n % 200]
        ),
        "solution_to_proto (Solution -> message)": lambda n: mapping.solution_to_proto(
            records[n % 200]
        ),
        "SerializeToString": lambda n: messages[n % 200].SerializeToString(),
    }
    lines = ["| step | CPU us/call | wall us/call |", "|---|---:|---:|"]
    for name, step in steps.items():
        cpu0, t0 = time.process_time(), time.perf_counter()
        for n in range(calls):
            step(n)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
        lines.append(f"| {name} | {cpu / calls * 1e6:,.0f} | {wall / calls * 1e6:,.0f} |")
    return "\n".join(lines)


def main() -> None:
    """Print the probe's table (or the GetSolution profile)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--profile-get-solution", action="store_true")
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    if args.profile_get_solution:
        print(asyncio.run(profile_get_solution(args.calls)))
    else:
        print(asyncio.run(probe(args.docs, args.rounds, args.seconds)))


if __name__ == "__main__":
    main()
