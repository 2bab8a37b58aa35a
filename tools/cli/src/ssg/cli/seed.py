"""``ssg seed``: load each running service with its demo data through its public gRPC API.

Seeding is idempotent: every registration carries the demo record's stable key as its client
request id (per registering subject), so a second run gets the first results back and creates
nothing; review steps run only when an organization has not yet reached its demo status.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Protocol, TypeVar

import grpc
import typer
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ssg.cli.catalog import async_stub as catalog_stub
from ssg.cli.config import StackConfig, StackConfigError, load_stack_config
from ssg.cli.org import async_stub
from ssg.cli.rpc import (
    CliFailure,
    PortsOption,
    TargetOption,
    err,
    out,
    report_rpc_error,
    resolve_target,
)
from ssg.cli.seed_catalog import CATALOG_HEALTH, CatalogSeeder, CatalogSeedError, CatalogSeedSummary
from ssg.contracts.registration.v1 import organization_pb2
from ssg.contracts.registration.v1 import registration_service_pb2 as pb
from ssg.contracts.registration.v1 import registration_service_pb2_grpc as pb_grpc
from ssg.platform.auth.tokens import DevTokenIssuer, Role
from ssg.platform.grpc.client import channel

if TYPE_CHECKING:  # the service package is optional: only installed services are seeded
    from ssg.catalog.demo import DemoCatalog
    from ssg.registration.demo import DemoData, DemoExpert, DemoOrganization

T_ = TypeVar("T_")
REGISTRATION_HEALTH = "ssg.registration.v1.RegistrationService"
STATUS = organization_pb2.OrganizationStatus
# Seeding may follow `make up` by milliseconds: give a service this long to report SERVING.
READY_SECONDS = 60.0
CALL_SECONDS = 30.0  # a registration is a transaction with a duplicate search: allow a slow disk
RETRIES = 5


class SeedError(Exception):
    """Seeding could not finish; the message says why."""


@dataclass
class SeedSummary:
    """What one service's seeding did."""

    service: str
    organizations: int = 0
    organizations_new: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    flagged_duplicates: int = 0
    experts: int = 0
    experts_new: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        """One summary line for the operator."""
        order = ("VERIFIED", "PENDING", "REJECTED", "SUSPENDED")
        names = [*order, *sorted(set(self.statuses) - set(order))]
        statuses = ", ".join(f"{self.statuses[s]} {s.lower()}" for s in names if self.statuses[s])
        return (
            f"{self.service}: {self.organizations} organizations "
            f"({self.organizations_new} new; {statuses}; "
            f"{self.flagged_duplicates} flagged as possible duplicates), "
            f"{self.experts} experts ({self.experts_new} new) in {self.seconds:.1f} s"
        )


@dataclass(frozen=True)
class SeedOptions:
    """What to generate and how hard to push."""

    seed: int | None = None  # None: the demo module's default
    organizations: int | None = None
    experts: int | None = None
    concurrency: int = 8
    only_instance: str = ""  # seed only organizations a given instance would review
    # The catalog's share (None: the catalog demo module's defaults).
    solutions: int | None = None
    knowledge: int | None = None
    needs: int | None = None
    funding: int | None = None
    registration_target: str = ""  # where the catalog seeder looks up organization ids
    learn_seconds: float = 120.0  # how long the catalog worker may take to learn organizations


def _status_name(number: int) -> str:
    return str(STATUS.Name(number)).removeprefix("ORGANIZATION_STATUS_")  # type: ignore[arg-type]


async def wait_serving(address: str, service: str, within: float = READY_SECONDS) -> None:
    """Poll the standard health service until service is SERVING; SeedError after within s."""
    deadline = time.monotonic() + within
    last = "no answer"
    async with grpc.aio.insecure_channel(address) as ch:
        health = health_pb2_grpc.HealthStub(ch)
        while True:
            try:
                reply = await health.Check(
                    health_pb2.HealthCheckRequest(service=service), timeout=1.0
                )
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
                last = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            except grpc.aio.AioRpcError as exc:
                last = exc.code().name
            if time.monotonic() > deadline:
                raise SeedError(f"{service} at {address} is not SERVING after {within:g}s ({last})")
            await asyncio.sleep(0.2)


class RegistrationSeeder:
    """Registers the demo organizations and experts and walks each to its demo status."""

    def __init__(
        self,
        stub: pb_grpc.RegistrationServiceAsyncStub,
        data: DemoData,
        options: SeedOptions,
        issuer: DevTokenIssuer | None = None,
    ) -> None:
        self.stub = stub
        self.data = data
        self.options = options
        self.issuer = issuer or DevTokenIssuer()
        self.ids: dict[str, str] = {}  # demo key -> server id
        self.summary = SeedSummary("registration")
        self.started = datetime.now(UTC)
        self._tokens: dict[tuple[str, Role, str, str], str] = {}
        self._gate = asyncio.Semaphore(options.concurrency)

    def _token(
        self, subject: str, role: Role, instance: str = "global", org: str = ""
    ) -> list[tuple[str, str]]:
        key = (subject, role, instance, org)
        if key not in self._tokens:
            self._tokens[key] = self.issuer.issue(
                subject, [role], instance=instance, organization_id=org
            )
        return [("authorization", f"Bearer {self._tokens[key]}")]

    def organizations(self) -> list[DemoOrganization]:
        """The demo organizations this run registers (all, or one instance's share)."""
        wanted = self.options.only_instance
        return [o for o in self.data.organizations if not wanted or o.home_instance == wanted]

    async def _retrying(self, call: Callable[[], Awaitable[T_]]) -> T_:
        """Retry a call that is safe to repeat (an idempotent registration) on UNAVAILABLE."""
        for attempt in range(RETRIES):
            try:
                return await call()
            except grpc.aio.AioRpcError as exc:
                if exc.code() is not grpc.StatusCode.UNAVAILABLE or attempt == RETRIES - 1:
                    raise
                await asyncio.sleep(0.2 * 2**attempt)
        raise AssertionError("unreachable")

    async def organization(self, demo: DemoOrganization) -> None:
        """Register one organization (idempotently) and bring it to its demo status."""
        from ssg.registration.demo import organization_request

        parent_id = self.ids.get(demo.parent_key, "") if demo.parent_key else ""
        request = organization_request(demo, parent_id)
        if parent_id:
            # Only the parent's own people may claim it as parent: its admin registers the office.
            parent = self.data.organization(demo.parent_key)
            member = self._token(parent.admin_subject, Role.MEMBER, org=parent_id)
        else:
            member = self._token(demo.admin_subject, Role.MEMBER)
        async with self._gate:
            reply = await self._retrying(
                lambda: self.stub.RegisterOrganization(
                    request, metadata=member, timeout=CALL_SECONDS
                )
            )
            org = reply.organization
            self.ids[demo.key] = org.id
            if org.create_time.ToDatetime(tzinfo=UTC) >= self.started:
                self.summary.organizations_new += 1
            if reply.possible_duplicates:
                self.summary.flagged_duplicates += 1
            org = await self._walk_to(org, demo)
        self.summary.organizations += 1
        self.summary.statuses[_status_name(org.status)] += 1

    async def _walk_to(
        self, org: organization_pb2.Organization, demo: DemoOrganization
    ) -> organization_pb2.Organization:
        """Review steps from the current status to the demo one; none when already there."""
        target = demo.target_status.value
        reviewer = self._token("demo-reviewer", Role.REVIEWER, org.instance)
        if org.status == STATUS.ORGANIZATION_STATUS_PENDING and target == "REJECTED":
            reply = await self.stub.RejectOrganization(
                pb.RejectOrganizationRequest(
                    id=org.id, reason=demo.status_reason, evidence_note=demo.evidence_note
                ),
                metadata=reviewer,
                timeout=CALL_SECONDS,
            )
            return reply.organization
        if org.status == STATUS.ORGANIZATION_STATUS_PENDING and target in ("VERIFIED", "SUSPENDED"):
            verified = await self.stub.VerifyOrganization(
                pb.VerifyOrganizationRequest(id=org.id, evidence_note=demo.evidence_note),
                metadata=reviewer,
                timeout=CALL_SECONDS,
            )
            org = verified.organization
        if org.status == STATUS.ORGANIZATION_STATUS_VERIFIED and target == "SUSPENDED":
            suspended = await self.stub.SuspendOrganization(
                pb.SuspendOrganizationRequest(id=org.id, reason=demo.status_reason),
                metadata=reviewer,
                timeout=CALL_SECONDS,
            )
            org = suspended.organization
        return org

    async def expert(self, demo: DemoExpert) -> None:
        """Register one expert profile (idempotently), affiliated when its organization exists."""
        from ssg.registration.demo import expert_request

        request = expert_request(demo, self.ids.get(demo.affiliation_key, ""))
        owner = self._token(demo.owner_subject, Role.MEMBER)
        async with self._gate:
            reply = await self._retrying(
                lambda: self.stub.RegisterExpert(request, metadata=owner, timeout=CALL_SECONDS)
            )
        self.summary.experts += 1
        if reply.expert.create_time.ToDatetime(tzinfo=UTC) >= self.started:
            self.summary.experts_new += 1

    async def run(self, progress: Progress | None = None) -> SeedSummary:
        """Seed everything; referenced organizations (parents, originals) go first."""
        began = time.monotonic()
        orgs = self.organizations()
        later = {o.key for o in orgs if o.parent_key or o.duplicate_of}
        org_task = progress.add_task("organizations", total=len(orgs)) if progress else None
        expert_task = (
            progress.add_task("experts", total=len(self.data.experts)) if progress else None
        )

        async def one(coro: Awaitable[None], task: object) -> None:
            await coro
            if progress is not None and task is not None:
                progress.advance(task)  # type: ignore[arg-type]

        first = [o for o in orgs if o.key not in later]
        second = [o for o in orgs if o.key in later]
        for batch in (first, second):
            await asyncio.gather(*(one(self.organization(o), org_task) for o in batch))
        await asyncio.gather(*(one(self.expert(e), expert_task) for e in self.data.experts))
        self.summary.seconds = time.monotonic() - began
        return self.summary


def demo_data(options: SeedOptions) -> DemoData:
    """The registration demo data for these options (SeedError if the service is not installed)."""
    try:
        from ssg.registration import demo
    except ImportError:
        raise SeedError("ssg.registration is not installed here: no demo data to seed") from None
    return demo.generate(
        demo.DEFAULT_SEED if options.seed is None else options.seed,
        demo.DEFAULT_ORGANIZATIONS if options.organizations is None else options.organizations,
        demo.DEFAULT_EXPERTS if options.experts is None else options.experts,
    )


async def seed_registration(
    address: str, options: SeedOptions, console: Console | None = None
) -> SeedSummary:
    """Seed the registration service at address with its demo data, showing progress."""
    data = demo_data(options)
    await wait_serving(address, REGISTRATION_HEALTH)
    async with channel(address, default_deadline_seconds=CALL_SECONDS) as ch:
        seeder = RegistrationSeeder(async_stub(ch), data, options)
        columns = (
            TextColumn("{task.description:<14}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console or err, transient=False) as progress:
            return await seeder.run(progress)


def catalog_demo_data(options: SeedOptions) -> DemoCatalog:
    """The catalog demo data for these options (SeedError if the service is not installed)."""
    try:
        from ssg.catalog import demo
    except ImportError:
        raise SeedError("ssg.catalog is not installed here: no demo data to seed") from None
    organizations = demo_data(options)
    return demo.generate(
        organizations.seed,
        demo.DEFAULT_SOLUTIONS if options.solutions is None else options.solutions,
        demo.DEFAULT_KNOWLEDGE if options.knowledge is None else options.knowledge,
        demo.DEFAULT_NEEDS if options.needs is None else options.needs,
        demo.DEFAULT_FUNDING if options.funding is None else options.funding,
        organizations=organizations,
    )


async def seed_catalog(
    address: str, options: SeedOptions, console: Console | None = None
) -> CatalogSeedSummary:
    """Seed the catalog at address with its demo data (organizations resolved through the
    registration API at options.registration_target), showing progress."""
    if not options.registration_target:
        raise SeedError("the catalog seeder needs the registration API (--registration-target)")
    data = catalog_demo_data(options)
    await wait_serving(address, CATALOG_HEALTH)
    await wait_serving(options.registration_target, REGISTRATION_HEALTH)
    async with (
        channel(
            address, default_deadline_seconds=CALL_SECONDS, max_message_bytes=32 * 1024 * 1024
        ) as ch,
        channel(options.registration_target, default_deadline_seconds=CALL_SECONDS) as reg,
    ):
        seeder = CatalogSeeder(
            catalog_stub(ch),
            async_stub(reg),
            data,
            concurrency=max(options.concurrency, 16),
            learn_seconds=options.learn_seconds,
        )
        columns = (
            TextColumn("{task.description:<14}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        try:
            with Progress(*columns, console=console or err, transient=False) as progress:
                return await seeder.run(progress)
        except CatalogSeedError as exc:
            raise SeedError(str(exc)) from None


class Summary(Protocol):
    """What a seeder reports."""

    def line(self) -> str:
        """One summary line for the operator."""
        ...


Seeder = Callable[[str, SeedOptions, Console | None], Awaitable[Summary]]
# One entry per service with demo data, by its name in the ports file, in dependency order
# (the catalog refers to the organizations registration holds).
SEEDERS: dict[str, Seeder] = {"registration": seed_registration, "catalog": seed_catalog}


def seed_stack(
    config: StackConfig,
    options: SeedOptions | None = None,
    console: Console | None = None,
    only: Sequence[str] | None = None,
) -> list[Summary]:
    """Seed every service of the stack that has demo data and is installed (or those in only),
    in dependency order (registration, then catalog)."""
    entries = {
        entry.name: entry
        for entry in config.services
        if entry.name in SEEDERS
        and entry.grpc_port is not None
        and entry.installed()
        and (only is None or entry.name in only)
    }
    chosen = [entries[name] for name in SEEDERS if name in entries]
    base = options or SeedOptions()
    registration = next((e for e in config.services if e.name == "registration"), None)
    if registration is not None and registration.grpc_port and not base.registration_target:
        base = replace(base, registration_target=f"{config.host}:{registration.grpc_port}")

    async def run_all() -> list[Summary]:
        return [
            await SEEDERS[entry.name](f"{config.host}:{entry.grpc_port}", base, console)
            for entry in chosen
        ]

    return asyncio.run(run_all())


app = typer.Typer(
    help="Load demo data into the running services (idempotent: a re-run adds nothing).",
    invoke_without_command=True,
)

SeedOption = Annotated[int | None, typer.Option("--seed", help="demo data seed")]
ConcurrencyOption = Annotated[int, typer.Option(min=1, max=64, help="calls in flight")]


def _finish(summaries: Sequence[Summary]) -> None:
    if not summaries:
        out.print("nothing to seed: no service with demo data in the stack", markup=False)
    for summary in summaries:
        out.print(summary.line(), markup=False)


def _fail(exc: Exception) -> None:
    if isinstance(exc, grpc.aio.AioRpcError):
        report_rpc_error(exc)
    else:
        err.print(f"[red]seeding failed:[/red] {exc}")
    raise typer.Exit(1) from None


@app.callback()
def seed_all(
    ctx: typer.Context,
    ports: PortsOption = None,
    seed: SeedOption = None,
    concurrency: ConcurrencyOption = 8,
) -> None:
    """Without a service name: seed every service of the local stack that has demo data."""
    if ctx.invoked_subcommand is not None:
        return
    try:
        config = load_stack_config(ports)
    except StackConfigError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    try:
        _finish(seed_stack(config, SeedOptions(seed=seed, concurrency=concurrency)))
    except (SeedError, grpc.aio.AioRpcError) as exc:
        _fail(exc)


@app.command()
def registration(
    target: TargetOption = None,
    ports: PortsOption = None,
    seed: SeedOption = None,
    organizations: Annotated[
        int | None, typer.Option(min=82, help="how many organizations (default 320)")
    ] = None,
    experts: Annotated[
        int | None, typer.Option(min=0, help="how many experts (default 60)")
    ] = None,
    only_instance: Annotated[
        str, typer.Option(help="only organizations this instance reviews, e.g. africa")
    ] = "",
    concurrency: ConcurrencyOption = 8,
) -> None:
    """Register the demo organizations and experts, verifying, rejecting and suspending some."""
    try:
        address = resolve_target(target, ports, "registration")
    except CliFailure as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    options = SeedOptions(seed, organizations, experts, concurrency, only_instance)
    try:
        _finish([asyncio.run(seed_registration(address, options))])
    except (SeedError, grpc.aio.AioRpcError) as exc:
        _fail(exc)


@app.command()
def catalog(
    target: TargetOption = None,
    ports: PortsOption = None,
    registration_target: Annotated[
        str | None,
        typer.Option(help="registration API host:port (default: from the ports file)"),
    ] = None,
    seed: SeedOption = None,
    organizations: Annotated[
        int | None,
        typer.Option(min=82, help="organizations the registration seeding used (default 320)"),
    ] = None,
    solutions: Annotated[
        int | None, typer.Option(min=119, help="how many solutions (default 1500)")
    ] = None,
    knowledge: Annotated[int | None, typer.Option(min=0, help="knowledge products (200)")] = None,
    needs: Annotated[int | None, typer.Option(min=0, help="needs (150)")] = None,
    funding: Annotated[int | None, typer.Option(min=0, help="funding opportunities (80)")] = None,
    learn_seconds: Annotated[
        float, typer.Option(min=1, help="how long the catalog may take to learn organizations")
    ] = 120.0,
    concurrency: ConcurrencyOption = 16,
) -> None:
    """Load the catalog demo data (after registration): import the solutions, walk most of them
    through review to publication, and add knowledge products, needs and funding calls."""
    try:
        address = resolve_target(target, ports, "catalog")
        registration_address = resolve_target(registration_target, ports, "registration")
    except CliFailure as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    options = SeedOptions(
        seed,
        organizations,
        None,
        concurrency,
        "",
        solutions,
        knowledge,
        needs,
        funding,
        registration_address,
        learn_seconds,
    )
    try:
        _finish([asyncio.run(seed_catalog(address, options))])
    except (SeedError, grpc.aio.AioRpcError) as exc:
        _fail(exc)
