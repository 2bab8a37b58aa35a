"""The rules of proposed organizations and experts without servers: who they are recorded
under, and until when a newer revision may change them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from ssg.platform.proposals import Decision, decide, new_link, proposal
from ssg.registration.domain import experts as expert_rules
from ssg.registration.domain import organizations as org_rules
from ssg.registration.domain import proposals as rules
from ssg.registration.domain.model import (
    ExpertProfile,
    ExpertVisibility,
    OrganizationProfile,
    OrganizationStatus,
    OrganizationType,
)

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
P = proposal("organization", "partner-platform", "ORG-1", 1)
PROFILE = OrganizationProfile("Lake Basin Water Network", OrganizationType.NGO, "KEN")


def test_a_proposed_organization_is_pending_and_audited_under_its_producer():
    change = org_rules.register("org-1", PROFILE, "africa", rules.acting_for(P), NOW)
    org = change.organization
    assert org.status is OrganizationStatus.PENDING
    assert change.audit.actor == "ingress:partner-platform"
    assert rules.organization_still_proposed(org)


def test_a_reviewers_decision_ends_what_newer_revisions_may_change():
    org = org_rules.register("org-1", PROFILE, "africa", rules.acting_for(P), NOW).organization
    link = new_link(P, org.id, NOW)
    assert decide(link, 2, rules.organization_still_proposed(org)) is Decision.UPDATE
    for status in (OrganizationStatus.VERIFIED, OrganizationStatus.REJECTED):
        decided = replace(org, status=status)
        assert decide(link, 2, rules.organization_still_proposed(decided)) is Decision.CLAIMED


def test_a_proposed_expert_is_owned_by_its_producer_while_it_owns_it():
    e = proposal("expert", "hr-roster", "EXP-1", 1)
    profile = ExpertProfile("Amina Odhiambo", ExpertVisibility.PUBLIC)
    expert = expert_rules.register("x-1", profile, "africa", rules.acting_for(e), NOW)
    assert expert.owner == "ingress:hr-roster"
    assert rules.expert_still_proposed(expert, e)
    other = proposal("expert", "another-roster", "EXP-1", 1)
    assert not rules.expert_still_proposed(expert, other)
    assert not rules.expert_still_proposed(replace(expert, owner="person-7"), e)
