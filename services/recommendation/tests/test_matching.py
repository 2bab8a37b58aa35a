"""MatchNeed scoring with reasons, and the match lifecycle with its authorization (no servers)."""

from __future__ import annotations

import pytest

from ssg.platform.auth.tokens import Identity, Role
from ssg.platform.errors import FailedPrecondition, PermissionDenied, ValidationError
from ssg.recommendation.domain import matches
from ssg.recommendation.domain.context import groups_of, shared_groups
from ssg.recommendation.domain.index import ItemIndex
from ssg.recommendation.domain.matches import MatchStatus
from ssg.recommendation.domain.matching import Matcher, NeedSpec
from ssg.recommendation.domain.model import ItemKind, Organization

from .world import NOW, item

SOLUTIONS = [
    item(
        "s-water",
        "Village water committees",
        "villages run boreholes and water committees collect tariffs for repairs",
        (6,),
        organization_id="o-prov",
        countries=("NER", "MLI"),
        targets=("6.1", "6.b"),
        language="fr",
        regions=("AFRICA",),
    ),
    item(
        "s-water2",
        "Borehole repair network",
        "mechanics repair boreholes and hand pumps for village water",
        (6,),
        organization_id="o-unverified",
        countries=("BRA",),
        regions=("LATIN_AMERICA_CARIBBEAN",),
    ),
    item(
        "s-health",
        "Health insurance for farmers",
        "micro health insurance for farmers and cooperatives",
        (3,),
        organization_id="o-prov",
    ),
    item(
        "k-water",
        "Water report",
        "boreholes and water committees report",
        (6,),
        kind=ItemKind.KNOWLEDGE_PRODUCT,
    ),
    item(
        "s-own",
        "Our own borehole project",
        "boreholes water committees village repairs",
        (6,),
        organization_id="o-seeker",
    ),
]
ORGS = {
    "o-prov": Organization(
        "o-prov", "Sahel Water", verified=True, regions=("AFRICA",), languages=("fr",)
    ),
    "o-unverified": Organization("o-unverified", "Pump Co", verified=False),
    "o-seeker": Organization(
        "o-seeker", "Chad Villages", regions=("AFRICA",), languages=("fr", "ar"), country="TCD"
    ),
}
NEED = NeedSpec(
    "Broken boreholes in our villages",
    "our village boreholes break and nobody pays for repairs; we need water committees",
    sdgs=(6,),
    targets=("6.1",),
    country="TCD",
    seeker_organization_id="o-seeker",
)


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher(ItemIndex(SOLUTIONS))


def test_development_groups_come_from_the_un_lists():
    assert groups_of("TCD") == {"LDC", "LLDC"}
    assert groups_of("JAM") == {"SIDS"}
    assert groups_of("BRA") == frozenset()
    assert shared_groups("TCD", ("NER", "BRA")) == {"LDC", "LLDC"}
    assert shared_groups("BRA", ("NER",)) == frozenset()


def test_the_closest_verified_solution_ranks_first_with_its_reasons(matcher):
    results = matcher.match(NEED, ORGS, {}, 10)
    ids = [m.scored.item.id for m in results]
    assert ids[0] == "s-water"
    # Only solutions, never the seeker's own.
    assert "k-water" not in ids and "s-own" not in ids
    codes = {r.code for r in results[0].scored.reasons}
    assert {
        "text_similarity",
        "sdg_overlap",
        "target_overlap",
        "same_region",
        "shared_language",
        "development_context",
        "verified_provider",
    } <= codes
    dev = next(r for r in results[0].scored.reasons if r.code == "development_context")
    assert dev.ref == "LDC,LLDC"
    assert results[0].provider.name == "Sahel Water"
    for m in results:
        assert 0 < m.scored.score <= 1
        assert m.scored.score == pytest.approx(sum(r.weight for r in m.scored.reasons))


def test_verification_and_track_record_raise_a_provider(matcher):
    unverified = {**ORGS, "o-unverified": Organization("o-unverified", verified=False)}
    verified = {**ORGS, "o-unverified": Organization("o-unverified", verified=True)}
    base = _score(matcher, unverified, {}, "s-water2")
    assert _score(matcher, verified, {}, "s-water2") == pytest.approx(base + 0.10)
    with_record = _score(matcher, unverified, {"o-unverified": 3}, "s-water2")
    assert with_record == pytest.approx(base + 0.05)
    # More than the full track record counts no more.
    assert _score(matcher, unverified, {"o-unverified": 9}, "s-water2") == pytest.approx(
        with_record
    )


def _score(matcher, orgs, track, solution_id):
    return next(
        m.scored.score
        for m in matcher.match(NEED, orgs, track, 10)
        if m.scored.item.id == solution_id
    )


def test_min_score_drops_weak_matches(matcher):
    strong = matcher.match(NEED, ORGS, {}, 10, min_score=0.5)
    assert [m.scored.item.id for m in strong] == ["s-water"]


def test_archived_solutions_are_not_matched():
    index = ItemIndex(
        [
            *SOLUTIONS[1:],
            item("s-gone", "Village water committees", "water committees", (6,), active=False),
        ]
    )
    ids = [m.scored.item.id for m in Matcher(index).match(NEED, ORGS, {}, 10)]
    assert "s-gone" not in ids


SEEKER = Identity("sam", frozenset({Role.MEMBER}), organization_id="o-seeker")
PROVIDER = Identity("pia", frozenset({Role.MEMBER}), organization_id="o-prov")
STRANGER = Identity("tom", frozenset({Role.MEMBER}), organization_id="o-other")
OPERATOR = Identity("op", frozenset({Role.OPERATOR}))


def proposed() -> matches.Match:
    return matches.propose("n1", "s1", "o-seeker", "o-prov", 0.7, (), "global", NOW)


def test_both_sides_accept_then_agree_implement_and_record_results():
    m = matches.accept(proposed(), SEEKER, NOW)
    assert m.status is MatchStatus.SEEKER_ACCEPTED
    m = matches.accept(m, PROVIDER, NOW)
    assert m.status is MatchStatus.ACCEPTED and m.version == 3
    m = matches.advance(m, SEEKER, MatchStatus.AGREED, "MoU signed", NOW)
    m = matches.advance(m, PROVIDER, MatchStatus.IMPLEMENTED, "", NOW)
    m = matches.advance(m, OPERATOR, MatchStatus.RESULTS_RECORDED, "40 boreholes repaired", NOW)
    assert m.status is MatchStatus.RESULTS_RECORDED
    assert [s.status for s in m.history] == [
        MatchStatus.PROPOSED,
        MatchStatus.SEEKER_ACCEPTED,
        MatchStatus.ACCEPTED,
        MatchStatus.AGREED,
        MatchStatus.IMPLEMENTED,
        MatchStatus.RESULTS_RECORDED,
    ]
    assert m.history[-1].note == "40 boreholes repaired"


def test_provider_may_accept_first():
    m = matches.accept(proposed(), PROVIDER, NOW)
    assert m.status is MatchStatus.PROVIDER_ACCEPTED
    assert matches.accept(m, SEEKER, NOW).status is MatchStatus.ACCEPTED


def test_a_third_party_cannot_act_on_a_match():
    for act in (
        lambda: matches.accept(proposed(), STRANGER, NOW),
        lambda: matches.decline(proposed(), STRANGER, "no", NOW),
        lambda: matches.advance(proposed(), STRANGER, MatchStatus.AGREED, "", NOW),
        lambda: matches.accept(proposed(), Identity("anonymous", authenticated=False), NOW),
    ):
        with pytest.raises(PermissionDenied):
            act()
    with pytest.raises(PermissionDenied):
        matches.accept(proposed(), OPERATOR, NOW)


def test_steps_out_of_order_are_refused():
    with pytest.raises(FailedPrecondition):
        matches.accept(matches.accept(proposed(), SEEKER, NOW), SEEKER, NOW)
    with pytest.raises(FailedPrecondition):
        matches.advance(proposed(), SEEKER, MatchStatus.AGREED, "", NOW)
    with pytest.raises(ValidationError):
        matches.advance(proposed(), SEEKER, MatchStatus.DECLINED, "", NOW)


def test_decline_needs_a_reason_and_ends_the_match():
    with pytest.raises(ValidationError) as err:
        matches.decline(proposed(), PROVIDER, "  ", NOW)
    assert err.value.violations[0].field == "reason"
    m = matches.decline(proposed(), PROVIDER, "no capacity this year", NOW)
    assert m.status is MatchStatus.DECLINED and m.history[-1].note == "no capacity this year"
    with pytest.raises(FailedPrecondition):
        matches.accept(m, SEEKER, NOW)


def test_results_need_a_note():
    m = proposed()
    for who in (SEEKER, PROVIDER):
        m = matches.accept(m, who, NOW)
    m = matches.advance(m, SEEKER, MatchStatus.AGREED, "", NOW)
    m = matches.advance(m, SEEKER, MatchStatus.IMPLEMENTED, "", NOW)
    with pytest.raises(ValidationError):
        matches.advance(m, SEEKER, MatchStatus.RESULTS_RECORDED, "", NOW)


def test_one_pair_has_one_match_id():
    assert matches.match_id("n1", "s1") == proposed().id != matches.match_id("n1", "s2")


def test_only_members_of_the_organization_and_operators_list_its_matches():
    matches.check_lister(SEEKER, "o-seeker")
    matches.check_lister(OPERATOR, "o-seeker")
    for who in (STRANGER, Identity("anonymous", authenticated=False), PROVIDER):
        with pytest.raises(PermissionDenied):
            matches.check_lister(who, "o-seeker")
