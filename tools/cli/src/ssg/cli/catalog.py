"""``ssg catalog``: import collections of solutions; list, show, submit, review and publish
solutions; list and post needs; list funding opportunities (the catalog API)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast

import grpc
import typer
from google.protobuf.message import Message
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ssg.cli import catalog_import
from ssg.cli.options import Connection, connection_options
from ssg.cli.rpc import (
    CliFailure,
    JsonOption,
    as_json,
    column_width,
    enum_label,
    enum_value,
    err,
    out,
    print_fields,
    print_json,
    run_call,
    timestamp,
)
from ssg.contracts.catalog.v1 import catalog_service_pb2 as pb
from ssg.contracts.catalog.v1 import catalog_service_pb2_grpc as pb_grpc
from ssg.contracts.catalog.v1 import (
    funding_pb2,
    need_pb2,
    provenance_pb2,
    review_pb2,
    solution_pb2,
)
from ssg.contracts.common.v1 import geography_pb2, paging_pb2, sdg_pb2
from ssg.platform.grpc.client import channel

T = TypeVar("T")
SERVICE = "catalog"
MAX_LIST_PAGE = 100
MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # import batches; the service accepts as much
RETRYABLE = [
    f"ssg.catalog.v1.CatalogService/{m}"
    for m in ("GetSolution", "ListSolutions", "GetNeed", "ListNeeds", "ListFundingOpportunities")
]
REGION = (geography_pb2.Region, "REGION_")
MODALITY = (solution_pb2.CooperationModality, "COOPERATION_MODALITY_")
SOLUTION_STATUS = (solution_pb2.SolutionStatus, "SOLUTION_STATUS_")
PARTNER_ROLE = (solution_pb2.PartnerRole, "PARTNER_ROLE_")
NEED_STATUS = (need_pb2.NeedStatus, "NEED_STATUS_")
SUPPORT = (need_pb2.SupportKind, "SUPPORT_KIND_")
FUNDING_STATUS = (funding_pb2.FundingStatus, "FUNDING_STATUS_")
CRITERION = (review_pb2.ReviewCriterion, "REVIEW_CRITERION_")
OUTCOME = (review_pb2.ReviewOutcome, "REVIEW_OUTCOME_")
SOURCE = (provenance_pb2.RecordSource, "RECORD_SOURCE_")

app = typer.Typer(help="The catalog: solutions (good practices), needs, funding opportunities.")
solutions_app = typer.Typer(help="Solutions: list, show, submit, review, publish.")
needs_app = typer.Typer(help="Needs (requests for a solution): list, post.")
funding_app = typer.Typer(help="Funding opportunities: list.")
app.add_typer(solutions_app, name="solutions")
app.add_typer(needs_app, name="needs")
app.add_typer(funding_app, name="funding")

PageSizeOption = Annotated[int, typer.Option(min=1, max=MAX_LIST_PAGE)]
PageTokenOption = Annotated[str, typer.Option(help="continue from a previous page")]
AllOption = Annotated[bool, typer.Option("--all", help="follow every page")]
SdgOption = Annotated[int, typer.Option(min=0, max=17, help="SDG 1-17")]
OrganizationFilter = Annotated[str, typer.Option("--organization", help="organization id")]
VersionOption = Annotated[int, typer.Option(min=0, help="version looked at (0: no check)")]


def async_stub(ch: grpc.aio.Channel) -> pb_grpc.CatalogServiceAsyncStub:
    """The catalog stub on an aio channel (typed as the async stub it is)."""
    return cast("pb_grpc.CatalogServiceAsyncStub", pb_grpc.CatalogServiceStub(ch))


def call_catalog(
    conn: Connection, action: Callable[[pb_grpc.CatalogServiceAsyncStub], Awaitable[T]]
) -> T:
    """Run action against the catalog API with the caller's token; exit 1 on an RPC error."""

    async def run() -> T:
        bearer = conn.bearer()
        async with channel(
            conn.address(SERVICE),
            token=bearer or None,
            retryable=RETRYABLE,
            max_message_bytes=MAX_MESSAGE_BYTES,
        ) as ch:
            return await action(async_stub(ch))

    return run_call(run)


def _label(kind: tuple[Any, str], number: int) -> str:
    return enum_label(kind[0], number, kind[1])


def _number(kind: tuple[Any, str], label: str) -> int:
    """An enum number from a label; a bad label is a usage error (exit 2)."""
    if not label:
        return 0
    try:
        return enum_value(kind[0], kind[1], label)
    except CliFailure as exc:
        raise typer.BadParameter(str(exc)) from None


def _sdgs(values: Any) -> str:
    return " ".join(str(int(s)) for s in values)


def _pages(
    fetch: Callable[[str], Awaitable[tuple[list[T], str]]], first: str, follow: bool
) -> Callable[[pb_grpc.CatalogServiceAsyncStub], Awaitable[tuple[list[T], str]]]:
    async def run(_: pb_grpc.CatalogServiceAsyncStub) -> tuple[list[T], str]:
        found: list[T] = []
        token = first
        while True:
            items, token = await fetch(token)
            found.extend(items)
            if not follow or not token:
                return found, token

    return run


def _list_output(
    kind: str, items: list[Message], table: Table, next_token: str, json_: bool
) -> None:
    if json_:
        print_json({kind: [as_json(i) for i in items], "next_page_token": next_token})
        return
    out.print(table)
    out.print(f"{len(items)} {kind.replace('_', ' ')}", markup=False)
    if next_token:
        out.print(f"more: --page-token {next_token}", markup=False)


def _table(*columns: str) -> Table:
    table = Table(pad_edge=False)
    for column in columns:
        # Ids are copied into the next command: never wrap them.
        table.add_column(
            column, overflow="fold", no_wrap=column == "id", min_width=column_width(column)
        )
    return table


# -- import ---------------------------------------------------------------------------------------


@app.command("import")
@connection_options
def import_(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, readable=True, help="CSV, JSON (array) or JSON Lines file"
        ),
    ],
    conn: Connection,
    format_: Annotated[
        str, typer.Option("--format", help="csv, json or jsonl (default: from the suffix)")
    ] = "",
    publish: Annotated[
        bool, typer.Option(help="publish the imported solutions (a reviewed collection)")
    ] = False,
    all_or_nothing: Annotated[
        bool, typer.Option("--all-or-nothing", help="write nothing if any row of the file is bad")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="check every row, write nothing")
    ] = False,
    report: Annotated[
        Path | None, typer.Option(help="also write the rejected rows to this CSV file")
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, max=catalog_import.MAX_BATCH_ROWS, help="rows per call")
    ] = 500,
    json_: JsonOption = False,
) -> None:
    """Import a collection of solutions (operators); exit 1 if any row was rejected.

    Idempotent on external_id: rows imported before are EXISTING and create nothing.
    The columns are described in `ssg.cli.catalog_import` and the README.
    """
    try:
        fmt = catalog_import.detect_format(file, format_)
    except catalog_import.FileFormatError as exc:
        raise typer.BadParameter(str(exc)) from None
    total = file.stat().st_size
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[rows]:,} rows"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=False, disable=json_) as progress:
        task = progress.add_task("checking" if dry_run else "importing", total=total, rows=0)

        def advance(rows: int, read: int) -> None:
            progress.update(task, completed=read, rows=rows)

        async def run(stub: pb_grpc.CatalogServiceAsyncStub) -> catalog_import.ImportSummary:
            return await catalog_import.send_file(
                stub,
                file,
                fmt,
                publish=publish,
                dry_run=dry_run,
                all_or_nothing=all_or_nothing,
                batch_rows=batch_size,
                progress=advance,
            )

        try:
            summary = call_catalog(conn, run)
        except catalog_import.FileFormatError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
    if report is not None:
        catalog_import.write_report(report, summary.rejections)
    _import_output(summary, dry_run, all_or_nothing, report, json_)
    if summary.rejected_rows:
        raise typer.Exit(1)


def _import_output(
    summary: catalog_import.ImportSummary,
    dry_run: bool,
    all_or_nothing: bool,
    report: Path | None,
    json_: bool,
) -> None:
    if json_:
        print_json(
            {
                "rows": summary.rows,
                "created": summary.created,
                "existing": summary.existing,
                "not_written": summary.not_written,
                "rejected": summary.rejected_rows,
                "written": summary.written,
                "seconds": round(summary.seconds, 3),
                "rejections": [
                    {
                        "line": r.line,
                        "external_id": r.external_id,
                        "field": r.field,
                        "reason": r.reason,
                    }
                    for r in summary.rejections
                ],
            }
        )
        return
    if summary.rejections:
        table = Table(title="rejected rows", title_justify="left", pad_edge=False)
        for column in ("line", "external_id", "field", "reason"):
            table.add_column(column, overflow="fold")
        for r in summary.rejections:
            table.add_row(str(r.line), r.external_id, r.field, r.reason)
        out.print(table)
    if dry_run:
        head = "dry run, nothing written"
    elif all_or_nothing and not summary.written:
        head = "all or nothing: rows were rejected, nothing written"
    else:
        head = "imported"
    out.print(
        f"{head}: {summary.rows:,} rows: {summary.created:,} created, {summary.existing:,} "
        f"already imported, {summary.not_written:,} not written, {summary.rejected_rows:,} "
        f"rejected; {summary.batches} calls in {summary.seconds:.1f} s ({summary.rate:,.0f} rows/s)",
        markup=False,
    )
    if report is not None:
        out.print(f"report: {report} ({len(summary.rejections)} rejection(s))", markup=False)


# -- solutions ------------------------------------------------------------------------------------


def solution_fields(s: solution_pb2.Solution) -> list[tuple[str, object]]:
    """A solution as (label, value) rows for `show`."""
    p = s.provenance
    return [
        ("id", s.id),
        ("title", s.title),
        ("status", _label(SOLUTION_STATUS, s.status)),
        ("organization", s.organization_id),
        ("verified organization", "yes" if p.vouching_organization_verified else "no"),
        ("modality", _label(MODALITY, s.modality)),
        ("sdgs", [int(g) for g in s.sdgs]),
        ("targets", [t.code for t in s.sdg_targets]),
        ("implementing", list(s.implementing_countries)),
        ("beneficiaries", list(s.beneficiary_countries)),
        ("regions", [_label(REGION, r) for r in s.regions]),
        ("partners", [f"{x.organization_id} ({_label(PARTNER_ROLE, x.role)})" for x in s.partners]),
        ("period", f"{s.period.start_date} - {s.period.end_date or 'ongoing'}"),
        (
            "budget",
            f"{s.budget.units:,} {s.budget.currency_code}" if s.HasField("budget") else "",
        ),
        ("tags", list(s.tags)),
        ("language", s.language),
        ("source", _label(SOURCE, p.source)),
        ("external id", p.external_id),
        ("submitted by", p.submitted_by),
        ("reviewed by", p.reviewed_by),
        ("version", s.version),
        ("updated", timestamp(s.update_time, s.HasField("update_time"))),
        ("published", timestamp(s.publish_time, s.HasField("publish_time"))),
        ("stale", "yes" if s.stale else ""),
        ("summary", s.summary),
        ("challenge", s.challenge),
        ("approach", s.approach),
        ("results", s.results),
        (
            "indicators",
            [
                f"{i.name}: {i.baseline + ' -> ' if i.baseline else ''}{i.value} {i.unit}".rstrip()
                for i in s.indicators
            ],
        ),
    ]


def solution_table(items: list[solution_pb2.Solution]) -> Table:
    """Solutions, one row each."""
    table = _table("id", "title", "status", "sdgs", "countries", "modality")
    for s in items:
        table.add_row(
            s.id,
            s.title,
            _label(SOLUTION_STATUS, s.status),
            _sdgs(s.sdgs),
            " ".join(s.implementing_countries),
            _label(MODALITY, s.modality),
        )
    return table


@solutions_app.command("list")
@connection_options
def solutions_list(
    conn: Connection,
    sdg: SdgOption = 0,
    sdg_target: Annotated[str, typer.Option(help="SDG target, e.g. 6.4")] = "",
    country: Annotated[str, typer.Option(help="country (alpha-3)")] = "",
    region: Annotated[str, typer.Option(help="UN region, e.g. AFRICA")] = "",
    modality: Annotated[str, typer.Option(help="SOUTH_SOUTH, TRIANGULAR, EAST_EAST")] = "",
    organization: OrganizationFilter = "",
    status: Annotated[str, typer.Option(help="DRAFT, SUBMITTED, IN_REVIEW, PUBLISHED, ...")] = "",
    stale: Annotated[bool, typer.Option("--stale", help="only those flagged stale")] = False,
    page_size: PageSizeOption = 20,
    page_token: PageTokenOption = "",
    all_: AllOption = False,
    json_: JsonOption = False,
) -> None:
    """Solutions the caller may see, newest update first (anonymous: published only)."""
    request = pb.ListSolutionsRequest(
        sdg=sdg,  # type: ignore[arg-type]
        sdg_target=sdg_target,
        country=country.upper(),
        region=_number(REGION, region),  # type: ignore[arg-type]
        modality=_number(MODALITY, modality),  # type: ignore[arg-type]
        organization_id=organization,
        status=_number(SOLUTION_STATUS, status),  # type: ignore[arg-type]
        stale_only=stale,
    )

    def fetch(stub: pb_grpc.CatalogServiceAsyncStub) -> Callable[[str], Awaitable[Any]]:
        async def page(token: str) -> tuple[list[solution_pb2.Solution], str]:
            request.page.CopyFrom(paging_pb2.PageRequest(page_size=page_size, page_token=token))
            reply = await stub.ListSolutions(request)
            return list(reply.solutions), reply.page.next_page_token

        return page

    items, next_token = call_catalog(conn, lambda stub: _pages(fetch(stub), page_token, all_)(stub))
    _list_output("solutions", list(items), solution_table(items), next_token, json_)


@solutions_app.command("show")
@connection_options
def solutions_show(
    solution_id: Annotated[str, typer.Argument(metavar="ID", help="solution id")],
    conn: Connection,
    json_: JsonOption = False,
) -> None:
    """One solution; its organization and reviewers also see its reviews."""
    reply = call_catalog(conn, lambda stub: stub.GetSolution(pb.GetSolutionRequest(id=solution_id)))
    if json_:
        print_json(as_json(reply))
        return
    print_fields(solution_fields(reply.solution))
    if reply.reviews:
        table = Table(title="reviews", title_justify="left", pad_edge=False)
        for column in ("time", "reviewer", "outcome", "score", "passed", "comment"):
            table.add_column(column, overflow="fold")
        for r in reply.reviews:
            table.add_row(
                timestamp(r.create_time, r.HasField("create_time")),
                r.reviewer,
                _label(OUTCOME, r.outcome),
                str(r.total_score),
                "yes" if r.passed else "no",
                r.comment,
            )
        out.print(table)


def _changed(what: str, solution: solution_pb2.Solution, json_: bool) -> None:
    if json_:
        print_json({"solution": as_json(solution)})
        return
    out.print(f"{what}: {solution.title} ({solution.id})", markup=False)
    print_fields(
        [("status", _label(SOLUTION_STATUS, solution.status)), ("version", solution.version)]
    )


@solutions_app.command("submit")
@connection_options
def solutions_submit(
    solution_id: Annotated[str, typer.Argument(metavar="ID", help="solution id")],
    conn: Connection,
    version: VersionOption = 0,
    json_: JsonOption = False,
) -> None:
    """Send a draft (or a solution with changes requested) to the reviewers (its members)."""
    reply = call_catalog(
        conn,
        lambda stub: stub.SubmitSolution(pb.SubmitSolutionRequest(id=solution_id, version=version)),
    )
    _changed("submitted", reply.solution, json_)


def _scores(
    score: list[str], every: int, criterion_comment: str
) -> list[review_pb2.CriterionScore]:
    """The checklist from --score NAME=N (repeat) and --all-scores N for the rest."""
    given: dict[int, int] = {}
    for item in score:
        name, sep, number_text = item.partition("=")
        if not sep or not number_text.strip().isdigit():
            raise typer.BadParameter(f"--score wants CRITERION=N, got {item!r}")
        given[_number(CRITERION, name)] = int(number_text)
    chosen = []
    for number in review_pb2.ReviewCriterion.values():
        if number == 0:
            continue
        value = given.get(number, every)
        if value:
            comment = criterion_comment or f"scored {value} of 5"
            chosen.append(review_pb2.CriterionScore(criterion=number, score=value, comment=comment))
    return chosen


@solutions_app.command("review")
@connection_options
def solutions_review(
    solution_id: Annotated[str, typer.Argument(metavar="ID", help="solution id")],
    conn: Connection,
    outcome: Annotated[str, typer.Option(help="APPROVE, REQUEST_CHANGES or REJECT")],
    score: Annotated[
        list[str] | None,
        typer.Option(help="CRITERION=N, e.g. evidence_of_results=4 (repeat)"),
    ] = None,
    all_scores: Annotated[
        int, typer.Option(min=0, max=5, help="score for every criterion not given by --score")
    ] = 0,
    criterion_comment: Annotated[str, typer.Option(help="comment on every score")] = "",
    comment: Annotated[str, typer.Option(help="overall comment")] = "",
    json_: JsonOption = False,
) -> None:
    """Record a review (reviewers of the instance); a SUBMITTED solution is taken up first.

    Criteria: EVIDENCE_OF_RESULTS, REPLICABILITY, PARTNERSHIP, SUSTAINABILITY, INNOVATION,
    SDG_ALIGNMENT, each scored 1-5.
    """
    checklist = _scores(score or [], all_scores, criterion_comment)
    decision = _number(OUTCOME, outcome)

    async def run(stub: pb_grpc.CatalogServiceAsyncStub) -> pb.ReviewSolutionResponse:
        current = (await stub.GetSolution(pb.GetSolutionRequest(id=solution_id))).solution
        if current.status == solution_pb2.SOLUTION_STATUS_SUBMITTED:
            current = (
                await stub.StartSolutionReview(
                    pb.StartSolutionReviewRequest(id=solution_id, version=current.version)
                )
            ).solution
        review = review_pb2.Review(scores=checklist, outcome=decision, comment=comment)  # type: ignore[arg-type]
        return await stub.ReviewSolution(
            pb.ReviewSolutionRequest(id=solution_id, version=current.version, review=review)
        )

    reply = call_catalog(conn, run)
    if json_:
        print_json(as_json(reply))
        return
    r = reply.review
    out.print(
        f"reviewed: {reply.solution.title} ({reply.solution.id}): {_label(OUTCOME, r.outcome)}, "
        f"score {r.total_score} ({'passes' if r.passed else 'does not pass'})",
        markup=False,
    )
    print_fields(
        [
            ("status", _label(SOLUTION_STATUS, reply.solution.status)),
            ("version", reply.solution.version),
        ]
    )


@solutions_app.command("publish")
@connection_options
def solutions_publish(
    solution_id: Annotated[str, typer.Argument(metavar="ID", help="solution id")],
    conn: Connection,
    version: VersionOption = 0,
    json_: JsonOption = False,
) -> None:
    """Publish an approved solution (reviewers of the instance)."""
    reply = call_catalog(
        conn,
        lambda stub: stub.PublishSolution(
            pb.PublishSolutionRequest(id=solution_id, version=version)
        ),
    )
    _changed("published", reply.solution, json_)


# -- needs ----------------------------------------------------------------------------------------


def need_table(items: list[need_pb2.Need]) -> Table:
    """Needs, one row each."""
    table = _table("id", "title", "status", "sdgs", "country", "support", "deadline")
    for n in items:
        table.add_row(
            n.id,
            n.title,
            _label(NEED_STATUS, n.status),
            _sdgs(n.sdgs),
            n.country,
            ", ".join(_label(SUPPORT, k) for k in n.support_kinds),
            n.deadline,
        )
    return table


@needs_app.command("list")
@connection_options
def needs_list(
    conn: Connection,
    sdg: SdgOption = 0,
    country: Annotated[str, typer.Option(help="country (alpha-3)")] = "",
    region: Annotated[str, typer.Option(help="UN region")] = "",
    support: Annotated[str, typer.Option(help="TECHNICAL_ASSISTANCE, FINANCING, ...")] = "",
    organization: OrganizationFilter = "",
    status: Annotated[str, typer.Option(help="OPEN, MATCHED, IN_PROGRESS, CLOSED")] = "",
    page_size: PageSizeOption = 20,
    page_token: PageTokenOption = "",
    all_: AllOption = False,
    json_: JsonOption = False,
) -> None:
    """Needs, newest update first (needs are public once posted)."""
    request = pb.ListNeedsRequest(
        sdg=sdg,  # type: ignore[arg-type]
        country=country.upper(),
        region=_number(REGION, region),  # type: ignore[arg-type]
        support_kind=_number(SUPPORT, support),  # type: ignore[arg-type]
        organization_id=organization,
        status=_number(NEED_STATUS, status),  # type: ignore[arg-type]
    )

    def fetch(stub: pb_grpc.CatalogServiceAsyncStub) -> Callable[[str], Awaitable[Any]]:
        async def page(token: str) -> tuple[list[need_pb2.Need], str]:
            request.page.CopyFrom(paging_pb2.PageRequest(page_size=page_size, page_token=token))
            reply = await stub.ListNeeds(request)
            return list(reply.needs), reply.page.next_page_token

        return page

    items, next_token = call_catalog(conn, lambda stub: _pages(fetch(stub), page_token, all_)(stub))
    _list_output("needs", list(items), need_table(items), next_token, json_)


@needs_app.command("post")
@connection_options
def needs_post(
    conn: Connection,
    title: Annotated[str, typer.Option(help="5-300 characters")],
    problem: Annotated[str, typer.Option(help="the problem statement, 20+ characters")],
    country: Annotated[str, typer.Option(help="country (alpha-3)")],
    sdg: Annotated[list[int], typer.Option(help="SDG 1-17 (repeat)")],
    support: Annotated[
        list[str], typer.Option(help="TECHNICAL_ASSISTANCE, KNOWLEDGE_EXCHANGE, ... (repeat)")
    ],
    seeker: Annotated[
        str, typer.Option(help="seeker organization id (default: the --org claim)")
    ] = "",
    deadline: Annotated[str, typer.Option(help="YYYY-MM-DD")] = "",
    json_: JsonOption = False,
) -> None:
    """Post a need for a verified organization (its members)."""
    organization = seeker or conn.org
    if not organization:
        raise typer.BadParameter("pass --seeker ORGANIZATION_ID (or --org with --as member)")
    need = need_pb2.Need(
        title=title,
        problem_statement=problem,
        seeker_organization_id=organization,
        sdgs=[sdg_pb2.Sdg.ValueType(s) for s in sdg],
        country=country.upper(),
        support_kinds=[_number(SUPPORT, s) for s in support],  # type: ignore[misc]
        deadline=deadline,
    )
    reply = call_catalog(conn, lambda stub: stub.PostNeed(pb.PostNeedRequest(need=need)))
    if json_:
        print_json(as_json(reply))
        return
    out.print(f"posted: {reply.need.title} ({reply.need.id})", markup=False)
    print_fields(
        [("status", _label(NEED_STATUS, reply.need.status)), ("version", reply.need.version)]
    )


# -- funding --------------------------------------------------------------------------------------


def funding_table(items: list[funding_pb2.FundingOpportunity]) -> Table:
    """Funding opportunities, one row each."""
    table = _table("id", "title", "status", "sdgs", "amount", "deadline")
    for f in items:
        amount = ""
        if f.HasField("amount_max"):
            low = f"{f.amount_min.units:,}-" if f.HasField("amount_min") else "up to "
            amount = f"{low}{f.amount_max.units:,} {f.amount_max.currency_code}"
        table.add_row(
            f.id,
            f.title,
            _label(FUNDING_STATUS, f.status),
            _sdgs(f.sdgs),
            amount,
            timestamp(f.deadline, f.HasField("deadline"))[:10],
        )
    return table


@funding_app.command("list")
@connection_options
def funding_list(
    conn: Connection,
    sdg: SdgOption = 0,
    country: Annotated[str, typer.Option(help="eligible country (alpha-3)")] = "",
    organization: OrganizationFilter = "",
    status: Annotated[str, typer.Option(help="DRAFT, OPEN, CLOSED")] = "",
    page_size: PageSizeOption = 20,
    page_token: PageTokenOption = "",
    all_: AllOption = False,
    json_: JsonOption = False,
) -> None:
    """Funding opportunities, newest update first (anonymous: open and closed ones)."""
    request = pb.ListFundingOpportunitiesRequest(
        sdg=sdg,  # type: ignore[arg-type]
        country=country.upper(),
        organization_id=organization,
        status=_number(FUNDING_STATUS, status),  # type: ignore[arg-type]
    )

    def fetch(stub: pb_grpc.CatalogServiceAsyncStub) -> Callable[[str], Awaitable[Any]]:
        async def page(token: str) -> tuple[list[funding_pb2.FundingOpportunity], str]:
            request.page.CopyFrom(paging_pb2.PageRequest(page_size=page_size, page_token=token))
            reply = await stub.ListFundingOpportunities(request)
            return list(reply.funding_opportunities), reply.page.next_page_token

        return page

    items, next_token = call_catalog(conn, lambda stub: _pages(fetch(stub), page_token, all_)(stub))
    _list_output("funding_opportunities", list(items), funding_table(items), next_token, json_)
