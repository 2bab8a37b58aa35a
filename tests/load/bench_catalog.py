"""Benchmark: the catalog API with 20,000 solutions stored, next to the bare grpc.aio Echo server
of the Foundation benchmark (bench_grpc) in the same run, plus import throughput.

MongoDB (SecantusDB), `python -m ssg.catalog` and the bare server each run in their own process
on loopback. The solutions (the catalog demo set repeated under new external ids, owned by
organizations put straight into the organizations read model) are stored first through the
service's store port: ``LOAD_THREADS`` threads each writing batches of ``LOAD_BATCH`` in one
transaction, most of them published (with their SolutionPublished outbox event), a pool of
approved IN_REVIEW ones for the PublishSolution phase. Then one client (this process,
concurrency 32, a valid token on every call) runs each phase on its own, rounds alternating
with the bare Echo, every call of a round awaited before the next round starts:
GetSolution (random stored id), ListSolutions (page of 20, filtered by SDG and status
PUBLISHED), PublishSolution (a fresh approved solution per call). Last, ImportSolutions
throughput: new rows in batches of 500 through the API (validation, external-id lookup, one
transaction per batch). Goals: GetSolution >= 0.4x bare req/s; import >= 2,000 solutions/s.

Known local limit: the MongoDB stand-in reads the whole index range a list filter selects
before it applies the limit, so ListSolutions scales with the matching solutions here; the
report says so.

    uv run python tests/load/bench_catalog.py [--stored 20000]   # prints a markdown section
    uv run python tests/load/bench_catalog.py --calls GetSolution  # only the phases named
    uv run python tests/load/bench_catalog.py --stored 0 --datastore-only
        # only the datastore alone: insert_many of the import's solution documents

Beside the import, batch for batch in alternating order, the datastore alone (datastore_ceiling):
one insert_many of the same number of published solution documents, built beforehand by the
service's own document function, into the same ``solutions`` collection (same indexes, same stored
solutions) through pymongo from this process: no service, no gRPC, no transaction, no external ids
and no outbox rows, i.e. less than an import must write. It says what share of the goal the
stand-in itself allows.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import random
import shutil
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_grpc  # the Foundation benchmark: its bare server, Side, rounds and process helpers
import datastore_ceiling
import grpc

from ssg.catalog import demo
from ssg.catalog.bootstrap import bootstrap
from ssg.catalog.domain import solutions as rules
from ssg.catalog.domain.model import (
    Criterion,
    CriterionScore,
    OrganizationRef,
    OrganizationStatus,
    ReviewOutcome,
    Solution,
    Source,
)
from ssg.catalog.settings import CatalogSettings
from ssg.catalog.store.documents import SOLUTIONS, Doc, record_doc
from ssg.catalog.store.mongo import MongoStore
from ssg.catalog.store.ports import Transaction
from ssg.cli.seed import wait_serving
from ssg.cli.seed_catalog import CATALOG_HEALTH
from ssg.contracts.catalog.v1 import catalog_service_pb2 as pb
from ssg.contracts.catalog.v1 import catalog_service_pb2_grpc as pb_grpc
from ssg.contracts.catalog.v1 import events_pb2 as ev
from ssg.contracts.catalog.v1 import solution_pb2
from ssg.contracts.diagnostics.v1 import diagnostics_pb2_grpc
from ssg.platform.auth.tokens import DEV_SECRET, DevTokenIssuer, Role
from ssg.platform.grpc.client import channel
from ssg.platform.settings import load_settings
from ssg.testing import servers

STORED = 20_000
PUBLISH_POOL = 6_000  # approved IN_REVIEW solutions among the stored ones
IMPORT_ROWS = 2_000
IMPORT_BATCH = 500
LOAD_BATCH = 500
LOAD_THREADS = 4
CONCURRENCY = bench_grpc.CONCURRENCY  # 32
ROUNDS = 4
ROUND_SECONDS = 1.0
LIST_ROUND_SECONDS = 3.0  # a list over the whole collection takes hundreds of ms locally
WARMUP_SECONDS = 0.5
GET_GOAL, IMPORT_GOAL = 0.4, 2_000.0
INSTANCE = "global"


def _organizations(data: demo.DemoCatalog) -> dict[str, str]:
    """Read-model ids of every organization the demo refers to (key -> id)."""
    return {key: uuid.uuid5(uuid.NAMESPACE_URL, key).hex for key in data.organization_keys()}


def _contents(
    data: demo.DemoCatalog, ids: dict[str, str], count: int, tag: str
) -> list[tuple[str, str, Any]]:
    """(external id, owner id, content) of count solutions: the demo set, repeated."""
    rows = []
    for n in range(count):
        record = data.solutions[n % len(data.solutions)]
        message = demo.solution_message(record, ids)
        content = replace(record.content, partners=tuple(
            replace(p, organization_id=ids[p.organization_id]) for p in record.content.partners
        ))  # fmt: skip
        rows.append((f"bench-{tag}-{n}", message.organization_id, content))
    return rows


def load(settings: CatalogSettings, count: int, pool: int) -> tuple[list[str], list[str], float]:
    """Store count solutions through the store port; (published ids, approved ids, seconds)."""
    app = bootstrap(settings)
    try:
        app.store.ensure_indexes()
        data = demo.generate(solutions=max(119, min(count, 1500)), knowledge=0, needs=0, funding=0)
        ids = _organizations(data)
        for key, org_id in ids.items():
            app.store.apply_organization(
                OrganizationRef(org_id, key, OrganizationStatus.VERIFIED, INSTANCE, version=1)
            )
        events = app.service.events
        rows = _contents(data, ids, count, "stored")
        chunks = [rows[i : i + LOAD_BATCH] for i in range(0, len(rows), LOAD_BATCH)]
        scores = tuple(CriterionScore(c.value, 4, "ok") for c in Criterion)
        began = time.monotonic()

        def write(chunk_no: int) -> tuple[list[str], list[str]]:
            chunk = chunks[chunk_no]

            def unit(tx: Transaction) -> tuple[list[str], list[str]]:
                now = datetime.now(UTC)
                published, approved = [], []
                for i, (external, owner, content) in enumerate(chunk):
                    s: Solution = rules.create(
                        uuid.uuid4().hex, owner, content, "bench", INSTANCE, now,
                        source=Source.IMPORT, external_id=external,
                    )  # fmt: skip
                    if chunk_no * LOAD_BATCH + i < pool:
                        s = rules.start_review(rules.submit(s, "bench", now), now)
                        s, review = rules.review(
                            s, uuid.uuid4().hex, scores, ReviewOutcome.APPROVE, "", "bench", now
                        )
                        tx.insert_review(review)
                        approved.append(s.id)
                    else:
                        s = rules.publish_imported(s, "bench", now)
                        event = events.solution(ev.SolutionPublished, s, True)
                        tx.add_event(event.topic, event.envelope)
                        published.append(s.id)
                    tx.insert(SOLUTIONS, s)
                return published, approved

            return app.store.atomically(unit)

        with ThreadPoolExecutor(LOAD_THREADS) as threads:
            results = list(threads.map(write, range(len(chunks))))
        seconds = time.monotonic() - began
        return (
            [i for published, _ in results for i in published],
            [i for _, approved in results for i in approved],
            seconds,
        )
    finally:
        app.close()


def _server_env(
    settings: CatalogSettings, port: int, metrics_port: int, extra: dict[str, str]
) -> dict[str, str]:
    return bench_grpc.api_env(
        "catalog", settings.mongodb_uri, port, metrics_port, extra, sweep_seconds="0"
    )


DATASTORE = "datastore"  # the --calls name of the datastore-alone import
CALLS = ("GetSolution", "ListSolutions", "PublishSolution", "ImportSolutions", DATASTORE)


async def run(
    stored: int = STORED, only: tuple[str, ...] = CALLS, api_env: dict[str, str] | None = None
) -> str:
    """Run the benchmark and return a markdown section with the results (api_env: SSG_
    settings for the API process, e.g. SSG_READ_CACHE_ENTRIES=0)."""
    notes: list[str] = []
    workdir = servers.scratch_dir("ssg-bench-catalog-")
    mongo = servers.start_mongodb(workdir)
    started: list[bench_grpc.Side] = []
    try:
        settings = load_settings(
            CatalogSettings,
            instance=INSTANCE,
            mongodb_uri=servers.mongodb_uri(mongo.port, "catalog"),
            jwt_secret=DEV_SECRET,
        )
        pool = min(PUBLISH_POOL, stored // 3)
        published, approved, load_seconds = await asyncio.to_thread(load, settings, stored, pool)
        api_port, bare_port = servers.free_port(), servers.free_port()
        metrics_port = servers.free_port()
        api = bench_grpc._start(
            "catalog API",
            [sys.executable, "-m", "ssg.catalog"],
            api_port,
            _server_env(settings, api_port, metrics_port, api_env or {}),
        )
        started.append(api)
        bare = bench_grpc._start(
            "bare grpc.aio Echo",
            [sys.executable, bench_grpc.__file__, "--serve-bare", str(bare_port)],
            bare_port,
            dict(os.environ),
        )
        started.append(bare)
        phases, imports = await _measure(
            api, bare, published, approved, settings, mongo.pid, only, metrics_port, notes
        )
        notes.append(f"- API settings: {api_env or 'default'}.")
    finally:
        for side in started:
            bench_grpc._stop(side)
        mongo.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    report = _report(phases, stored, load_seconds, imports)
    return report + "\n".join(notes) + "\n"


Call = Callable[[], Coroutine[Any, Any, object]]
ERROR_CODES: collections.defaultdict[str, collections.Counter[str]] = collections.defaultdict(
    collections.Counter
)  # status codes of failed calls, by row of the report


Phase = tuple[bench_grpc.Side, bench_grpc.Side]  # (the catalog call, the bare Echo beside it)


async def _measure(
    api: bench_grpc.Side,
    bare: bench_grpc.Side,
    published: list[str],
    approved: list[str],
    settings: CatalogSettings,
    mongo_pid: int,
    only: tuple[str, ...] = CALLS,
    metrics_port: int = 0,
    notes: list[str] | None = None,
) -> tuple[list[Phase], Imports]:
    issuer = DevTokenIssuer()
    reviewer = issuer.issue("bench-reviewer", [Role.REVIEWER], instance=INSTANCE)
    operator = issuer.issue("bench-operator", [Role.OPERATOR], instance=INSTANCE)
    rng = random.Random(7)
    pool = list(approved)
    rng.shuffle(pool)
    async with (
        channel(api.address, token=reviewer, max_message_bytes=32 * 1024 * 1024) as api_channel,
        channel(bare.address, token=reviewer) as bare_channel,
    ):
        stub = cast("pb_grpc.CatalogServiceAsyncStub", pb_grpc.CatalogServiceStub(api_channel))
        echo = diagnostics_pb2_grpc.DiagnosticsServiceStub(bare_channel)
        await wait_serving(api.address, CATALOG_HEALTH)
        await bench_grpc._wait_ready(echo, bare, within=30)
        await bench_grpc.wait_cache_current(metrics_port)

        async def get_one() -> object:
            return await stub.GetSolution(pb.GetSolutionRequest(id=rng.choice(published)))

        async def list_page() -> object:
            request = pb.ListSolutionsRequest(
                sdg=rng.randint(1, 17),  # type: ignore[arg-type]
                status=solution_pb2.SOLUTION_STATUS_PUBLISHED,
            )
            request.page.page_size = 20
            # A full scan per page locally: 32 of them queue up well past the default deadline.
            return await stub.ListSolutions(request, timeout=120)

        async def publish_one() -> object:
            if not pool:
                raise RuntimeError("the pool of approved solutions ran out: raise PUBLISH_POOL")
            return await stub.PublishSolution(pb.PublishSolutionRequest(id=pool.pop()))

        calls: list[tuple[str, Call, float]] = [
            ("GetSolution", get_one, ROUND_SECONDS),
            ("ListSolutions (page 20, SDG + status filter)", list_page, LIST_ROUND_SECONDS),
            ("PublishSolution", publish_one, ROUND_SECONDS),
        ]
        phases: list[Phase] = []
        for name, call, seconds in calls:
            if name.split(" ")[0] not in only:
                continue
            side = bench_grpc.Side(name, api.process, api.address)
            beside = bench_grpc.Side(
                f"bare Echo (beside {name.split(' ')[0]})", bare.process, bare.address
            )
            # Each phase on its own: every round awaits all of its calls before the next starts.
            await bench_grpc.round_of(side, call, WARMUP_SECONDS, False, ERROR_CODES[side.name])
            counts = bench_grpc.read_cache_counts(metrics_port)
            for index in range(ROUNDS):
                order = ("api", "bare") if index % 2 == 0 else ("bare", "api")
                for which in order:
                    if which == "api":
                        await bench_grpc.round_of(side, call, seconds, True, ERROR_CODES[side.name])
                    else:
                        await bench_grpc._round(echo, beside, ROUND_SECONDS, True)
            phases.append((side, beside))
            if notes is not None:
                after = bench_grpc.read_cache_counts(metrics_port)
                notes.append(f"- Read cache during {name}: {bench_grpc.cache_note(counts, after)}.")
        imports = Imports()
        if "ImportSolutions" in only or DATASTORE in only:
            imports = await _import(
                stub if "ImportSolutions" in only else None,
                operator,
                settings if DATASTORE in only else None,
                mongo_pid,
            )
    return phases, imports


@dataclass
class Imports:
    """Rows written and seconds taken, batch by batch, by the import and the datastore alone."""

    api_rows: int = 0
    api_seconds: float = 0.0
    api_db_cpu: float = 0.0
    bare_rows: int = 0
    bare_seconds: float = 0.0
    bare_db_cpu: float = 0.0
    batch_ratios: list[float] = field(default_factory=list)
    api_batches: list[float] = field(default_factory=list)  # rows/s of each batch
    bare_batches: list[float] = field(default_factory=list)

    @property
    def api_rate(self) -> float:
        """Solutions per second through ImportSolutions."""
        return self.api_rows / self.api_seconds if self.api_seconds else 0.0

    @property
    def bare_rate(self) -> float:
        """Documents per second of the datastore alone."""
        return self.bare_rows / self.bare_seconds if self.bare_seconds else 0.0


def _bare_batches(settings: CatalogSettings, count: int) -> tuple[MongoStore, list[list[Doc]]]:
    """The store and count published solution documents in batches of IMPORT_BATCH, built as
    the import builds them (created, published), ready for insert_many."""
    app = bootstrap(settings)
    store = cast("MongoStore", app.store)
    data = demo.generate(solutions=1500, knowledge=0, needs=0, funding=0)
    now = datetime.now(UTC)
    docs = []
    for external, owner, content in _contents(data, _organizations(data), count, "bare"):
        s = rules.create(
            uuid.uuid4().hex, owner, content, "bench", INSTANCE, now,
            source=Source.IMPORT, external_id=external,
        )  # fmt: skip
        docs.append(record_doc(SOLUTIONS, rules.publish_imported(s, "bench", now)))
    return store, [docs[i : i + IMPORT_BATCH] for i in range(0, len(docs), IMPORT_BATCH)]


async def _import(
    stub: pb_grpc.CatalogServiceAsyncStub | None,
    operator: str,
    settings: CatalogSettings | None,
    mongo_pid: int,
) -> Imports:
    """Solutions per second through ImportSolutions (new rows, published, batches of 500) and,
    batch for batch in alternating order, of the datastore alone (insert_many of as many
    solution documents); either side may be left out (None)."""
    data = demo.generate(solutions=1500, knowledge=0, needs=0, funding=0)
    ids = _organizations(data)
    rows = [
        pb.ImportRow(
            external_id=f"bench-import-{n}",
            solution=demo.solution_message(data.solutions[n % len(data.solutions)], ids),
        )
        for n in range(IMPORT_ROWS)
    ]
    metadata = [("authorization", f"Bearer {operator}")]
    out = Imports()
    store, bare = (None, []) if settings is None else _bare_batches(settings, IMPORT_ROWS)

    async def api_batch(i: int) -> float:
        assert stub is not None
        began = time.perf_counter()
        reply = await stub.ImportSolutions(
            pb.ImportSolutionsRequest(rows=rows[i : i + IMPORT_BATCH], publish=True),
            metadata=metadata,
            timeout=300,
        )
        out.api_rows += reply.created_count
        out.api_seconds += time.perf_counter() - began
        return reply.created_count / (time.perf_counter() - began)

    async def bare_batch(i: int) -> float:
        assert store is not None
        began = time.perf_counter()
        written = await asyncio.to_thread(
            datastore_ceiling.insert_many, store.db, SOLUTIONS.collection, bare[i // IMPORT_BATCH]
        )
        out.bare_rows += written
        out.bare_seconds += time.perf_counter() - began
        return written / (time.perf_counter() - began)

    try:
        for n, i in enumerate(range(0, len(rows), IMPORT_BATCH)):
            rates: dict[str, float] = {}
            sides = [("api", api_batch)] if stub is not None else []
            sides += [("bare", bare_batch)] if store is not None else []
            for name, side in sides if n % 2 == 0 else sides[::-1]:
                cpu = bench_grpc._cpu_seconds(mongo_pid)
                try:
                    rates[name] = await side(i)
                except grpc.aio.AioRpcError as exc:
                    # Reported, not raised: the phases measured before keep their numbers.
                    ERROR_CODES["ImportSolutions"][f"{exc.code().name} ({exc.details()})"] += 1
                    return out
                used = bench_grpc._cpu_seconds(mongo_pid) - cpu
                if name == "api":
                    out.api_db_cpu += used
                    out.api_batches.append(rates[name])
                else:
                    out.bare_db_cpu += used
                    out.bare_batches.append(rates[name])
            if len(rates) == 2 and rates["bare"]:
                out.batch_ratios.append(rates["api"] / rates["bare"])
    finally:
        if store is not None:
            store.client.close()
    return out


def _report(phases: list[Phase], stored: int, load_seconds: float, imports: Imports) -> str:
    def ratio(side: bench_grpc.Side, bare: bench_grpc.Side) -> float:
        return side.rps / bare.rps if bare.rps else 0.0

    def paired(side: bench_grpc.Side, bare: bench_grpc.Side) -> float:
        pairs = [s / b for s, b in zip(side.round_rps, bare.round_rps, strict=True) if b]
        return statistics.median(pairs) if pairs else 0.0

    rows = []
    for side, bare in phases:
        for s in (side, bare):
            rows.append(
                f"| {s.name} | {s.rps:,.0f} | {s.percentile(50):.2f} | {s.percentile(99):.2f} "
                f"| {s.cpu_us_per_request:,.0f} | {'' if s is bare else f'{ratio(s, bare):.2f}x'} "
                f"| {s.requests:,} | {s.errors} |"
            )
    by = {side.name.split(" ")[0]: (side, bare) for side, bare in phases}
    import_rate, import_rows = imports.api_rate, imports.api_rows
    import_met = "met" if import_rate >= IMPORT_GOAL else "NOT met"
    findings: list[str] = []
    if "GetSolution" in by:
        get, get_bare = by["GetSolution"]
        met = "met" if ratio(get, get_bare) >= GET_GOAL else "NOT met"
        findings.append(
            f"- GetSolution / bare: **{ratio(get, get_bare):.2f}x** (goal >= {GET_GOAL}x: {met}; "
            f"median of paired rounds {paired(get, get_bare):.2f}x)"
        )
    if "ListSolutions" in by:
        listing, list_bare = by["ListSolutions"]
        findings.append(
            f"- ListSolutions / bare: {ratio(listing, list_bare):.3f}x. The filter is served by "
            "the (sdgs, status, page) index (ADR 0007), but the local MongoDB stand-in "
            "(SecantusDB) reads the whole index range before it applies the limit, so each page "
            f"costs every published solution of the SDG among the {stored:,}; MongoDB stops at "
            "the page. Not hidden, not tuned away."
        )
    if import_rows:
        findings.append(
            f"- ImportSolutions: **{import_rate:,.0f} solutions/s** ({import_rows:,} new "
            f"published rows, batches of {IMPORT_BATCH}; goal >= {IMPORT_GOAL:,.0f}/s: "
            f"{import_met})."
        )
    if imports.bare_rows:
        allows = "allows" if imports.bare_rate >= IMPORT_GOAL else "does NOT allow"
        findings.append(
            f"- The datastore alone (insert_many of {IMPORT_BATCH} published solution documents, "
            f"no transaction, same collection and indexes): **{imports.bare_rate:,.0f} "
            f"documents/s** ({imports.bare_rows:,} documents, MongoDB CPU "
            f"{imports.bare_db_cpu / imports.bare_rows * 1e6:,.0f} us each): the stand-in "
            f"{allows} the goal of {IMPORT_GOAL:,.0f}/s here"
            + (
                f" ({imports.bare_rate / IMPORT_GOAL:.2f} of it)."
                if imports.bare_rate < IMPORT_GOAL
                else "."
            )
        )
    if imports.api_rows and imports.bare_rows:
        findings.append(
            f"- ImportSolutions / the datastore alone: **{import_rate / imports.bare_rate:.2f}x** "
            f"(median of paired batches {statistics.median(imports.batch_ratios):.2f}x); MongoDB "
            f"CPU per imported row {imports.api_db_cpu / imports.api_rows * 1e6:,.0f} us "
            f"against {imports.bare_db_cpu / imports.bare_rows * 1e6:,.0f} us per document "
            "alone. Batch by batch (rows/s): import "
            + ", ".join(f"{r:,.0f}" for r in imports.api_batches)
            + "; datastore alone "
            + ", ".join(f"{r:,.0f}" for r in imports.bare_batches)
            + "."
        )
    return "\n".join(
        [
            "## Catalog API",
            "",
            f"{stored:,} solutions stored (loaded in {load_seconds:.1f} s, "
            f"{stored / load_seconds:,.0f}/s, through the service's store port: {LOAD_THREADS} "
            f"threads, {LOAD_BATCH} solutions per MongoDB transaction, published ones with their "
            "SolutionPublished outbox event, the rest approved and waiting in review for the "
            "publish phase). MongoDB (SecantusDB), `python -m ssg.catalog` and the bare grpc.aio "
            "Echo server of the gRPC benchmark each in its own process on loopback; one client, "
            f"concurrency {CONCURRENCY}, a reviewer token on every call. Each phase runs alone, "
            f"{ROUNDS} rounds alternating with the bare server; every round awaits all its calls "
            "before the next begins, so no phase spills into another.",
            "",
            "| call | req/s | p50 ms | p99 ms | server CPU us/req | vs bare | requests | errors |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            *findings,
            *(
                f"- Errors of {name}: "
                + ", ".join(f"{n} {code}" for code, n in codes.most_common())
                for name, codes in ERROR_CODES.items()
                if codes
            ),
            f"- Machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end; "
            "the client, the API and MongoDB share it.",
            "",
        ]
    )


def main() -> None:
    """Print the benchmark's markdown section."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stored", type=int, default=STORED, help="solutions to store")
    parser.add_argument(
        "--calls",
        default=",".join(CALLS),
        help=f"phases to run, comma separated ({DATASTORE}: the datastore-alone import)",
    )
    parser.add_argument(
        "--datastore-only",
        action="store_true",
        help=f"only the datastore-alone import (--calls {DATASTORE})",
    )
    parser.add_argument(
        "--api-env", action="append", default=[], help="SSG_NAME=value for the API (repeatable)"
    )
    args = parser.parse_args()
    only = (DATASTORE,) if args.datastore_only else tuple(c.strip() for c in args.calls.split(","))
    if set(only) - set(CALLS):
        parser.error(f"unknown calls: {', '.join(sorted(set(only) - set(CALLS)))}")
    print(asyncio.run(run(args.stored, only, bench_grpc.env_overrides(args.api_env))))


if __name__ == "__main__":
    main()
