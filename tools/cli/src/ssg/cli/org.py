"""``ssg org``: register, list, show and review organizations through the registration API."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar, cast

import grpc
import typer
from rich.table import Table

from ssg.cli.rpc import (
    AsOption,
    CliFailure,
    InstanceOption,
    JsonOption,
    OrgClaimOption,
    PortsOption,
    SubjectOption,
    TargetOption,
    TokenOption,
    as_json,
    column_width,
    enum_label,
    enum_value,
    out,
    print_fields,
    print_json,
    resolve_target,
    resolve_token,
    run_call,
    timestamp,
)
from ssg.contracts.common.v1 import geography_pb2, organization_type_pb2, paging_pb2
from ssg.contracts.registration.v1 import organization_pb2
from ssg.contracts.registration.v1 import registration_service_pb2 as pb
from ssg.contracts.registration.v1 import registration_service_pb2_grpc as pb_grpc
from ssg.platform.auth.tokens import Role
from ssg.platform.grpc.client import channel

T = TypeVar("T")
SERVICE = "registration"
# Reads only: a retried read cannot apply anything twice.
RETRYABLE = [
    f"ssg.registration.v1.RegistrationService/{m}"
    for m in ("GetOrganization", "ListOrganizations", "ListMembers", "GetExpert", "ListExperts")
]
TYPE = (organization_type_pb2.OrganizationType, "ORGANIZATION_TYPE_")
REGION = (geography_pb2.Region, "REGION_")
STATUS = (organization_pb2.OrganizationStatus, "ORGANIZATION_STATUS_")
MAX_LIST_PAGE = 100

app = typer.Typer(help="Organizations: register, list, show, verify, reject, suspend.")


def call_registration(
    target: str | None,
    ports: Path | None,
    token: str | None,
    role: Role | None,
    subject: str,
    org: str,
    instance: str,
    action: Callable[[pb_grpc.RegistrationServiceAsyncStub], Awaitable[T]],
) -> T:
    """Run action against the registration API with the caller's token; exit 1 on an RPC error."""

    async def run() -> T:
        address = resolve_target(target, ports, SERVICE)
        bearer = resolve_token(token, role, subject, org, instance)
        async with channel(address, token=bearer or None, retryable=RETRYABLE) as ch:
            return await action(async_stub(ch))

    return run_call(run)


def async_stub(ch: grpc.aio.Channel) -> pb_grpc.RegistrationServiceAsyncStub:
    """The registration stub on an aio channel (typed as the async stub it is)."""
    return cast("pb_grpc.RegistrationServiceAsyncStub", pb_grpc.RegistrationServiceStub(ch))


def type_label(number: int) -> str:
    """OrganizationType number -> 'NGO'."""
    return enum_label(TYPE[0], number, TYPE[1])


def region_label(number: int) -> str:
    """Region number -> 'AFRICA'."""
    return enum_label(REGION[0], number, REGION[1])


def status_label(number: int) -> str:
    """OrganizationStatus number -> 'VERIFIED'."""
    return enum_label(STATUS[0], number, STATUS[1])


def organization_fields(o: organization_pb2.Organization) -> list[tuple[str, object]]:
    """An organization as (label, value) rows for `show`."""
    return [
        ("id", o.id),
        ("name", o.name),
        ("acronym", o.acronym),
        ("type", type_label(o.type)),
        ("status", status_label(o.status)),
        ("status reason", o.status_reason),
        ("headquarters", o.headquarters_country),
        ("operates in", list(o.operating_countries)),
        ("regions", [region_label(r) for r in o.regions]),
        ("sdgs", [int(s) for s in o.sdgs]),
        ("website", o.website),
        ("email", o.contact_email),
        ("languages", list(o.languages)),
        ("parent", o.parent_organization_id),
        ("merged into", o.merged_into),
        ("instance", o.instance),
        ("version", o.version),
        ("created", timestamp(o.create_time, o.HasField("create_time"))),
        ("updated", timestamp(o.update_time, o.HasField("update_time"))),
        ("verified", timestamp(o.verify_time, o.HasField("verify_time"))),
        (
            "verification expires",
            timestamp(o.verification_expire_time, o.HasField("verification_expire_time")),
        ),
        ("reconfirmation required", "yes" if o.reconfirmation_required else ""),
        ("description", o.description),
    ]


def organization_table(orgs: list[organization_pb2.Organization]) -> Table:
    """A table of organizations, one row each."""
    table = Table(show_lines=False, pad_edge=False)
    for column in ("id", "name", "acronym", "type", "hq", "status", "sdgs"):
        # Ids are copied into the next command: never wrap them.
        table.add_column(
            column, overflow="fold", no_wrap=column == "id", min_width=column_width(column)
        )
    for o in orgs:
        table.add_row(
            o.id,
            o.name,
            o.acronym,
            type_label(o.type),
            o.headquarters_country,
            status_label(o.status),
            " ".join(str(int(s)) for s in o.sdgs),
        )
    return table


def _duplicates_table(candidates: list[organization_pb2.DuplicateCandidate]) -> Table:
    table = Table(title="possible duplicates", title_justify="left", pad_edge=False)
    for column in ("id", "name", "score", "why"):
        # Ids are copied into the next command: never wrap them.
        table.add_column(
            column, overflow="fold", no_wrap=column == "id", min_width=column_width(column)
        )
    for c in candidates:
        table.add_row(c.organization_id, c.name, f"{c.score:.0f}", "; ".join(c.reasons))
    return table


@app.command()
def register(
    name: Annotated[str, typer.Option(help="full name, 2-200 characters")],
    type_: Annotated[
        str, typer.Option("--type", help="GOVERNMENT, UN_ENTITY, NGO, THINK_TANK, ACADEMIA, ...")
    ],
    country: Annotated[str, typer.Option(help="headquarters country, ISO 3166-1 alpha-3")],
    acronym: Annotated[str, typer.Option(help="short name")] = "",
    operates_in: Annotated[
        list[str] | None, typer.Option(help="country of operation (repeat)")
    ] = None,
    region: Annotated[list[str] | None, typer.Option(help="UN region (repeat)")] = None,
    sdg: Annotated[list[int] | None, typer.Option(help="SDG focus 1-17 (repeat)")] = None,
    website: Annotated[str, typer.Option(help="http(s) URL")] = "",
    email: Annotated[str, typer.Option(help="public contact email")] = "",
    description: Annotated[str, typer.Option(help="what the organization does")] = "",
    language: Annotated[list[str] | None, typer.Option(help="ISO 639-1 code (repeat)")] = None,
    parent: Annotated[str, typer.Option(help="id of the parent organization")] = "",
    request_id: Annotated[
        str, typer.Option(help="idempotency key: the same key returns the first result")
    ] = "",
    target: TargetOption = None,
    ports: PortsOption = None,
    token: TokenOption = None,
    as_: AsOption = None,
    subject: SubjectOption = "dev",
    org: OrgClaimOption = "",
    instance: InstanceOption = "global",
    json_: JsonOption = False,
) -> None:
    """Register an organization (PENDING until a reviewer verifies it); shows likely duplicates."""
    try:
        message = organization_pb2.Organization(
            name=name,
            acronym=acronym,
            type=enum_value(*TYPE, type_),  # type: ignore[arg-type]
            headquarters_country=country.upper(),
            operating_countries=[c.upper() for c in operates_in or []],
            regions=[enum_value(*REGION, r) for r in region or []],  # type: ignore[misc]
            sdgs=sdg or [],  # type: ignore[arg-type]
            website=website,
            contact_email=email,
            description=description,
            languages=language or [],
            parent_organization_id=parent,
        )
    except CliFailure as exc:
        raise typer.BadParameter(str(exc)) from None
    request = pb.RegisterOrganizationRequest(
        # A fresh key per invocation still lets a retry of this very call be recognised.
        request_id=request_id or uuid.uuid4().hex,
        organization=message,
    )
    reply = call_registration(
        target,
        ports,
        token,
        as_,
        subject,
        org,
        instance,
        lambda stub: stub.RegisterOrganization(request),
    )
    if json_:
        print_json(as_json(reply))
        return
    print_fields(organization_fields(reply.organization))
    if reply.possible_duplicates:
        out.print(_duplicates_table(list(reply.possible_duplicates)))


@app.command("list")
def list_(
    type_: Annotated[str, typer.Option("--type", help="organization type")] = "",
    country: Annotated[str, typer.Option(help="headquarters country (alpha-3)")] = "",
    region: Annotated[str, typer.Option(help="UN region")] = "",
    sdg: Annotated[int, typer.Option(min=0, max=17, help="SDG 1-17")] = 0,
    status: Annotated[str, typer.Option(help="PENDING, VERIFIED, REJECTED, SUSPENDED")] = "",
    reconfirmation: Annotated[
        bool, typer.Option(help="only those flagged for re-confirmation")
    ] = False,
    page_size: Annotated[int, typer.Option(min=1, max=MAX_LIST_PAGE)] = 20,
    page_token: Annotated[str, typer.Option(help="continue from a previous page")] = "",
    all_: Annotated[bool, typer.Option("--all", help="follow every page")] = False,
    target: TargetOption = None,
    ports: PortsOption = None,
    token: TokenOption = None,
    as_: AsOption = None,
    subject: SubjectOption = "dev",
    org: OrgClaimOption = "",
    instance: InstanceOption = "global",
    json_: JsonOption = False,
) -> None:
    """Organizations the caller may see, by name (anonymous callers see verified ones only)."""
    try:
        request = pb.ListOrganizationsRequest(
            type=enum_value(*TYPE, type_) if type_ else 0,  # type: ignore[arg-type]
            country=country.upper(),
            region=enum_value(*REGION, region) if region else 0,  # type: ignore[arg-type]
            sdg=sdg,  # type: ignore[arg-type]
            status=enum_value(*STATUS, status) if status else 0,  # type: ignore[arg-type]
            reconfirmation_required=reconfirmation,
        )
    except CliFailure as exc:
        raise typer.BadParameter(str(exc)) from None

    async def fetch(
        stub: pb_grpc.RegistrationServiceAsyncStub,
    ) -> tuple[list[organization_pb2.Organization], str]:
        found: list[organization_pb2.Organization] = []
        token_ = page_token
        while True:
            request.page.CopyFrom(paging_pb2.PageRequest(page_size=page_size, page_token=token_))
            reply = await stub.ListOrganizations(request)
            found.extend(reply.organizations)
            token_ = reply.page.next_page_token
            if not all_ or not token_:
                return found, token_

    orgs, next_token = call_registration(target, ports, token, as_, subject, org, instance, fetch)
    if json_:
        print_json({"organizations": [as_json(o) for o in orgs], "next_page_token": next_token})
        return
    out.print(organization_table(orgs))
    out.print(f"{len(orgs)} organization(s)", markup=False)
    if next_token:
        out.print(f"more: --page-token {next_token}", markup=False)


@app.command()
def show(
    organization_id: Annotated[str, typer.Argument(metavar="ID", help="organization id")],
    target: TargetOption = None,
    ports: PortsOption = None,
    token: TokenOption = None,
    as_: AsOption = None,
    subject: SubjectOption = "dev",
    org: OrgClaimOption = "",
    instance: InstanceOption = "global",
    json_: JsonOption = False,
) -> None:
    """One organization; its staff also see the audit trail and likely duplicates."""
    reply = call_registration(
        target,
        ports,
        token,
        as_,
        subject,
        org,
        instance,
        lambda stub: stub.GetOrganization(pb.GetOrganizationRequest(id=organization_id)),
    )
    if json_:
        print_json(as_json(reply))
        return
    if reply.redirected_from_id:
        out.print(f"({reply.redirected_from_id} was merged into this one)", markup=False)
    print_fields(organization_fields(reply.organization))
    if reply.audit_entries:
        table = Table(title="audit trail", title_justify="left", pad_edge=False)
        for column in ("time", "action", "actor", "from", "to", "reason"):
            table.add_column(column, overflow="fold")
        for e in reply.audit_entries:
            table.add_row(
                timestamp(e.time, e.HasField("time")),
                e.action,
                e.actor,
                status_label(e.from_status),
                status_label(e.to_status),
                e.reason,
            )
        out.print(table)
    if reply.possible_duplicates:
        out.print(_duplicates_table(list(reply.possible_duplicates)))


def _review(
    what: str,
    build: Callable[
        [pb_grpc.RegistrationServiceAsyncStub], Awaitable[organization_pb2.Organization]
    ],
    connection: tuple[str | None, Path | None, str | None, Role | None, str, str, str],
    json_: bool,
) -> None:
    organization = call_registration(*connection, build)
    if json_:
        print_json({"organization": as_json(organization)})
        return
    out.print(f"{what}: {organization.name} ({organization.id})", markup=False)
    print_fields(
        [
            ("status", status_label(organization.status)),
            ("status reason", organization.status_reason),
            ("version", organization.version),
            (
                "verification expires",
                timestamp(
                    organization.verification_expire_time,
                    organization.HasField("verification_expire_time"),
                ),
            ),
        ]
    )


@app.command()
def verify(
    organization_id: Annotated[str, typer.Argument(metavar="ID", help="organization id")],
    reason: Annotated[str, typer.Option(help="why (optional)")] = "",
    evidence: Annotated[str, typer.Option(help="what was checked")] = "",
    version: Annotated[int, typer.Option(min=0, help="version looked at (0: no check)")] = 0,
    target: TargetOption = None,
    ports: PortsOption = None,
    token: TokenOption = None,
    as_: AsOption = None,
    subject: SubjectOption = "dev",
    org: OrgClaimOption = "",
    instance: InstanceOption = "global",
    json_: JsonOption = False,
) -> None:
    """Verify a pending or suspended organization, or re-confirm a verified one (reviewers)."""
    request = pb.VerifyOrganizationRequest(
        id=organization_id, version=version, reason=reason, evidence_note=evidence
    )

    async def call(stub: pb_grpc.RegistrationServiceAsyncStub) -> organization_pb2.Organization:
        return (await stub.VerifyOrganization(request)).organization

    _review("verified", call, (target, ports, token, as_, subject, org, instance), json_)


@app.command()
def reject(
    organization_id: Annotated[str, typer.Argument(metavar="ID", help="organization id")],
    reason: Annotated[str, typer.Option(help="why it is refused (required)")],
    evidence: Annotated[str, typer.Option(help="what was checked")] = "",
    version: Annotated[int, typer.Option(min=0, help="version looked at (0: no check)")] = 0,
    target: TargetOption = None,
    ports: PortsOption = None,
    token: TokenOption = None,
    as_: AsOption = None,
    subject: SubjectOption = "dev",
    org: OrgClaimOption = "",
    instance: InstanceOption = "global",
    json_: JsonOption = False,
) -> None:
    """Refuse a pending organization, with a reason (reviewers)."""
    request = pb.RejectOrganizationRequest(
        id=organization_id, version=version, reason=reason, evidence_note=evidence
    )

    async def call(stub: pb_grpc.RegistrationServiceAsyncStub) -> organization_pb2.Organization:
        return (await stub.RejectOrganization(request)).organization

    _review("rejected", call, (target, ports, token, as_, subject, org, instance), json_)


@app.command()
def suspend(
    organization_id: Annotated[str, typer.Argument(metavar="ID", help="organization id")],
    reason: Annotated[str, typer.Option(help="why it is suspended (required)")],
    evidence: Annotated[str, typer.Option(help="what was checked")] = "",
    version: Annotated[int, typer.Option(min=0, help="version looked at (0: no check)")] = 0,
    target: TargetOption = None,
    ports: PortsOption = None,
    token: TokenOption = None,
    as_: AsOption = None,
    subject: SubjectOption = "dev",
    org: OrgClaimOption = "",
    instance: InstanceOption = "global",
    json_: JsonOption = False,
) -> None:
    """Withdraw a verification for now, with a reason (reviewers)."""
    request = pb.SuspendOrganizationRequest(
        id=organization_id, version=version, reason=reason, evidence_note=evidence
    )

    async def call(stub: pb_grpc.RegistrationServiceAsyncStub) -> organization_pb2.Organization:
        return (await stub.SuspendOrganization(request)).organization

    _review("suspended", call, (target, ports, token, as_, subject, org, instance), json_)
