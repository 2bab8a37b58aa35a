"""The rate of the worker's stored-list sweep (ADR 0054), lists/s: the world of
bench_recommendation_perf (20,000 items, USERS people, lists backfilled) on a local SecantusDB,
then one item changes and one sweep round (the worker's lists and caches, as the worker builds
them) recomputes every list behind the new marker, paced and unpaced. Not part of run_all:
``uv run --frozen python tests/load/measure_list_sweep.py``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from pathlib import Path

from pymongo import MongoClient

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_recommendation_perf as perf

from ssg.platform.settings import load_settings
from ssg.recommendation.bootstrap import build_store
from ssg.recommendation.domain.model import Item, ItemKind
from ssg.recommendation.settings import RecommendationSettings
from ssg.recommendation.worker import build_sweep, worker_lists
from ssg.testing import servers

USERS = 2_000


def sweep_once(settings: RecommendationSettings, client: MongoClient[dict], tag: str) -> str:
    """Move the items' marker, sweep every list once; a line with the figures."""
    store = build_store(settings, client)
    store.apply_item(Item(f"new-{tag}", ItemKind.SOLUTION, "Water kiosks", "kiosks sell water"))
    sweep = build_sweep(settings, worker_lists(settings, store), f"measure-{tag}")
    behind = store.count_stale_recommendations(sweep.threshold())
    started = time.monotonic()
    done = asyncio.run(sweep.one_round(asyncio.Event()))
    seconds = time.monotonic() - started
    return (
        f"batch {settings.list_sweep_batch}, pause {settings.list_sweep_pause_seconds} s: "
        f"{done.rewritten} of {behind} lists in {seconds:.1f} s = "
        f"{done.rewritten / seconds:.0f} lists/s ({done.batches} batches)"
    )


def main() -> None:
    """Load, sweep unpaced and paced, print the figures."""
    workdir = perf.RUN_DIR / f"measure-list-sweep-{os.getpid()}"
    workdir.mkdir(parents=True, exist_ok=True)
    mongo = servers.start_mongodb(workdir)
    try:
        settings = load_settings(
            RecommendationSettings,
            mongodb_uri=servers.mongodb_uri(mongo.port, "recommendation"),
            list_sweep_behind_seconds=0,
        )
        _, load_seconds, backfill_seconds = perf.load(settings, perf.ITEMS, USERS)
        print(f"loaded {perf.ITEMS} items, {USERS} people in {load_seconds:.0f} s", flush=True)
        print(f"backfill {backfill_seconds:.1f} s", flush=True)
        client: MongoClient[dict] = MongoClient(settings.mongodb_uri)
        try:
            for n, pause in enumerate((0.0, 0.2)):
                paced = settings.model_copy(update={"list_sweep_pause_seconds": pause})
                print(sweep_once(paced, client, str(n)), flush=True)
        finally:
            client.close()
    finally:
        mongo.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
