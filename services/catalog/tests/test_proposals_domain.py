"""The proposal rules without servers: when a delivery creates, revises or leaves a draft, and
what a proposed draft records about where it came from."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ssg.catalog.domain import proposals as rules
from ssg.catalog.domain.model import (
    FundingContent,
    KnowledgeContent,
    SolutionContent,
    SolutionStatus,
    Source,
)
from ssg.catalog.domain.solutions import submit
from ssg.catalog.store.documents import index_fields
from ssg.platform.proposals import (
    Decision,
    InvalidProposal,
    Taken,
    advanced,
    decide,
    link_doc,
    link_from_doc,
    new_link,
    proposal,
    settled,
)

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
CONTENT = SolutionContent(title="Solar pumps", summary="Shared pumps")


def test_a_new_proposal_is_created_and_a_repeat_changes_nothing():
    p = proposal("solution", "pm-system", "SOL-1", 3)
    assert decide(None, 3, editable=False) is Decision.CREATE
    link = new_link(p, "rec-1", NOW)
    assert decide(link, 3, editable=True) is Decision.STALE
    assert decide(link, 2, editable=True) is Decision.STALE


def test_a_newer_revision_updates_a_draft_but_not_what_its_organization_moved_on():
    link = new_link(proposal("solution", "pm-system", "SOL-1", 1), "rec-1", NOW)
    assert decide(link, 2, editable=True) is Decision.UPDATE
    assert decide(link, 2, editable=False) is Decision.CLAIMED
    later = NOW + timedelta(minutes=1)
    updated = advanced(link, Decision.UPDATE, 2, later)
    assert (updated.revision, updated.updated_at, updated.ignored_revision) == (2, later, 0)
    claimed = advanced(updated, Decision.CLAIMED, 5, later)
    assert (claimed.revision, claimed.ignored_revision) == (2, 5)
    # An older ignored revision does not lower the record of the newest.
    assert advanced(claimed, Decision.CLAIMED, 4, later).ignored_revision == 5


def test_the_key_separates_kinds_and_producers_and_an_omitted_revision_is_one():
    a = proposal("solution", "pm-system", "X-1", 0)
    b = proposal("solution", "hr-roster", "X-1", 0)
    c = proposal("funding_opportunity", "pm-system", "X-1", 0)
    assert len({a.key, b.key, c.key}) == 3
    assert a.revision == 1 and a.submitter == "ingress:pm-system"


@pytest.mark.parametrize(
    ("producer", "external_id", "field"),
    [
        ("pm-system", "", "proposal.external_id"),
        ("pm-system", "has space", "proposal.external_id"),
        ("pm-system", "x" * 129, "proposal.external_id"),
        ("", "X-1", "submission.producer"),
    ],
)
def test_a_proposal_without_a_usable_name_is_refused_naming_the_field(producer, external_id, field):
    with pytest.raises(InvalidProposal, match=field):
        proposal("solution", producer, external_id, 1)


def test_links_survive_their_stored_form():
    link = advanced(
        new_link(proposal("solution", "pm", "S-1", 2), "rec", NOW), Decision.CLAIMED, 4, NOW
    )
    assert link_from_doc(link_doc(link)) == link
    assert link_doc(link)["_id"] == "solution:pm:S-1"


def test_a_proposed_solution_is_a_draft_recording_its_producer_and_external_id():
    p = proposal("solution", "pm-system", "SOL-9", 2)
    s = rules.draft_solution("id-1", p, "org-1", CONTENT, "africa", NOW)
    assert s.status is SolutionStatus.DRAFT and s.organization_id == "org-1"
    assert s.provenance.source is Source.INGRESS
    assert (s.provenance.producer, s.provenance.external_id) == ("pm-system", "SOL-9")
    assert s.provenance.submitted_by == "ingress:pm-system"
    # Proposal ids are unique per producer only: they stay out of the import id index.
    assert index_fields(s)["ext"] is None
    assert rules.still_proposed(s)
    assert not rules.still_proposed(submit(s, "member-1", NOW))


def test_revising_a_draft_replaces_its_content_and_an_identical_one_changes_nothing():
    p = proposal("solution", "pm-system", "SOL-9", 1)
    s = rules.draft_solution("id-1", p, "org-1", CONTENT, "africa", NOW)
    revised = rules.revise_solution(s, replace(CONTENT, title="Solar pumps v2"), NOW)
    assert revised is not None
    changed, names = revised
    assert changed.content.title == "Solar pumps v2" and changed.version == 2
    assert names == ("title",)
    assert rules.revise_solution(s, CONTENT, NOW) is None


def test_knowledge_and_funding_proposals_are_drafts_too():
    p = proposal("knowledge_product", "pm", "K-1", 1)
    k = rules.draft_knowledge("k", p, "org-1", KnowledgeContent(title="A brief"), "africa", NOW)
    f = rules.draft_funding("f", p, "org-1", FundingContent(title="A call"), "africa", NOW)
    assert str(k.status) == str(f.status) == "DRAFT"
    assert k.provenance.producer == f.provenance.producer == "pm"
    assert (k.publishing_organization_id, f.funder_organization_id) == ("org-1", "org-1")
    revised = rules.revise_funding(f, FundingContent(title="A new call"), NOW)
    assert revised is not None and revised[0].version == 2


def test_settling_writes_nothing_for_a_repeat_and_records_a_claimed_revision():
    link = new_link(proposal("solution", "pm", "S-1", 2), "rec", NOW)
    saved: list = []
    assert settled(None, Decision.CREATE, 1, NOW, saved.append) is None
    assert settled(link, Decision.UPDATE, 3, NOW, saved.append) is None
    assert settled(link, Decision.STALE, 2, NOW, saved.append) == Taken(Decision.STALE, "rec")
    assert saved == []
    assert settled(link, Decision.CLAIMED, 5, NOW, saved.append) == Taken(Decision.CLAIMED, "rec")
    assert [s.ignored_revision for s in saved] == [5]
