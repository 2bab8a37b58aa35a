"""The catalog demo data: deterministic, broad (every SDG, every region, every modality), owned
by the registration demo organizations, and valid by the catalog's own rules (no servers)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime

from ssg.catalog import demo, mapping
from ssg.catalog.domain.model import (
    CriterionScore,
    KnowledgeType,
    Modality,
    NeedStatus,
    PartnerRole,
    SolutionStatus,
)
from ssg.catalog.domain.validation import (
    validate_funding,
    validate_knowledge,
    validate_need,
    validate_scores,
    validate_solution,
)
from ssg.platform.reference.sdg import goal_of_target
from ssg.registration.domain.model import OrganizationStatus, Region

TODAY = date(2025, 6, 1)
DATA = demo.generate(today=TODAY)
ORGS = {o.key: o for o in DATA.organizations.organizations}


def knows(key: str) -> bool:
    return key in ORGS


def test_counts_and_unique_keys() -> None:
    assert len(DATA.solutions) >= 1500
    assert len(DATA.knowledge) >= 200
    assert len(DATA.needs) >= 150
    assert len(DATA.funding) >= 80
    keys = [s.key for s in DATA.solutions] + [k.key for k in DATA.knowledge]
    keys += [n.key for n in DATA.needs] + [f.key for f in DATA.funding]
    assert len(keys) == len(set(keys))
    titles = [s.content.title.casefold() for s in DATA.solutions]
    assert len(titles) == len(set(titles))


def test_every_sdg_and_region_and_modality_is_covered() -> None:
    by_sdg = Counter(s.content.sdgs[0] for s in DATA.solutions)
    assert set(by_sdg) == set(range(1, 18))
    assert min(by_sdg.values()) >= 80  # an equal share each
    regions = {r for s in DATA.solutions for r in s.content.regions}
    assert regions == {r.value for r in Region}
    owner_regions = {ORGS[s.organization_key].draft.headquarters_country for s in DATA.solutions}
    assert len(owner_regions) >= 60  # many countries, not a handful
    assert {s.content.modality for s in DATA.solutions} == {m.value for m in Modality}
    for sdg in range(1, 18):
        topics = {s.content.title for s in DATA.solutions if s.content.sdgs[0] == sdg}
        heads = {t.head for t in demo.TOPICS if t.sdgs[0] == sdg}
        assert len(heads) >= 4, sdg
        # Every practice of the goal is used somewhere among its solutions.
        used = {
            h for h in heads for s in DATA.solutions if h.lower()[5:25] in s.content.summary.lower()
        }
        assert used == heads, (sdg, heads - used)
        assert topics
    assert {k.content.type for k in DATA.knowledge} == {t.value for t in KnowledgeType}
    assert {s for k in DATA.knowledge for s in k.content.sdgs} >= set(range(1, 18))
    assert {s for n in DATA.needs for s in n.content.sdgs} >= set(range(1, 18))


def test_targets_are_real_and_belong_to_the_solutions_goals() -> None:
    for s in DATA.solutions:
        assert s.content.sdg_targets
        for code in s.content.sdg_targets:
            assert goal_of_target(code) in s.content.sdgs, (s.key, code)


def test_same_seed_same_data_other_seed_other_data() -> None:
    again = demo.generate(today=TODAY)
    assert again == DATA
    other = demo.generate(seed=demo.DEFAULT_SEED + 1, today=TODAY)
    assert [s.content.title for s in other.solutions] != [s.content.title for s in DATA.solutions]
    assert other.solutions[0].key != DATA.solutions[0].key


def test_every_record_passes_the_catalogs_validation() -> None:
    for s in DATA.solutions:
        assert validate_solution(s.content, knows) == s.content, s.key
        if s.review is not None:
            scores = [CriterionScore(c.value, n, text) for c, n, text in s.review.scores]
            validate_scores(scores, s.review.outcome.value, s.review.comment)
    for k in DATA.knowledge:
        validate_knowledge(k.content)
    for n in DATA.needs:
        validate_need(n.content)
        assert not n.content.deadline or date.fromisoformat(n.content.deadline) > TODAY
    for f in DATA.funding:
        validate_funding(f.content)
        assert f.content.deadline is not None
        assert f.content.deadline > datetime.combine(TODAY, datetime.min.time(), tzinfo=UTC)


def test_owners_and_partners_are_demo_organizations_with_sensible_roles() -> None:
    assert DATA.organization_keys() <= set(ORGS)
    for s in DATA.solutions:
        owner = ORGS[s.organization_key]
        if owner.target_status is not OrganizationStatus.VERIFIED:
            assert s.target_status is SolutionStatus.DRAFT  # cannot be submitted
        for partner in s.content.partners:
            # The catalog refuses references to rejected organizations.
            assert ORGS[partner.organization_id].target_status is not OrganizationStatus.REJECTED
        roles = [p.role for p in s.content.partners]
        assert roles[0] == PartnerRole.PROVIDER.value
        assert s.content.partners[0].organization_id == s.organization_key
        if s.content.modality == Modality.TRIANGULAR.value:
            assert len(s.content.implementing_countries) >= 2
    # Needs, knowledge and funding come from verified organizations (they publish or post).
    owners = [n.organization_key for n in DATA.needs] + [k.organization_key for k in DATA.knowledge]
    for key in owners + [f.organization_key for f in DATA.funding]:
        assert ORGS[key].target_status is OrganizationStatus.VERIFIED


def test_most_solutions_are_published_and_every_review_outcome_appears() -> None:
    statuses = Counter(s.target_status for s in DATA.solutions)
    assert statuses[SolutionStatus.PUBLISHED] >= 0.7 * len(DATA.solutions)
    for status in (
        SolutionStatus.DRAFT,
        SolutionStatus.SUBMITTED,
        SolutionStatus.IN_REVIEW,
        SolutionStatus.CHANGES_REQUESTED,
        SolutionStatus.REJECTED,
    ):
        assert statuses[status] > 0, status
    assert {n.target_status for n in DATA.needs} == set(NeedStatus)


def test_messages_resolve_organization_keys_to_ids() -> None:
    ids = {key: f"{n:032x}" for n, key in enumerate(ORGS)}
    s = DATA.solutions[0]
    message = demo.solution_message(s, ids)
    assert message.organization_id == ids[s.organization_key]
    read = mapping.solution_content(message)
    assert read == replace(
        s.content,
        partners=tuple(
            replace(p, organization_id=ids[p.organization_id]) for p in s.content.partners
        ),
    )
    assert demo.need_message(DATA.needs[0], ids).seeker_organization_id in ids.values()
    assert demo.knowledge_message(DATA.knowledge[0], ids).title == DATA.knowledge[0].content.title
    funding = demo.funding_message(DATA.funding[0], ids)
    assert mapping.funding_content(funding) == DATA.funding[0].content


def test_each_topic_names_real_targets_of_its_own_goals() -> None:
    for topic in demo.TOPICS:
        assert topic.targets, topic.head
        for code in topic.targets:
            assert goal_of_target(code) in topic.sdgs, (topic.head, code)
