"""Events to index actions: what is found, what is hidden, what is refused (no servers)."""

from __future__ import annotations

import pytest

from ssg.contracts.catalog.v1 import events_pb2 as cat
from ssg.contracts.catalog.v1 import funding_pb2, need_pb2, solution_pb2
from ssg.contracts.diagnostics.v1.diagnostics_pb2 import EchoRequest
from ssg.contracts.registration.v1 import events_pb2 as reg
from ssg.contracts.registration.v1 import expert_pb2, organization_pb2
from ssg.search.domain.documents import (
    INDEXED_EVENT_TYPES,
    EntityType,
    Hide,
    Provider,
    UnindexableEvent,
    Upsert,
    action_for,
    provider_ids,
    tombstone,
    with_provider,
)

from . import events as ev


def test_a_published_solution_becomes_a_document_with_its_facets():
    s = ev.solution("s1", organization_id="o1")
    action = action_for(ev.solution_event(s, 4))
    assert isinstance(action, Upsert)
    assert (action.entity_type, action.id, action.version) == (EntityType.SOLUTION, "s1", 4)
    doc = action.document
    assert doc["title"] == s.title
    assert "Village committees" in doc["body"]
    assert doc["sdgs"] == ["6", "7"]
    assert doc["regions"] == ["AFRICA"]
    assert doc["countries"] == ["KEN"]
    assert doc["modalities"] == ["SOUTH_SOUTH"]
    assert doc["languages"] == ["en"]
    assert doc["year"] == 2021
    assert doc["organization_id"] == "o1"
    assert doc["published_at"].startswith("2026-11-01")
    assert doc["reviewed_at"] == doc["published_at"]
    assert doc["hidden"] is False
    assert doc["suggest"] == {"input": [s.title]}


def test_archived_solution_and_any_unpublished_status_are_hidden():
    s = ev.solution("s1")
    assert action_for(ev.solution_event(s, 5, cat.SolutionArchived)) == Hide(
        EntityType.SOLUTION, "s1", 5
    )
    draft = ev.solution("s2", status=solution_pb2.SOLUTION_STATUS_ARCHIVED)
    assert isinstance(action_for(ev.solution_event(draft, 2, cat.SolutionUpdated)), Hide)


def test_only_verified_organizations_are_found():
    verified = action_for(ev.org_event(ev.organization("o1"), 3))
    assert isinstance(verified, Upsert)
    assert verified.document["verified_provider"] is True
    assert verified.document["organization_types"] == ["NGO"]
    assert verified.document["countries"] == ["KEN", "UGA"]
    assert verified.document["suggest"] == {"input": ["Lakeside Water Alliance", "LWA"]}
    for status, kind in [
        (organization_pb2.ORGANIZATION_STATUS_PENDING, reg.OrganizationRegistered),
        (organization_pb2.ORGANIZATION_STATUS_SUSPENDED, reg.OrganizationSuspended),
        (organization_pb2.ORGANIZATION_STATUS_REJECTED, reg.OrganizationRejected),
        (organization_pb2.ORGANIZATION_STATUS_MERGED, reg.OrganizationMerged),
    ]:
        action = action_for(ev.org_event(ev.organization("o1", status=status), 4, kind))
        assert action == Hide(EntityType.ORGANIZATION, "o1", 4)


def test_only_public_experts_are_found_and_erasure_hides():
    public = action_for(ev.expert_event(ev.expert("e1"), 1))
    assert isinstance(public, Upsert)
    assert public.document["title"] == "Nadia Osei"
    members = ev.expert("e1", expert_pb2.EXPERT_VISIBILITY_MEMBERS_ONLY)
    assert action_for(ev.expert_event(members, 2)) == Hide(EntityType.EXPERT, "e1", 2)
    erased = ev.envelope("registration", "e1", 3, reg.ExpertErased(expert_id="e1"))
    assert action_for(erased) == Hide(EntityType.EXPERT, "e1", 3)


def test_needs_and_funding_are_found_while_open():
    n = ev.need("n1")
    posted = action_for(ev.catalog_event(cat.NeedPosted(need=n), "n1", 1))
    assert isinstance(posted, Upsert)
    assert posted.document["countries"] == ["NER"]
    assert posted.document["tags"] == "technical assistance"
    matched = ev.need("n1", status=need_pb2.NEED_STATUS_MATCHED)
    assert isinstance(action_for(ev.catalog_event(cat.NeedUpdated(need=matched), "n1", 2)), Hide)
    assert isinstance(action_for(ev.catalog_event(cat.NeedClosed(need=n), "n1", 3)), Hide)
    f = ev.funding("f1")
    opened = action_for(ev.catalog_event(cat.FundingPublished(funding_opportunity=f), "f1", 1))
    assert isinstance(opened, Upsert)
    assert opened.document["organization_types"] == ["NGO"]
    closed = ev.funding("f1", funding_pb2.FUNDING_STATUS_CLOSED)
    assert isinstance(
        action_for(ev.catalog_event(cat.FundingClosed(funding_opportunity=closed), "f1", 2)), Hide
    )


def test_knowledge_products_keep_their_year_and_language():
    k = ev.knowledge("k1")
    action = action_for(
        ev.catalog_event(cat.KnowledgeProductPublished(knowledge_product=k), "k1", 1)
    )
    assert isinstance(action, Upsert)
    assert (action.document["year"], action.document["languages"]) == (2023, ["es"])
    assert "toolkit" in action.document["tags"]


def test_events_without_content_are_not_indexed():
    submitted = ev.catalog_event(cat.SolutionSubmitted(solution_id="s1"), "s1", 2)
    assert action_for(submitted) is None
    assert "catalog.SolutionSubmitted" not in INDEXED_EVENT_TYPES
    assert "catalog.SolutionPublished" in INDEXED_EVENT_TYPES


def test_unusable_events_are_refused_with_a_reason():
    wrong_payload = ev.envelope("catalog", "s1", 1, EchoRequest(message="x"))
    wrong_payload.event_type = "catalog.SolutionPublished"
    with pytest.raises(UnindexableEvent, match=r"expected ssg\.catalog\.v1\.SolutionPublished"):
        action_for(wrong_payload)
    other_id = ev.solution_event(ev.solution("s1"), 1)
    other_id.aggregate_id = "s2"
    with pytest.raises(UnindexableEvent, match="not the aggregate id"):
        action_for(other_id)
    no_id = ev.catalog_event(cat.SolutionPublished(solution=ev.solution("")), "x", 1)
    with pytest.raises(UnindexableEvent, match="without an entity id"):
        action_for(no_id)


def test_provider_state_is_copied_onto_content():
    s = action_for(ev.solution_event(ev.solution("s1", organization_id="o1"), 1))
    n = action_for(ev.catalog_event(cat.NeedPosted(need=ev.need("n1")), "n1", 1))
    assert s is not None and n is not None
    assert provider_ids([s, Hide(EntityType.SOLUTION, "x", 1)]) == {"o1"}
    providers = {
        "o1": Provider(verified=True, type="NGO", regions=("ASIA_PACIFIC",)),
    }
    enriched = with_provider(s, providers)
    assert isinstance(enriched, Upsert)
    assert enriched.document["verified_provider"] is True
    assert enriched.document["organization_types"] == ["NGO"]
    # The solution's own regions win over its provider's.
    assert enriched.document["regions"] == ["AFRICA"]
    assert "verified_provider" not in s.document  # type: ignore[union-attr]
    # Unknown provider: unchanged.
    assert with_provider(n, providers) is n


def test_a_tombstone_holds_no_content():
    assert tombstone(EntityType.EXPERT, "e1") == {
        "entity_type": "expert",
        "id": "e1",
        "hidden": True,
    }
