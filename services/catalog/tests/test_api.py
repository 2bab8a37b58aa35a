"""The API on a real MongoDB through the real gRPC stack: bad inputs name their fields and
write nothing; import keeps good rows, reports bad ones, and is idempotent; the authorization
matrix (roles x commands) with dev tokens."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from ssg.contracts.catalog.v1 import catalog_service_pb2 as pb
from ssg.contracts.catalog.v1 import solution_pb2
from ssg.contracts.common.v1 import sdg_pb2
from ssg.platform.auth.tokens import Role

from .helpers import CODES, ROLES, as_caller, metadata_for, passing_review, solution_msg


def bad_fields(error: grpc.aio.AioRpcError) -> set[str]:
    """Field paths of the BadRequest detail of an INVALID_ARGUMENT."""
    status = rpc_status.from_call(error)
    assert status is not None
    found: set[str] = set()
    for detail in status.details:
        request = error_details_pb2.BadRequest()
        if detail.Unpack(request):
            found |= {v.field for v in request.field_violations}
    return found


def documents(served) -> int:
    return served.db.solutions.count_documents({}) + served.db.outbox.count_documents({})


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"sdg_targets": [sdg_pb2.SdgTarget(code="6.9")]}, "solution.sdg_targets[0]"),
        (
            {"period": solution_pb2.Period(start_date="2023-05-01", end_date="2021-01-01")},
            "solution.period.end_date",
        ),
        ({"summary": "s" * (5 * 1024 * 1024)}, "solution.summary"),
        (
            {
                "partners": [
                    solution_pb2.Partner(
                        organization_id="not-registered", role=solution_pb2.PARTNER_ROLE_PROVIDER
                    )
                ]
            },
            "solution.partners[0].organization_id",
        ),
    ],
    ids=["unknown-target", "end-before-start", "5MB-summary", "unknown-partner"],
)
async def test_bad_input_is_invalid_argument_naming_the_field_and_writes_nothing(
    served, auth, change, field
):
    org = served.add_organization()
    before = documents(served)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await served.stub.CreateSolution(
            pb.CreateSolutionRequest(solution=solution_msg(org, **change)),
            metadata=auth("m", Role.MEMBER, org=org),
            timeout=20,
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in bad_fields(err.value)
    assert documents(served) == before


async def test_import_keeps_good_rows_reports_bad_ones_and_reimport_creates_nothing(served, auth):
    org = served.add_organization()
    ops = auth("ops", Role.OPERATOR)
    rows = [
        pb.ImportRow(external_id=f"coll:{org}:1", solution=solution_msg(org, title="Imported one")),
        pb.ImportRow(
            external_id=f"coll:{org}:2",
            solution=solution_msg(org, sdg_targets=[sdg_pb2.SdgTarget(code="6.9")]),
        ),
        pb.ImportRow(external_id=f"coll:{org}:3", solution=solution_msg("unknown-org")),
        pb.ImportRow(
            external_id=f"coll:{org}:4", solution=solution_msg(org, title="Imported four")
        ),
    ]
    first = await served.stub.ImportSolutions(
        pb.ImportSolutionsRequest(rows=rows, publish=True), metadata=ops, timeout=20
    )
    assert (first.created_count, first.rejected_count, first.existing_count) == (2, 2, 0)
    assert [r.outcome for r in first.results] == [
        pb.IMPORT_OUTCOME_CREATED,
        pb.IMPORT_OUTCOME_REJECTED,
        pb.IMPORT_OUTCOME_REJECTED,
        pb.IMPORT_OUTCOME_CREATED,
    ]
    assert first.results[1].violations[0].field == "solution.sdg_targets[0]"
    assert "unknown organization" in first.results[2].violations[0].description
    stored = served.db.solutions.count_documents({"provenance.vouching_organization_id": org})
    events = served.db.outbox.count_documents({})
    again = await served.stub.ImportSolutions(
        pb.ImportSolutionsRequest(rows=rows, publish=True), metadata=ops, timeout=20
    )
    assert (again.created_count, again.existing_count) == (0, 2)
    assert again.results[0].solution_id == first.results[0].solution_id
    assert (
        served.db.solutions.count_documents({"provenance.vouching_organization_id": org})
        == stored
        == 2
    )
    assert served.db.outbox.count_documents({}) == events


async def test_external_ids_of_solutions_stored_before_their_collection_are_backfilled(
    served, auth
):
    org = served.add_organization()
    ops = auth("ops", Role.OPERATOR)
    rows = [pb.ImportRow(external_id=f"old:{org}:{n}", solution=solution_msg(org)) for n in (1, 2)]
    first = await served.stub.ImportSolutions(
        pb.ImportSolutionsRequest(rows=rows, publish=False), metadata=ops, timeout=20
    )
    ids = [r.solution_id for r in first.results]
    # As stored before solution_external_ids existed: the mapping is missing, and so is the
    # marker that the backfill ran (it runs once per database).
    served.db.solution_external_ids.delete_many({"solution_id": {"$in": ids}})
    served.db.migrations.delete_one({"_id": "solution_external_ids"})
    served.app.store.ensure_indexes()
    served.app.store.ensure_indexes()  # idempotent
    mapped = served.db.solution_external_ids.find({"solution_id": {"$in": ids}})
    assert sorted((d["_id"], d["solution_id"]) for d in mapped) == sorted(
        (r.external_id, r.solution_id) for r in first.results
    )
    again = await served.stub.ImportSolutions(
        pb.ImportSolutionsRequest(rows=rows, publish=False), metadata=ops, timeout=20
    )
    assert [(r.outcome, r.solution_id) for r in again.results] == [
        (pb.IMPORT_OUTCOME_EXISTING, i) for i in ids
    ]


# -- authorization matrix ---------------------------------------------------------------------
# Codes and roles: see helpers.CODES and helpers.ROLES.
# The solution acted on belongs to organization A (verified); its state is set per case.
#        command          state         anon pub mem oth rev orv ops
MATRIX = [
    ("CreateSolution", None, "U D O D D D O"),
    ("UpdateSolution", "DRAFT", "N N O N D N O"),
    ("SubmitSolution", "DRAFT", "N N O N D N O"),
    ("StartSolutionReview", "SUBMITTED", "N N D N O N O"),
    ("ReviewSolution", "IN_REVIEW", "N N D N O N O"),
    ("PublishSolution", "APPROVED", "N N D N O N O"),
    ("ArchiveSolution", "PUBLISHED", "U D O D O D O"),
    ("ConfirmSolution", "PUBLISHED", "U D O D D D O"),
    ("GetSolution", "DRAFT", "N N O N O N O"),
    ("GetSolution", "PUBLISHED", "O O O O O O O"),
    ("ImportSolutions", None, "U D D D D D O"),
]


async def solution_in(served, auth, org: str, state: str | None) -> solution_pb2.Solution | None:
    """A solution of org driven to state by its member and a reviewer."""
    if state is None:
        return None
    member, reviewer = auth("mem", Role.MEMBER, org=org), auth("rev", Role.REVIEWER)
    stub = served.stub
    s = (
        await stub.CreateSolution(
            pb.CreateSolutionRequest(solution=solution_msg(org)), metadata=member, timeout=10
        )
    ).solution
    steps: list[Callable[[], Awaitable[Any]]] = [
        lambda: stub.SubmitSolution(pb.SubmitSolutionRequest(id=s.id), metadata=member, timeout=10),
        lambda: stub.StartSolutionReview(
            pb.StartSolutionReviewRequest(id=s.id), metadata=reviewer, timeout=10
        ),
        lambda: stub.ReviewSolution(
            pb.ReviewSolutionRequest(id=s.id, review=passing_review()),
            metadata=reviewer,
            timeout=10,
        ),
        lambda: stub.PublishSolution(
            pb.PublishSolutionRequest(id=s.id), metadata=reviewer, timeout=10
        ),
    ]
    order = ["DRAFT", "SUBMITTED", "IN_REVIEW", "APPROVED", "PUBLISHED"]
    for step in steps[: order.index(state)]:
        await step()
    return (
        await stub.GetSolution(
            pb.GetSolutionRequest(id=s.id), metadata=auth("ops", Role.OPERATOR), timeout=10
        )
    ).solution


def call(stub, command: str, org: str, s: solution_pb2.Solution | None):
    if command == "CreateSolution":
        return stub.CreateSolution(pb.CreateSolutionRequest(solution=solution_msg(org)))
    if command == "ImportSolutions":
        row = pb.ImportRow(external_id=f"m:{org}:{id(stub)}", solution=solution_msg(org))
        return stub.ImportSolutions(pb.ImportSolutionsRequest(rows=[row], dry_run=True))
    assert s is not None
    requests = {
        "UpdateSolution": lambda: pb.UpdateSolutionRequest(
            solution=solution_pb2.Solution(id=s.id, version=s.version, title="A better title"),
            update_mask=field_mask_pb2.FieldMask(paths=["title"]),
        ),
        "SubmitSolution": lambda: pb.SubmitSolutionRequest(id=s.id),
        "StartSolutionReview": lambda: pb.StartSolutionReviewRequest(id=s.id),
        "ReviewSolution": lambda: pb.ReviewSolutionRequest(id=s.id, review=passing_review()),
        "PublishSolution": lambda: pb.PublishSolutionRequest(id=s.id),
        "ArchiveSolution": lambda: pb.ArchiveSolutionRequest(id=s.id),
        "ConfirmSolution": lambda: pb.ConfirmSolutionRequest(id=s.id),
        "GetSolution": lambda: pb.GetSolutionRequest(id=s.id),
    }
    return getattr(stub, command)(requests[command]())


CASES = [
    (command, state, role, expected)
    for command, state, row in MATRIX
    for role, expected in zip(ROLES, row.split(), strict=True)
]


@pytest.mark.parametrize(
    ("command", "state", "role", "expected"),
    CASES,
    ids=[f"{c}-{s or 'new'}-{r}" for c, s, r, _ in CASES],
)
async def test_authorization_matrix(served, auth, command, state, role, expected):
    org_a, org_b = served.add_organization(), served.add_organization()
    s = await solution_in(served, auth, org_a, state)
    stub = served.stub
    metadata = metadata_for(role, org_a, org_b, auth)
    try:
        await call(as_caller(stub, metadata), command, org_a, s)
        code = grpc.StatusCode.OK
    except grpc.aio.AioRpcError as exc:
        code = exc.code()
    assert code == CODES[expected], f"{role} {command} on {state}: {code}"
