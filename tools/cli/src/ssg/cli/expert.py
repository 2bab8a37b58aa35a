"""``ssg expert``: register, list, show and erase expert profiles through the registration API."""

from __future__ import annotations

import uuid
from typing import Annotated

import typer
from rich.table import Table

from ssg.cli.org import call_registration
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
    enum_label,
    enum_value,
    out,
    print_fields,
    print_json,
    timestamp,
)
from ssg.contracts.common.v1 import paging_pb2
from ssg.contracts.registration.v1 import expert_pb2
from ssg.contracts.registration.v1 import registration_service_pb2 as pb
from ssg.contracts.registration.v1 import registration_service_pb2_grpc as pb_grpc

VISIBILITY = (expert_pb2.ExpertVisibility, "EXPERT_VISIBILITY_")
MAX_LIST_PAGE = 100

app = typer.Typer(help="Expert profiles: register, list, show, erase.")


def visibility_label(number: int) -> str:
    """ExpertVisibility number -> 'PUBLIC'."""
    return enum_label(VISIBILITY[0], number, VISIBILITY[1])


def expert_fields(e: expert_pb2.Expert) -> list[tuple[str, object]]:
    """An expert profile as (label, value) rows for `show`."""
    return [
        ("id", e.id),
        ("name", e.display_name),
        ("visibility", visibility_label(e.visibility)),
        ("expertise", list(e.expertise_areas)),
        ("sdgs", [int(s) for s in e.sdgs]),
        ("languages", list(e.languages)),
        ("countries", list(e.countries)),
        ("affiliation id", e.affiliation_organization_id),
        ("affiliation", e.affiliation),
        ("instance", e.instance),
        ("version", e.version),
        ("created", timestamp(e.create_time, e.HasField("create_time"))),
        ("updated", timestamp(e.update_time, e.HasField("update_time"))),
        ("biography", e.biography),
    ]


@app.command()
def register(
    name: Annotated[str, typer.Option(help="display name, 2-200 characters")],
    expertise: Annotated[
        list[str], typer.Option(help="area of expertise, e.g. 'solar mini-grids' (repeat)")
    ],
    visibility: Annotated[str, typer.Option(help="PUBLIC, MEMBERS_ONLY or HIDDEN")] = "PUBLIC",
    sdg: Annotated[list[int] | None, typer.Option(help="SDG 1-17 (repeat)")] = None,
    language: Annotated[list[str] | None, typer.Option(help="ISO 639-1 code (repeat)")] = None,
    country: Annotated[
        list[str] | None, typer.Option(help="country of experience, alpha-3 (repeat)")
    ] = None,
    affiliation_org: Annotated[str, typer.Option(help="id of an affiliated organization")] = "",
    affiliation: Annotated[str, typer.Option(help="free-text affiliation")] = "",
    biography: Annotated[str, typer.Option(help="short biography")] = "",
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
    """Register an expert profile owned by the caller."""
    try:
        visibility_number = enum_value(*VISIBILITY, visibility)
    except CliFailure as exc:
        raise typer.BadParameter(str(exc), param_hint="--visibility") from None
    request = pb.RegisterExpertRequest(
        request_id=request_id or uuid.uuid4().hex,
        expert=expert_pb2.Expert(
            display_name=name,
            expertise_areas=expertise,
            visibility=visibility_number,  # type: ignore[arg-type]
            sdgs=sdg or [],  # type: ignore[arg-type]
            languages=language or [],
            countries=[c.upper() for c in country or []],
            affiliation_organization_id=affiliation_org,
            affiliation=affiliation,
            biography=biography,
        ),
    )
    reply = call_registration(
        target, ports, token, as_, subject, org, instance, lambda s: s.RegisterExpert(request)
    )
    if json_:
        print_json(as_json(reply))
        return
    print_fields(expert_fields(reply.expert))


@app.command("list")
def list_(
    sdg: Annotated[int, typer.Option(min=0, max=17, help="SDG 1-17")] = 0,
    country: Annotated[str, typer.Option(help="country of experience (alpha-3)")] = "",
    language: Annotated[str, typer.Option(help="ISO 639-1 code")] = "",
    affiliation_org: Annotated[str, typer.Option(help="affiliated organization id")] = "",
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
    """Expert profiles the caller may see, by name (anonymous callers see public ones only)."""
    request = pb.ListExpertsRequest(
        sdg=sdg,  # type: ignore[arg-type]
        country=country.upper(),
        language=language,
        affiliation_organization_id=affiliation_org,
    )

    async def fetch(
        stub: pb_grpc.RegistrationServiceAsyncStub,
    ) -> tuple[list[expert_pb2.Expert], str]:
        found: list[expert_pb2.Expert] = []
        token_ = page_token
        while True:
            request.page.CopyFrom(paging_pb2.PageRequest(page_size=page_size, page_token=token_))
            reply = await stub.ListExperts(request)
            found.extend(reply.experts)
            token_ = reply.page.next_page_token
            if not all_ or not token_:
                return found, token_

    experts, next_token = call_registration(
        target, ports, token, as_, subject, org, instance, fetch
    )
    if json_:
        print_json({"experts": [as_json(e) for e in experts], "next_page_token": next_token})
        return
    table = Table(pad_edge=False)
    for column in ("id", "name", "visibility", "expertise", "sdgs", "countries"):
        # Ids are copied into the next command: never wrap them.
        table.add_column(
            column,
            overflow="fold",
            no_wrap=column == "id",
            min_width=32 if column == "id" else None,
        )
    for e in experts:
        table.add_row(
            e.id,
            e.display_name,
            visibility_label(e.visibility),
            "; ".join(e.expertise_areas),
            " ".join(str(int(s)) for s in e.sdgs),
            " ".join(e.countries),
        )
    out.print(table)
    out.print(f"{len(experts)} expert(s)", markup=False)
    if next_token:
        out.print(f"more: --page-token {next_token}", markup=False)


@app.command()
def show(
    expert_id: Annotated[str, typer.Argument(metavar="ID", help="expert id")],
    target: TargetOption = None,
    ports: PortsOption = None,
    token: TokenOption = None,
    as_: AsOption = None,
    subject: SubjectOption = "dev",
    org: OrgClaimOption = "",
    instance: InstanceOption = "global",
    json_: JsonOption = False,
) -> None:
    """One expert profile the caller may see."""
    reply = call_registration(
        target,
        ports,
        token,
        as_,
        subject,
        org,
        instance,
        lambda s: s.GetExpert(pb.GetExpertRequest(id=expert_id)),
    )
    if json_:
        print_json(as_json(reply))
        return
    print_fields(expert_fields(reply.expert))


@app.command()
def erase(
    expert_id: Annotated[str, typer.Argument(metavar="ID", help="expert id")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
    target: TargetOption = None,
    ports: PortsOption = None,
    token: TokenOption = None,
    as_: AsOption = None,
    subject: SubjectOption = "dev",
    org: OrgClaimOption = "",
    instance: InstanceOption = "global",
    json_: JsonOption = False,
) -> None:
    """Erase a profile for good (its owner or operators); every consumer is told to forget it."""
    if not yes and not typer.confirm(f"Erase expert {expert_id} for good?"):
        raise typer.Exit(1)
    call_registration(
        target,
        ports,
        token,
        as_,
        subject,
        org,
        instance,
        lambda s: s.EraseExpert(pb.EraseExpertRequest(id=expert_id)),
    )
    if json_:
        print_json({"erased": expert_id})
    else:
        out.print(f"erased expert {expert_id}", markup=False)
