"""Benchmark: the registration API with 10,000 organizations stored, next to the bare grpc.aio
Echo server of the Foundation benchmark (bench_grpc) in the same run.

MongoDB (SecantusDB), `python -m ssg.registration` and the bare server each run in their own
process on loopback. 10,000 verified organizations are loaded first through the service's own
store port (MongoStore transactions writing each organization, its audit entries, its first
admin and its OrganizationRegistered + OrganizationVerified outbox events), in batches, because
10,000 RegisterOrganization calls would only measure the same thing slower. Then one client
(this process, concurrency 32, a valid bearer token on every call) loads each side in
alternating rounds: GetOrganization (random stored id), ListOrganizations (page_size 20, one
type filter), RegisterOrganization (new organization: validation, duplicate search, one
transaction with audit, member, idempotency record and outbox event), and the bare Echo.
Goals: GetOrganization >= 0.4x bare req/s; RegisterOrganization >= 0.2x.

    uv run python tests/load/bench_registration.py     # prints a markdown section
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import bench_grpc  # the Foundation benchmark: its bare server, Side, rounds and process helpers
import grpc

from ssg.cli.seed import REGISTRATION_HEALTH, wait_serving
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
from ssg.registration.store.ports import Transaction
from ssg.testing import servers

STORED = 10_000
LOAD_BATCH = 250
LOAD_THREADS = 4
CONCURRENCY = bench_grpc.CONCURRENCY  # 32, as in the Foundation benchmark
ROUNDS = 6
ROUND_SECONDS = 0.5
WARMUP_SECONDS = 0.5
LIST_PAGE_SIZE = 20
GET_GOAL, REGISTER_GOAL = 0.4, 0.2
INSTANCE = "global"
LOADER = Identity("bench-loader", frozenset({Role.MEMBER}))
REVIEWER = Identity("bench-reviewer", frozenset({Role.REVIEWER}), instance=INSTANCE)


def _organizations(count: int) -> list[OrganizationDraft]:
    """count distinct organizations: the demo set, repeated with numbered branch names."""
    templates = [o.draft for o in demo.generate().organizations if not o.parent_key]
    drafts = []
    for n in range(count):
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


def load(settings: RegistrationSettings, count: int) -> list[str]:
    """Store count verified organizations through the store port; return their ids."""
    app = bootstrap(settings)
    try:
        app.store.ensure_indexes()
        events = app.service.events
        profiles = [validate_organization(d) for d in _organizations(count)]
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
            ids = [org_id for written in pool.map(write, chunks) for org_id in written]
        return ids
    finally:
        app.close()


def _server_env(settings: RegistrationSettings, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSG_")}
    return env | {
        "SSG_SERVICE": "registration",
        "SSG_INSTANCE": INSTANCE,
        "SSG_GRPC_HOST": "127.0.0.1",
        "SSG_GRPC_PORT": str(port),
        "SSG_METRICS_HOST": "127.0.0.1",
        "SSG_METRICS_PORT": str(servers.free_port()),
        "SSG_MONGODB_URI": settings.mongodb_uri,
        "SSG_JWT_SECRET": DEV_SECRET,
        "SSG_EXPIRY_SWEEP_SECONDS": "0",
        "SSG_GRACE_SECONDS": "1",
    }


Call = Callable[[], Coroutine[Any, Any, object]]


async def _round(side: bench_grpc.Side, call: Call, seconds: float, record: bool) -> None:
    """CONCURRENCY workers repeat call for seconds; record counts, latencies and server CPU."""
    stop_at = time.perf_counter() + seconds
    latencies: list[float] = []
    errors = 0

    async def worker() -> None:
        nonlocal errors
        while (started := time.perf_counter()) < stop_at:
            try:
                await call()
            except grpc.aio.AioRpcError:
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)

    cpu_before = bench_grpc._cpu_seconds(side.process.pid)
    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - began
    if record:
        side.requests += len(latencies)
        side.seconds += elapsed
        side.errors += errors
        side.cpu_seconds += bench_grpc._cpu_seconds(side.process.pid) - cpu_before
        side.latencies.extend(latencies)
        side.round_rps.append(len(latencies) / elapsed)


async def run(stored: int = STORED) -> str:
    """Run the benchmark and return a markdown section with the results."""
    workdir = servers.scratch_dir("ssg-bench-registration-")
    mongo = servers.start_mongodb(workdir)
    started: list[bench_grpc.Side] = []
    try:
        settings = load_settings(
            RegistrationSettings,
            instance=INSTANCE,
            mongodb_uri=servers.mongodb_uri(mongo.port, "registration"),
            jwt_secret=DEV_SECRET,
        )
        t0 = time.monotonic()
        ids = await asyncio.to_thread(load, settings, stored)
        load_seconds = time.monotonic() - t0

        api_port, bare_port = servers.free_port(), servers.free_port()
        api = bench_grpc._start(
            "registration API",
            [sys.executable, "-m", "ssg.registration"],
            api_port,
            _server_env(settings, api_port),
        )
        started.append(api)
        bare = bench_grpc._start(
            "bare grpc.aio Echo",
            [sys.executable, bench_grpc.__file__, "--serve-bare", str(bare_port)],
            bare_port,
            dict(os.environ),
        )
        started.append(bare)
        sides = await _measure(api, bare, ids)
    finally:
        for side in started:
            bench_grpc._stop(side)
        mongo.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return _report(sides, bare, len(ids), load_seconds)


async def _measure(
    api: bench_grpc.Side, bare: bench_grpc.Side, ids: list[str]
) -> list[bench_grpc.Side]:
    token = DevTokenIssuer().issue("bench", [Role.MEMBER])
    rng = random.Random(7)
    templates = [o.draft for o in demo.generate().organizations if not o.parent_key]
    types = sorted({d.type for d in templates})
    get = bench_grpc.Side("GetOrganization", api.process, api.address)
    listing = bench_grpc.Side(
        f"ListOrganizations (page {LIST_PAGE_SIZE}, type filter)", api.process, api.address
    )
    register = bench_grpc.Side("RegisterOrganization", api.process, api.address)
    async with (
        channel(api.address, token=token) as api_channel,
        channel(bare.address, token=token) as bare_channel,
    ):
        stub = cast(
            "pb_grpc.RegistrationServiceAsyncStub", pb_grpc.RegistrationServiceStub(api_channel)
        )
        echo = diagnostics_pb2_grpc.DiagnosticsServiceStub(bare_channel)
        # Health, not a list call: an unfiltered list over 10,000 can outlast a probe's deadline.
        await wait_serving(api.address, REGISTRATION_HEALTH)
        await bench_grpc._wait_ready(echo, bare, within=30)

        async def get_one() -> object:
            return await stub.GetOrganization(pb.GetOrganizationRequest(id=rng.choice(ids)))

        async def list_page() -> object:
            request = pb.ListOrganizationsRequest(type=demo.type_number(rng.choice(types)))
            request.page.page_size = LIST_PAGE_SIZE
            return await stub.ListOrganizations(request)

        async def register_one() -> object:
            n = uuid.uuid4().hex[:10]
            draft = replace(
                rng.choice(templates),
                website=f"https://www.new-{n}.{demo.EXAMPLE_DOMAIN}",
                contact_email=f"info@new-{n}.{demo.EXAMPLE_DOMAIN}",
            )
            draft = replace(draft, name=f"{draft.name} {n}")
            return await stub.RegisterOrganization(
                pb.RegisterOrganizationRequest(
                    request_id=f"bench-{n}", organization=demo.organization_message(draft)
                )
            )

        calls: dict[str, Callable[[bench_grpc.Side, float, bool], Coroutine[Any, Any, None]]] = {
            get.name: lambda s, t, r: _round(s, get_one, t, r),
            listing.name: lambda s, t, r: _round(s, list_page, t, r),
            register.name: lambda s, t, r: _round(s, register_one, t, r),
            bare.name: lambda s, t, r: bench_grpc._round(echo, s, t, r),
        }
        sides = [get, listing, register, bare]
        for side in sides:
            await calls[side.name](side, WARMUP_SECONDS, False)
        for index in range(ROUNDS):
            # Rotate the order, so no side always follows the same other one.
            shift = index % len(sides)
            for side in sides[shift:] + sides[:shift]:
                await calls[side.name](side, ROUND_SECONDS, True)
    return sides


def _report(
    sides: list[bench_grpc.Side], bare: bench_grpc.Side, stored: int, load_seconds: float
) -> str:
    def ratio(side: bench_grpc.Side) -> float:
        return side.rps / bare.rps if bare.rps else 0.0

    def paired(side: bench_grpc.Side) -> float:
        return statistics.median(
            s / b for s, b in zip(side.round_rps, bare.round_rps, strict=True) if b
        )

    rows = [
        f"| {s.name} | {s.rps:,.0f} | {s.percentile(50):.2f} | {s.percentile(99):.2f} "
        f"| {s.cpu_us_per_request:,.0f} | {'' if s is bare else f'{ratio(s):.2f}x'} "
        f"| {s.requests:,} | {s.errors} |"
        for s in sides
    ]
    get, _, register = sides[0], sides[1], sides[2]

    def verdict(side: bench_grpc.Side, goal: float) -> str:
        met = "met" if ratio(side) >= goal else "NOT met"
        return (
            f"{side.name} / bare: **{ratio(side):.2f}x** (goal >= {goal}x: {met}; "
            f"median of paired rounds {paired(side):.2f}x)"
        )

    return "\n".join(
        [
            "## Registration API",
            "",
            f"{stored:,} verified organizations stored (loaded in {load_seconds:.1f} s through "
            f"the service's store port, {LOAD_BATCH} per MongoDB transaction, each with its "
            "audit entries, first admin and two outbox events; the duplicate search was "
            "skipped for the load only). MongoDB (SecantusDB), `python -m ssg.registration` "
            "(full interceptor stack, JSON access log) and the bare grpc.aio Echo server of the "
            "gRPC benchmark each in its own process on loopback; one client, concurrency "
            f"{CONCURRENCY}, a member token on every call, {ROUNDS} rotating rounds of "
            f"{ROUND_SECONDS:g} s per row. GetOrganization reads a random stored id; "
            f"ListOrganizations asks for the first page of {LIST_PAGE_SIZE} of one type; "
            "RegisterOrganization registers a new organization (validation, duplicate search "
            "in its country, one transaction writing organization, audit entry, admin, "
            "idempotency record and outbox event).",
            "",
            "| call | req/s | p50 ms | p99 ms | server CPU us/req | vs bare | requests | errors |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            f"- {verdict(get, GET_GOAL)}",
            f"- {verdict(register, REGISTER_GOAL)}",
            f"- Machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end; "
            "the client, the API and MongoDB share it.",
            "",
        ]
    )


def main() -> None:
    """Print the benchmark's markdown section."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stored", type=int, default=STORED, help="organizations to store")
    print(asyncio.run(run(parser.parse_args().stored)))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
