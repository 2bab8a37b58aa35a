"""Builders shared by the catalog tests."""

from __future__ import annotations

from typing import Any

import grpc

from ssg.contracts.catalog.v1 import review_pb2, solution_pb2
from ssg.contracts.common.v1 import geography_pb2, sdg_pb2
from ssg.contracts.registration.v1 import organization_pb2
from ssg.platform.auth.tokens import Role
from ssg.platform.events.envelope import Origin, build_envelope

# The callers of the authorization matrices, and what each letter of a matrix row expects.
# N = NOT_FOUND: a caller who may not know the record exists is told nothing more.
ROLES = ("anonymous", "public", "member", "other_member", "reviewer", "other_reviewer", "operator")
CODES = {
    "O": grpc.StatusCode.OK,
    "U": grpc.StatusCode.UNAUTHENTICATED,
    "D": grpc.StatusCode.PERMISSION_DENIED,
    "N": grpc.StatusCode.NOT_FOUND,
}


def metadata_for(role: str, org_a: str, org_b: str, auth) -> Any:
    """Call metadata of a matrix role; "member" acts for org_a, "other_member" for org_b."""
    return {
        "anonymous": (),
        "public": auth("pat"),
        "member": auth("mem", Role.MEMBER, org=org_a),
        "other_member": auth("oth", Role.MEMBER, org=org_b),
        "reviewer": auth("rev", Role.REVIEWER),
        "other_reviewer": auth("rev2", Role.REVIEWER, instance="asia-pacific"),
        "operator": auth("ops", Role.OPERATOR),
    }[role]


def as_caller(stub, metadata) -> Any:
    """The stub with every call made with metadata (and a deadline)."""

    class Bound:
        def __getattr__(self, name):
            method = getattr(stub, name)
            return lambda request: method(request, metadata=metadata, timeout=10)

    return Bound()


def solution_msg(
    org_id: str, title: str = "Solar pumps for smallholder irrigation", **fields
) -> solution_pb2.Solution:
    """A valid Solution message of org_id; fields override."""
    msg = solution_pb2.Solution(
        organization_id=org_id,
        title=title,
        summary="Farmers share solar pumps and water schedules across three districts.",
        approach="Cooperatives own the pumps; a rota sets who irrigates when.",
        sdgs=[sdg_pb2.SDG_CLEAN_WATER_AND_SANITATION, sdg_pb2.SDG_AFFORDABLE_AND_CLEAN_ENERGY],
        sdg_targets=[sdg_pb2.SdgTarget(code="6.4")],
        implementing_countries=["KEN"],
        beneficiary_countries=["UGA"],
        regions=[geography_pb2.REGION_AFRICA],
        modality=solution_pb2.COOPERATION_MODALITY_SOUTH_SOUTH,
        period=solution_pb2.Period(start_date="2020-01-01", end_date="2022-06-30"),
        language="en",
    )
    for name, value in fields.items():
        if isinstance(value, list):
            field = getattr(msg, name)
            del field[:]
            field.extend(value)
        elif hasattr(value, "CopyFrom"):
            getattr(msg, name).CopyFrom(value)
        else:
            setattr(msg, name, value)
    return msg


def passing_review(
    outcome: review_pb2.ReviewOutcome.ValueType = review_pb2.REVIEW_OUTCOME_APPROVE, score: int = 4
) -> review_pb2.Review:
    """A complete checklist with the same score everywhere."""
    return review_pb2.Review(
        scores=[
            review_pb2.CriterionScore(criterion=c, score=score, comment="checked")
            for c in review_pb2.ReviewCriterion.values()
            if c
        ],
        outcome=outcome,
    )


REGISTRATION = Origin("registration", "africa", "test-registration")


def organization_event(
    kind, org_id: str, status: organization_pb2.OrganizationStatus.ValueType, version: int, **fields
):
    """A registration envelope of kind carrying the organization's full state."""
    org = organization_pb2.Organization(
        id=org_id,
        name=f"Org {org_id[:6]}",
        status=status,
        instance="africa",
        version=version,
        **fields,
    )
    return build_envelope(
        REGISTRATION,
        f"registration.{kind.DESCRIPTOR.name}",
        org_id,
        version,
        kind(organization=org),
    )
