"""Experts behind matched providers: scoring with reasons, ranking, visibility (no servers)."""

from __future__ import annotations

import pytest

from ssg.contracts.common.v1 import sdg_pb2
from ssg.contracts.registration.v1 import expert_pb2
from ssg.recommendation.domain.experts import Expert, rank_experts, score_expert, visible
from ssg.recommendation.domain.matching import NeedSpec
from ssg.recommendation.domain.model import Organization
from ssg.recommendation.events.registration import expert

NEED = NeedSpec(
    "Broken boreholes",
    "Our hand pumps and boreholes break down; we need borehole repair and water committees.",
    sdgs=(6, 3),
    country="TCD",
)
SEEKER = Organization("seeker", languages=("fr",))


def test_every_part_is_a_reason_and_the_reasons_add_up():
    e = Expert(
        "e1",
        "Awa",
        "prov",
        expertise=("borehole repair", "solar mini-grids"),
        sdgs=(6,),
        languages=("fr", "en"),
        countries=("TCD", "NER"),
    )
    scored = score_expert(NEED, SEEKER, e)
    codes = {r.code: r for r in scored.reasons}
    assert set(codes) == {"expert_sdgs", "expertise", "expert_country", "expert_language"}
    assert codes["expertise"].text == "expert in 'borehole repair', which your need mentions"
    assert codes["expert_sdgs"].weight == pytest.approx(0.40 / 2)  # one of the need's two SDGs
    assert codes["expert_country"].text == "has worked in TCD"
    assert codes["expert_language"].ref == "fr"
    assert scored.score == pytest.approx(sum(r.weight for r in scored.reasons))
    assert 0 < scored.score <= 1


def test_the_best_fitting_experts_come_first_and_at_most_three():
    far = Expert("e2", "Bo", "prov", expertise=("tax policy",), sdgs=(17,))
    close = Expert("e3", "Cy", "prov", expertise=("water committees",), sdgs=(6, 3))
    middle = Expert("e4", "Di", "prov", sdgs=(3,))
    extra = Expert("e5", "Ed", "prov")
    ranked = rank_experts(NEED, SEEKER, [far, middle, close, extra])
    assert [s.expert.id for s in ranked] == ["e3", "e4", "e2"]
    assert ranked[-1].score == 0 and ranked[-1].reasons == ()


def test_members_only_profiles_are_shown_to_signed_in_callers_only():
    public = Expert("p", "P", public=True)
    members = Expert("m", "M", public=False)
    assert visible([public, members], signed_in=False) == [public]
    assert visible([public, members], signed_in=True) == [public, members]


def test_hidden_profiles_are_not_kept_from_events():
    message = expert_pb2.Expert(
        id="x1",
        display_name="Xi",
        expertise_areas=["drip irrigation"],
        sdgs=[sdg_pb2.SDG_ZERO_HUNGER],
        affiliation_organization_id="prov",
        visibility=expert_pb2.EXPERT_VISIBILITY_MEMBERS_ONLY,
    )
    kept = expert(message, 3)
    assert kept is not None and not kept.public and kept.sdgs == (2,) and kept.version == 3
    message.visibility = expert_pb2.EXPERT_VISIBILITY_HIDDEN
    assert expert(message, 4) is None
