"""Builders shared by the catalog tests."""

from __future__ import annotations

from ssg.contracts.catalog.v1 import review_pb2, solution_pb2
from ssg.contracts.common.v1 import geography_pb2, sdg_pb2


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
