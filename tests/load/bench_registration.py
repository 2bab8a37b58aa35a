"""Benchmark: the registration API at 1,000 and 10,000 stored organizations, next to the bare
grpc.aio Echo server of the Foundation benchmark (bench_grpc) in the same run.

MongoDB (SecantusDB), `python -m ssg.registration` and the bare server each run in their own
process on loopback. Verified organizations are loaded through the service's own store port
(MongoStore transactions writing each organization, its audit entries, its first admin and its
OrganizationRegistered + OrganizationVerified outbox events), in batches from a few threads,
because RegisterOrganization calls would only measure the same thing slower: first 1,000, the
calls are measured, then the store is topped up to 10,000 and the calls are measured again.

Each call type is measured in a phase of its own (GetOrganization, then ListOrganizations, then
RegisterOrganization), in rounds alternating with the bare Echo. A round lets CONCURRENCY
workers start calls for ROUND_SECONDS (at most ROUND_CALLS calls) and then waits for every call
it started: no call outlives its round, and before the next round (bare or not) the API and the
database must have gone quiet, so a slow call type cannot spill into the next one. The client
deadline is DEADLINE_SECONDS, long enough that slow calls are measured rather than cut off;
errors are counted by status code. A phase starts no new round after PHASE_SECONDS.

    uv run python tests/load/bench_registration.py     # prints a markdown section
    uv run python tests/load/bench_registration.py --sizes 1000 --profile /tmp/prof
        # also samples the API and MongoDB processes during each GetOrganization phase
    uv run python tests/load/bench_registration.py --calls GetOrganization
        # only the phases named (comma separated)
    uv run python tests/load/bench_registration.py --sizes 1000 --datastore-only
        # only the datastore alone beside the bare Echo (no RegisterOrganization calls)

The RegisterOrganization phase has a third side, the datastore alone (datastore_ceiling): one
MongoDB transaction inserting an organization document and its OrganizationRegistered outbox row,
built beforehand by the service's own document functions, into the same database (same indexes,
same stored organizations) through pymongo from this process, on a pool of as many threads as the
API's MongoDB pool; no service, no gRPC. Its rounds rotate with the API's and the bare Echo's, so
the report can say what share of the goal the stand-in itself allows.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import random
import runpy
import shutil
import signal
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, cast

import bench_grpc  # the Foundation benchmark: its bare server and process helpers
import datastore_ceiling
import grpc
from datastore_ceiling import TransactionWriter, Write, outbox_row

from ssg.cli.seed import REGISTRATION_HEALTH, wait_serving
from ssg.contracts.diagnostics.v1 import diagnostics_pb2 as diag_pb
from ssg.contracts.diagnostics.v1 import diagnostics_pb2_grpc
from ssg.contracts.registration.v1 import events_pb2 as ev
from ssg.contracts.registration.v1 import registration_service_pb2 as pb
from ssg.contracts.registration.v1 import registration_service_pb2_grpc as pb_grpc
from ssg.platform.auth.tokens import DEV_SECRET, DevTokenIssuer, Identity, Role
from ssg.platform.grpc.client import channel
from ssg.platform.settings import load_settings
from ssg.registration import demo
from ssg.registration.bootstrap import bootstrap
from ssg.registration.domain import members as member_rules
from ssg.registration.domain import organizations as org_rules
from ssg.registration.domain.model import OrganizationProfile
from ssg.registration.domain.validation import OrganizationDraft, validate_organization
from ssg.registration.settings import RegistrationSettings
from ssg.registration.store.mongo import MongoStore, organization_doc
from ssg.registration.store.ports import Transaction
from ssg.testing import servers

SIZES = (1_000, 10_000)
LOAD_BATCH = 250
LOAD_THREADS = 4
CONCURRENCY = bench_grpc.CONCURRENCY  # 32, as in the Foundation benchmark
ROUNDS = 3
ROUND_SECONDS = 1.0  # calls start only within this window; the round ends when all are done
ROUND_CALLS = 5_000  # and at most this many per round
PHASE_SECONDS = 30.0  # no new round after this (the one under way always finishes)
WARMUP_CALLS = 8  # per phase, not recorded
DEADLINE_SECONDS = 180.0  # slow calls are measured, not turned into DEADLINE_EXCEEDED
QUIET_CPU = 0.15  # "quiet": API + MongoDB below this share of one core ...
QUIET_WINDOW = 0.25  # ... over this many seconds
QUIET_WITHIN = 60.0
LIST_PAGE_SIZE = 20
GET_GOAL, REGISTER_GOAL = 0.4, 0.2
INSTANCE = "global"
LOADER = Identity("bench-loader", frozenset({Role.MEMBER}))
REVIEWER = Identity("bench-reviewer", frozenset({Role.REVIEWER}), instance=INSTANCE)
GET, LIST, REGISTER = "GetOrganization", "ListOrganizations", "RegisterOrganization"
DATASTORE = "datastore"  # the --calls name of the datastore-alone side
DATASTORE_SIDE = "datastore alone (org + outbox row, 1 transaction)"
BARE = "bare grpc.aio Echo"
DATASTORE_BATCH = 500  # units built ahead of the rounds, outside the timing

Call = Callable[[], Coroutine[Any, Any, object]]


# -- loading ----------------------------------------------------------------------------------


def _organizations(start: int, count: int) -> list[OrganizationDraft]:
    """Organizations start .. start+count-1: the demo set, repeated with numbered branches."""
    templates = [o.draft for o in demo.generate().organizations if not o.parent_key]
    drafts = []
    for n in range(start, start + count):
        base = templates[n % len(templates)]
        branch = n // len(templates)
        host = f"bench-{n}.{demo.EXAMPLE_DOMAIN}"
        drafts.append(
            replace(
                base,
                name=base.name if branch == 0 else f"{base.name} (branch {branch})",
                website=f"https://www.{host}",
                contact_email=f"info@{host}",
            )
        )
    return drafts


def load(settings: RegistrationSettings, start: int, count: int) -> list[str]:
    """Store organizations start .. start+count-1, verified, through the store port; return
    their ids. LOAD_BATCH per transaction, LOAD_THREADS transactions in flight."""
    app = bootstrap(settings)
    try:
        app.store.ensure_indexes()
        events = app.service.events
        profiles = [validate_organization(d) for d in _organizations(start, count)]
        chunks = [profiles[i : i + LOAD_BATCH] for i in range(0, len(profiles), LOAD_BATCH)]

        def write(chunk: list[OrganizationProfile]) -> list[str]:
            def unit(tx: Transaction) -> list[str]:
                now = datetime.now(UTC)
                written = []
                for profile in chunk:
                    registered = org_rules.register(
                        uuid.uuid4().hex, profile, INSTANCE, LOADER, now
                    )
                    verified = org_rules.verify(registered.organization, REVIEWER, now)
                    org = verified.organization
                    tx.insert_organization(org)
                    tx.add_audit(registered.audit)
                    tx.add_audit(verified.audit)
                    tx.insert_member(member_rules.first_admin(org, LOADER, now))
                    for kind, state in (
                        (ev.OrganizationRegistered, registered.organization),
                        (ev.OrganizationVerified, org),
                    ):
                        event = events.organization(kind, state)
                        tx.add_event(event.topic, event.envelope)
                    written.append(org.id)
                return written

            return app.store.atomically(unit)

        # Each write is a round trip: a few transactions in flight keep the database busy.
        with ThreadPoolExecutor(LOAD_THREADS) as pool:
            return [org_id for written in pool.map(write, chunks) for org_id in written]
    finally:
        app.close()


# -- measuring --------------------------------------------------------------------------------


@dataclass
class Phase:
    """What the client measured for one call type at one stored size (or for the bare rounds
    that alternated with it)."""

    call: str
    stored: int
    requests: int = 0
    seconds: float = 0.0
    api_cpu: float = 0.0
    db_cpu: float = 0.0
    wall: float = 0.0  # the phase from first round to last, quiet waits included
    quiet_wait: float = 0.0
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    latencies: list[float] = field(default_factory=list)
    round_rps: list[float] = field(default_factory=list)

    @property
    def rounds(self) -> int:
        """Measured rounds."""
        return len(self.round_rps)

    @property
    def rps(self) -> float:
        """Completed requests per second over the measured rounds (drain time included)."""
        return self.requests / self.seconds if self.seconds else 0.0

    def us_per_request(self, cpu: float) -> float:
        """CPU seconds spread over the completed requests, in microseconds."""
        return cpu / self.requests * 1e6 if self.requests else float("nan")

    def percentile(self, q: int) -> float:
        """Latency percentile q (1..99) in milliseconds; nan with fewer than two samples."""
        if len(self.latencies) < 2:
            return float("nan")
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[q - 1] * 1000

    def error_text(self) -> str:
        """Errors by status code, e.g. 'DEADLINE_EXCEEDED 3', or '0'."""
        return ", ".join(f"{code} {n}" for code, n in sorted(self.errors.items())) or "0"


@dataclass(frozen=True)
class Processes:
    """Pids whose CPU the rounds account for and whose quiet ends a round."""

    api: int
    db: int
    idle_cpu: float = 0.0  # share of a core they use with no calls (the sampler, when on)

    def cpu(self) -> tuple[float, float]:
        """CPU seconds used so far by the API and the database."""
        return bench_grpc._cpu_seconds(self.api), bench_grpc._cpu_seconds(self.db)


async def _quiet(procs: Processes) -> float:
    """Wait until the API and the database are idle (calls abandoned by a client go on running
    on the server); return the seconds waited. RuntimeError after QUIET_WITHIN."""
    began = time.monotonic()
    while True:
        api_before, db_before = procs.cpu()
        await asyncio.sleep(QUIET_WINDOW)
        api_after, db_after = procs.cpu()
        busy = (api_after - api_before, db_after - db_before)
        if sum(busy) <= (QUIET_CPU + procs.idle_cpu) * QUIET_WINDOW:
            return time.monotonic() - began
        if time.monotonic() - began > QUIET_WITHIN:
            raise RuntimeError(
                f"servers still busy {QUIET_WITHIN:.0f} s after a round "
                f"(API {busy[0] / QUIET_WINDOW:.0%}, MongoDB {busy[1] / QUIET_WINDOW:.0%} of a core)"
            )


async def _idle_cpu(procs: Processes, seconds: float = 1.0) -> float:
    """Share of a core the processes use while no call runs."""
    before = sum(procs.cpu())
    await asyncio.sleep(seconds)
    return (sum(procs.cpu()) - before) / seconds


async def _round(
    call: Call, seconds: float, max_calls: int, procs: Processes, phase: Phase | None
) -> None:
    """CONCURRENCY workers start calls for seconds (at most max_calls in all); the round ends
    when every call has finished. Recorded into phase unless it is None (warm-up)."""
    stop_at = time.perf_counter() + seconds
    latencies: list[float] = []
    errors: collections.Counter[str] = collections.Counter()
    started_calls = 0

    async def worker() -> None:
        nonlocal started_calls
        while (started := time.perf_counter()) < stop_at and started_calls < max_calls:
            started_calls += 1
            try:
                await call()
            except grpc.aio.AioRpcError as exc:
                errors[exc.code().name] += 1
                continue
            latencies.append(time.perf_counter() - started)

    api_before, db_before = procs.cpu()
    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - began
    api_after, db_after = procs.cpu()
    if phase is not None:
        phase.requests += len(latencies)
        phase.seconds += elapsed
        phase.api_cpu += api_after - api_before
        phase.db_cpu += db_after - db_before
        phase.errors.update(errors)
        phase.latencies.extend(latencies)
        phase.round_rps.append(len(latencies) / elapsed)


async def _phase(
    sides: Sequence[tuple[str, Call]], bare_call: Call, stored: int, procs: Processes
) -> list[Phase]:
    """Measure the sides (call types, or the datastore alone) in rotating rounds with the bare
    Echo; return one Phase per side, the bare Echo's last."""
    calls = [*(fn for _, fn in sides), bare_call]
    phases = [*(Phase(name, stored) for name, _ in sides), Phase(BARE, stored)]
    for fn in calls:
        await _round(fn, ROUND_SECONDS, WARMUP_CALLS, procs, None)
    phases[0].quiet_wait += await _quiet(procs)
    began = time.monotonic()
    for index in range(ROUNDS):
        if index and time.monotonic() - began > PHASE_SECONDS:
            break
        # Rotate which side goes first, so none always follows another.
        shift = index % len(calls)
        for fn, side in [*zip(calls, phases, strict=True)][shift:] + [
            *zip(calls, phases, strict=True)
        ][:shift]:
            await _round(fn, ROUND_SECONDS, ROUND_CALLS, procs, side)
            phases[0].quiet_wait += await _quiet(procs)
    for side in phases:
        side.wall = time.monotonic() - began
    return phases


class DatastoreAlone:
    """The minimum RegisterOrganization writes, with nothing in front of the datastore: one
    transaction inserting the organization's document and its OrganizationRegistered outbox
    row, built beforehand (outside the timing) by the service's own functions."""

    def __init__(self, settings: RegistrationSettings) -> None:
        self.app = bootstrap(settings)
        store = cast("MongoStore", self.app.store)
        self.writer = TransactionWriter(store.client, store.db)
        self.units: list[list[Write]] = []
        self.made = 0

    def prepare(self, count: int = DATASTORE_BATCH) -> None:
        """Build count more units (organization document + outbox row)."""
        now = datetime.now(UTC)
        for draft in _organizations(10_000_000 + self.made, count):
            org = org_rules.register(
                uuid.uuid4().hex, validate_organization(draft), INSTANCE, LOADER, now
            ).organization
            event = self.app.service.events.organization(ev.OrganizationRegistered, org)
            self.units.append(
                [("organizations", organization_doc(org)), outbox_row(event.topic, event.envelope)]
            )
        self.made += count

    async def register(self) -> object:
        """One unit written in one transaction."""
        if not self.units:
            self.prepare()  # only if a round outran the units built before the phase
        await self.writer.write_async(self.units.pop())
        return None

    def close(self) -> None:
        """Release the threads and the client."""
        self.writer.close()
        self.app.close()


@dataclass
class Calls:
    """The client's calls against the API and the bare server."""

    stub: pb_grpc.RegistrationServiceAsyncStub  # a name of the .pyi stubs only
    echo: diagnostics_pb2_grpc.DiagnosticsServiceAsyncStub
    ids: list[str]
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    def __post_init__(self) -> None:
        self.templates = [o.draft for o in demo.generate().organizations if not o.parent_key]
        self.types = sorted({d.type for d in self.templates})

    async def get(self) -> object:
        """GetOrganization of a random stored id."""
        request = pb.GetOrganizationRequest(id=self.rng.choice(self.ids))
        return await self.stub.GetOrganization(request, timeout=DEADLINE_SECONDS)

    async def list(self) -> object:
        """The first page of one random type."""
        request = pb.ListOrganizationsRequest(type=demo.type_number(self.rng.choice(self.types)))
        request.page.page_size = LIST_PAGE_SIZE
        return await self.stub.ListOrganizations(request, timeout=DEADLINE_SECONDS)

    async def register(self) -> object:
        """A new organization (fresh name, website and request id)."""
        n = uuid.uuid4().hex[:10]
        draft = replace(
            self.rng.choice(self.templates),
            website=f"https://www.new-{n}.{demo.EXAMPLE_DOMAIN}",
            contact_email=f"info@new-{n}.{demo.EXAMPLE_DOMAIN}",
        )
        draft = replace(draft, name=f"{draft.name} {n}")
        request = pb.RegisterOrganizationRequest(
            request_id=f"bench-{n}", organization=demo.organization_message(draft)
        )
        return await self.stub.RegisterOrganization(request, timeout=DEADLINE_SECONDS)

    async def bare(self) -> object:
        """Echo on the bare server."""
        return await self.echo.Echo(diag_pb.EchoRequest(message="ping"), timeout=DEADLINE_SECONDS)


# -- the run ----------------------------------------------------------------------------------


def _server_env(
    settings: RegistrationSettings, port: int, metrics_port: int, extra: dict[str, str]
) -> dict[str, str]:
    return bench_grpc.api_env(
        "registration", settings.mongodb_uri, port, metrics_port, extra, expiry_sweep_seconds="0"
    )


def _sampled(argv: list[str], out: Path | None) -> list[str]:
    """argv, run under this file's stack sampler when out is given."""
    return argv if out is None else [sys.executable, __file__, "--sampled", str(out), "--", *argv]


def _start_mongodb(workdir: Path, profile: Path | None) -> servers.ServerProcess:
    """SecantusDB as servers.start_mongodb starts it, optionally under the sampler."""
    if profile:
        profile.mkdir(parents=True, exist_ok=True)
    port = servers.free_port()
    argv = [servers.secantus_binary(), "--host", servers.LOOPBACK, "--port", str(port)]
    argv += ["--storage-path", str(workdir / f"mongo-{port}")]
    out = profile / "mongodb" if profile else None
    server = servers.ServerProcess("mongodb", _sampled(argv, out), port, workdir)
    server.start(lambda: servers._mongo_pings(port))
    return server


async def _warm(calls: Calls, ids: Sequence[str]) -> None:
    """GetOrganization of every id once, CONCURRENCY at a time (not measured)."""
    pending = iter(ids)

    async def worker() -> None:
        for org_id in pending:
            await calls.stub.GetOrganization(
                pb.GetOrganizationRequest(id=org_id), timeout=DEADLINE_SECONDS
            )

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


@dataclass
class Loading:
    """How the stored organizations got there."""

    stored: int
    seconds: float


async def run(
    sizes: Sequence[int] = SIZES,
    profile: Path | None = None,
    only: Sequence[str] = (GET, LIST, REGISTER, DATASTORE),
    api_env: dict[str, str] | None = None,
    warm: bool = False,
) -> str:
    """Run the benchmark and return a markdown section with the results.

    api_env: SSG_ settings for the API process (e.g. SSG_READ_CACHE_ENTRIES=0); warm: read
    every stored id once before each GetOrganization phase (not measured), as a replica that
    has served them holds them in its read cache."""
    began = time.monotonic()
    workdir = servers.scratch_dir("ssg-bench-registration-")
    mongo = _start_mongodb(workdir, profile)
    started: list[bench_grpc.Side] = []
    groups: list[list[Phase]] = []
    loads: list[Loading] = []
    datastore: DatastoreAlone | None = None
    notes: list[str] = []
    try:
        settings = load_settings(
            RegistrationSettings,
            instance=INSTANCE,
            mongodb_uri=servers.mongodb_uri(mongo.port, "registration"),
            jwt_secret=DEV_SECRET,
        )
        api_port, bare_port = servers.free_port(), servers.free_port()
        metrics_port = servers.free_port()
        api = bench_grpc._start(
            "registration API",
            _sampled([sys.executable, "-m", "ssg.registration"], profile and profile / "api"),
            api_port,
            _server_env(settings, api_port, metrics_port, api_env or {}),
        )
        started.append(api)
        bare = bench_grpc._start(
            BARE,
            [sys.executable, bench_grpc.__file__, "--serve-bare", str(bare_port)],
            bare_port,
            dict(os.environ),
        )
        started.append(bare)
        procs = Processes(api.process.pid, mongo.pid)
        samplers = [api.process.pid, mongo.pid] if profile else []
        token = DevTokenIssuer().issue("bench", [Role.MEMBER])
        ids: list[str] = []
        async with (
            channel(api.address, token=token, default_deadline_seconds=DEADLINE_SECONDS) as ch,
            channel(bare.address, token=token, default_deadline_seconds=DEADLINE_SECONDS) as bch,
        ):
            calls = Calls(
                cast("pb_grpc.RegistrationServiceAsyncStub", pb_grpc.RegistrationServiceStub(ch)),
                cast(
                    "diagnostics_pb2_grpc.DiagnosticsServiceAsyncStub",
                    diagnostics_pb2_grpc.DiagnosticsServiceStub(bch),
                ),
                ids,
            )
            await wait_serving(api.address, REGISTRATION_HEALTH)
            await bench_grpc._wait_ready(calls.echo, bare, within=30)
            if DATASTORE in only:
                datastore = DatastoreAlone(settings)
            for size in sorted(sizes):
                t0 = time.monotonic()
                ids += await asyncio.to_thread(load, settings, len(ids), size - len(ids))
                loads.append(Loading(len(ids), time.monotonic() - t0))
                phases: list[list[tuple[str, Call]]] = [
                    [(name, call)]
                    for name, call in ((GET, calls.get), (LIST, calls.list))
                    if name in only
                ]
                # Register and the datastore alone share their rounds, so they meet the same load.
                writes = [(REGISTER, calls.register)] if REGISTER in only else []
                if datastore is not None:
                    datastore.prepare()
                    writes.append((DATASTORE_SIDE, datastore.register))
                phases += [writes] if writes else []
                for sides in phases:
                    sampled = procs
                    name = sides[0][0]
                    if name == GET:
                        await bench_grpc.wait_cache_current(metrics_port)
                    if warm and name == GET:
                        await _warm(calls, ids)
                    counts = bench_grpc.read_cache_counts(metrics_port)
                    sampling = bool(samplers) and name == GET
                    if sampling:
                        for pid in samplers:
                            os.kill(pid, signal.SIGUSR1)  # sample this phase only
                        sampled = replace(procs, idle_cpu=await _idle_cpu(procs))
                    groups.append(await _phase(sides, calls.bare, size, sampled))
                    if name == GET:
                        after = bench_grpc.read_cache_counts(metrics_port)
                        notes.append(
                            f"- Read cache during GetOrganization at {size:,}"
                            f"{' (warmed: each stored id read once first)' if warm else ''}: "
                            f"{bench_grpc.cache_note(counts, after)}; API settings "
                            f"{api_env or 'default'}."
                        )
                    for pid in samplers if sampling else ():
                        os.kill(pid, signal.SIGUSR2)
    finally:
        if datastore is not None:
            datastore.close()
        for side in started:
            bench_grpc._stop(side)
        mongo.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    report = _report(groups, loads, time.monotonic() - began)
    report += "\n" + "\n".join(notes) + "\n"
    if profile:
        report += "\n" + _profile_report(profile)
    return report


# -- reporting --------------------------------------------------------------------------------


def _ratio(api: Phase, bare: Phase) -> float:
    return api.rps / bare.rps if bare.rps else 0.0


def _paired(side: Phase, base: Phase) -> float:
    """Median over rounds of side's req/s over base's in the same rotation."""
    ratios = [a / b for a, b in zip(side.round_rps, base.round_rps, strict=False) if b]
    return statistics.median(ratios) if ratios else float("nan")


def _report(groups: list[list[Phase]], loads: list[Loading], total: float) -> str:
    """The markdown section: one row per side and size, the goals at the largest size."""
    rows = []
    for group in groups:
        bare = group[-1]
        for side in group:
            vs = f"{_ratio(side, bare):.3f}x" if side is not bare else ""
            api_cpu = side.us_per_request(side.api_cpu) if side.call in (GET, LIST, REGISTER) else float("nan")  # fmt: skip
            name = "&nbsp;&nbsp;bare Echo" if side is bare else side.call
            rows.append(
                f"| {side.stored:,} | {name} "
                f"| {side.rps:,.1f} | {side.percentile(50):,.1f} | {side.percentile(99):,.1f} "
                f"| {api_cpu:,.0f} | {side.us_per_request(side.db_cpu):,.0f} | {vs} "
                f"| {side.requests:,} | {side.rounds} | {side.error_text()} |"
            )
    by = {(side.call, side.stored): (side, group[-1]) for group in groups for side in group[:-1]}
    every = [p for group in groups for p in group]
    largest = max(p.stored for p in every)
    smallest = min(p.stored for p in every)

    def verdict(call: str, goal: float) -> str:
        if (call, largest) not in by:
            return f"- {call}: not measured in this run"
        api, bare = by[(call, largest)]
        met = "met" if _ratio(api, bare) >= goal else "NOT met"
        return (
            f"- {call} / bare at {largest:,}: **{_ratio(api, bare):.3f}x** (goal >= {goal}x: "
            f"{met}; median of paired rounds {_paired(api, bare):.3f}x)"
        )

    def ceiling() -> list[str]:
        if (DATASTORE_SIDE, largest) not in by:
            return []
        alone, bare = by[(DATASTORE_SIDE, largest)]
        allows = "allows" if _ratio(alone, bare) >= REGISTER_GOAL else "does NOT allow"
        lines = [
            f"- The datastore alone at {largest:,}: {alone.rps:,.1f} transactions/s = "
            f"**{_ratio(alone, bare):.3f}x** of the bare Echo (median of paired rounds "
            f"{_paired(alone, bare):.3f}x): the stand-in {allows} RegisterOrganization's goal "
            f"of {REGISTER_GOAL}x here, with nothing in front of it."
        ]
        if (REGISTER, largest) in by:
            ours = by[(REGISTER, largest)][0]
            lines.append(
                f"- RegisterOrganization / the datastore alone at {largest:,}: "
                f"**{_ratio(ours, alone):.2f}x** (median of rounds {_paired(ours, alone):.2f}x); "
                f"MongoDB CPU per call {ours.us_per_request(ours.db_cpu):,.0f} us against "
                f"{alone.us_per_request(alone.db_cpu):,.0f} us for the minimum."
            )
        return lines

    scaling = []
    if smallest != largest:
        for call in sorted({c for c, _ in by}):
            small, big = by[(call, smallest)][0], by[(call, largest)][0]
            scaling.append(f"{call} {small.rps / big.rps if big.rps else float('inf'):.1f}x slower")
    load_text = "; ".join(f"to {ld.stored:,} in {ld.seconds:.0f} s" for ld in loads)
    return "\n".join(
        [
            "## Registration API",
            "",
            "Verified organizations loaded through the service's store port "
            f"({LOAD_BATCH} per MongoDB transaction, {LOAD_THREADS} transactions in flight, each "
            "organization with its audit entries, first admin and two outbox events; the "
            f"duplicate search is skipped for the load only): {load_text}. MongoDB "
            "(SecantusDB, the local stand-in), `python -m ssg.registration` (full interceptor "
            "stack, JSON access log) and the bare grpc.aio Echo server of the gRPC benchmark "
            "each in its own process on loopback; one client, concurrency "
            f"{CONCURRENCY}, a member token (not a member of the stored organizations) on every "
            "call. Each call type has a phase of its own: up to "
            f"{ROUNDS} rounds alternating with the bare Echo; a round starts calls for "
            f"{ROUND_SECONDS:g} s, then waits for all of them (req/s includes that drain), then "
            "for the API and MongoDB to go quiet; no new round after "
            f"{PHASE_SECONDS:g} s. Client deadline {DEADLINE_SECONDS:g} s. GetOrganization "
            "reads a random stored id; ListOrganizations the first page of "
            f"{LIST_PAGE_SIZE} of one type; RegisterOrganization a new organization "
            "(validation, duplicate search, one transaction writing organization, audit entry, "
            "admin, idempotency record and outbox event; its phase adds organizations, so the "
            "next size tops up from there). Beside it, in the same rotation of rounds, the "
            "datastore alone: one transaction inserting an organization document and its outbox "
            "row through pymongo from the client process (documents built before the round, "
            f"{datastore_ceiling.THREADS} threads like the API's MongoDB pool, same database and "
            "indexes), no service and no gRPC in front.",
            "",
            "| stored | call | req/s | p50 ms | p99 ms | API CPU us/req | MongoDB CPU us/req "
            "| vs bare | requests | rounds | errors |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
            *rows,
            "",
            verdict(GET, GET_GOAL),
            verdict(REGISTER, REGISTER_GOAL),
            *ceiling(),
            *(
                [f"- From {smallest:,} to {largest:,} stored: " + "; ".join(scaling) + "."]
                if scaling
                else []
            ),
            *(
                [
                    "- INTERNAL: the API's own MongoDB socket timeout (socketTimeoutMS 30 s, "
                    "ssg/platform/mongo.py client_options) fired while the stand-in worked "
                    "through the queue; DEADLINE_EXCEEDED: calls that waited behind those in "
                    f"the API's MongoDB thread pool past the {DEADLINE_SECONDS:g} s client "
                    "deadline."
                ]
                if any(p.errors for p in every)
                else []
            ),
            "- Every query is served by an index (ADR 0007), but SecantusDB reads the whole "
            "index range before applying the limit and sorts in memory: a list page costs the "
            "matching organizations (here the verified ones of one type), not the page; real "
            "MongoDB stops at the page.",
            f"- Machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end; "
            f"the client, the API and MongoDB share it. Whole benchmark {total:.0f} s.",
            "",
        ]
    )


# -- the stack sampler (--profile) --------------------------------------------------------------

# Leaves (last part of the qualified name) of a thread that waits for work, not for an answer.
IDLE_LEAVES = frozenset(
    {"select", "wait", "_wait_for_tstate_lock", "get", "poll", "sleep", "accept", "_worker"}
    | {"_recv_exactly", "_readable", "run", "_run"}
)
OWN_CODE = ("ssg/", "secantus/")  # the frames worth listing: ours and the stand-in's


def _where(frame: FrameType) -> str:
    code = frame.f_code
    path = code.co_filename
    for marker in ("/site-packages/", "/src/", "/lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{code.co_qualname} ({path}:{frame.f_lineno})"


def _serve_sampled(out: Path, argv: list[str], interval: float = 0.005) -> None:
    """Run argv (a script, or -m module) in this process while a thread samples every thread's
    stack (wall clock, idle included) between SIGUSR1 and SIGUSR2; each SIGUSR2 writes the
    collapsed stacks ('thread;outer;...;inner count') to out.N.txt."""
    sampling = threading.Event()
    dump = threading.Event()
    stacks: collections.Counter[str] = collections.Counter()

    def sample() -> None:
        me = threading.get_ident()
        dumps = 0
        while True:
            time.sleep(interval)
            if dump.is_set():
                dump.clear()
                path = out.with_name(f"{out.name}.{dumps}.txt")
                path.write_text("".join(f"{k} {n}\n" for k, n in stacks.items()))
                stacks.clear()
                dumps += 1
            if not sampling.is_set():
                continue
            names = {t.ident: t.name.rstrip("0123456789_") for t in threading.enumerate()}
            for ident, top in sys._current_frames().items():
                if ident == me:
                    continue
                frames: list[str] = []
                f: FrameType | None = top
                while f is not None:
                    frames.append(_where(f))
                    f = f.f_back
                stacks[";".join([names.get(ident, "?"), *reversed(frames)])] += 1

    def on_signal(signum: int, _: object) -> None:
        if signum == signal.SIGUSR1:
            sampling.set()
        else:
            sampling.clear()
            dump.set()

    signal.signal(signal.SIGUSR1, on_signal)
    signal.signal(signal.SIGUSR2, on_signal)
    threading.Thread(target=sample, name="sampler", daemon=True).start()
    if argv[0] == sys.executable:
        argv = argv[1:]
    if argv[0] == "-m":
        sys.argv = [argv[1], *argv[2:]]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = list(argv)
        runpy.run_path(argv[0], run_name="__main__")


def _profile_summary(path: Path, top: int = 10) -> str:
    """Per thread group: busy share and the heaviest inclusive frames and leaves."""
    groups: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    leaves: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    totals: collections.Counter[str] = collections.Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        thread, *frames = stack.split(";")
        n = int(count)
        totals[thread] += n
        if not frames or frames[-1].split(" ", 1)[0].rsplit(".", 1)[-1] in IDLE_LEAVES:
            continue
        leaves[thread][frames[-1]] += n
        for frame in set(frames):
            if any(mark in frame for mark in OWN_CODE):
                groups[thread][frame] += n
    lines = [f"#### {path.name}", ""]
    for thread, total in totals.most_common():
        busy = sum(leaves[thread].values())
        if not busy:
            continue
        lines.append(f"- thread(s) `{thread}`: {total:,} samples, {busy / total:.0%} not idle")
        lines.append(
            "  - heaviest frames of ours or the stand-in's (inclusive, share of not idle):"
        )
        lines += [f"    - {n / busy:.0%} `{frame}`" for frame, n in groups[thread].most_common(top)]
        lines.append("  - heaviest leaves:")
        lines += [f"    - {n / busy:.0%} `{frame}`" for frame, n in leaves[thread].most_common(5)]
    return "\n".join(lines)


def _profile_report(profile: Path) -> str:
    """Summaries of every stack file the samplers wrote."""
    files = sorted(profile.glob("*.txt"))
    parts = ["### Stack samples of the GetOrganization phases (wall clock, sampler on)", ""]
    return "\n\n".join(parts + [_profile_summary(f) for f in files]) + "\n"


def main() -> None:
    """Print the benchmark's markdown section (or run a server under the sampler)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--sizes", default=",".join(map(str, SIZES)), help="stored organizations, comma separated"
    )
    parser.add_argument("--profile", type=Path, help="sample the servers' stacks into this dir")
    parser.add_argument(
        "--calls",
        default=f"{GET},{LIST},{REGISTER},{DATASTORE}",
        help=f"phases to run, comma separated ({DATASTORE}: the datastore alone)",
    )
    parser.add_argument(
        "--datastore-only",
        action="store_true",
        help=f"only the datastore alone beside the bare Echo (--calls {DATASTORE})",
    )
    parser.add_argument(
        "--api-env", action="append", default=[], help="SSG_NAME=value for the API (repeatable)"
    )
    parser.add_argument(
        "--warm", action="store_true", help="read every stored id once before each Get phase"
    )
    parser.add_argument("--sampled", type=Path, help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.sampled:
        _serve_sampled(args.sampled, rest[1:] if rest[:1] == ["--"] else rest)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    only = [DATASTORE] if args.datastore_only else [c.strip() for c in args.calls.split(",")]
    unknown = set(only) - {GET, LIST, REGISTER, DATASTORE}
    if unknown:
        parser.error(f"unknown calls: {', '.join(sorted(unknown))}")
    api_env = bench_grpc.env_overrides(args.api_env)
    print(asyncio.run(run(sizes, args.profile, only, api_env, args.warm)))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
