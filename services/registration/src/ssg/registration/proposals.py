"""The intake of proposed organizations and expert profiles from the ingress bridge (ADR 0023):
each goes through registration's own validation and rules and is written, with its audit entry,
its event (outbox) and its proposal link, in one transaction.

A proposed organization is registered PENDING with no members and goes through verification;
the duplicate guard runs as for any registration and its candidates are stored on the
organization, where reviewers see them (never merged automatically). Synchronous: the event
consumer runs handlers in a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ssg.contracts.registration.v1 import events_pb2 as ev
from ssg.platform.clock import new_id, utc_now
from ssg.platform.errors import ValidationError
from ssg.platform.proposals import (
    Decision,
    InvalidProposal,
    Proposal,
    Taken,
    advanced,
    decide,
    new_link,
    settled,
)
from ssg.registration.domain import experts as expert_rules
from ssg.registration.domain import organizations as org_rules
from ssg.registration.domain import proposals as rules
from ssg.registration.domain.duplicates import (
    POOL_LIMIT,
    find_duplicates,
    query_keys,
    website_domain,
)
from ssg.registration.domain.model import ExpertProfile, OrganizationProfile
from ssg.registration.domain.validation import (
    ExpertDraft,
    OrganizationDraft,
    validate_expert,
    validate_organization,
)
from ssg.registration.events.publisher import Event, EventFactory
from ssg.registration.store.ports import Store, Transaction

PARENT_FIELD = "organization.parent_organization_id"
AFFILIATION_FIELD = "expert.affiliation_organization_id"


def _checked_organization(draft: OrganizationDraft) -> OrganizationProfile:
    try:
        return validate_organization(draft)
    except ValidationError as exc:
        raise InvalidProposal("; ".join(str(f) for f in exc.violations)) from None


def _checked_expert(draft: ExpertDraft) -> ExpertProfile:
    try:
        return validate_expert(draft)
    except ValidationError as exc:
        raise InvalidProposal("; ".join(str(f) for f in exc.violations)) from None


class ProposalIntake:
    """Turns proposals into pending organizations and expert profiles; safe to repeat."""

    def __init__(
        self,
        store: Store,
        events: EventFactory,
        *,
        instance: str,
        clock: Callable[[], datetime] = utc_now,
        ids: Callable[[], str] = new_id,
    ) -> None:
        self.store = store
        self.events = events
        self.instance = instance
        self.clock = clock
        self.ids = ids

    @staticmethod
    def _emit(tx: Transaction, event: Event) -> None:
        tx.add_event(event.topic, event.envelope)

    def take_organization(self, p: Proposal, draft: OrganizationDraft) -> Taken:
        """Register, revise or leave the organization p names; InvalidProposal when
        registration's rules refuse it."""
        profile = _checked_organization(draft)
        actor = rules.acting_for(p)

        def unit(tx: Transaction) -> Taken:
            link = tx.get_proposal_link(p.key)
            org = tx.get_organization(link.entity_id) if link is not None else None
            editable = org is not None and rules.organization_still_proposed(org)
            decision = decide(link, p.revision, editable)
            now = self.clock()
            done = settled(link, decision, p.revision, now, tx.save_proposal_link)
            if done is not None:
                return done
            self._check_parent(tx, profile, link.entity_id if link else "")
            if decision is Decision.CREATE:
                pool = tx.duplicate_pool(
                    profile.headquarters_country,
                    query_keys(profile),
                    website_domain(profile.website),
                    POOL_LIMIT,
                )
                duplicates = find_duplicates(profile, pool)
                change = org_rules.register(
                    self.ids(), profile, self.instance, actor, now, duplicates
                )
                created = change.organization
                tx.insert_organization(created)
                tx.add_audit(change.audit)
                self._emit(tx, self.events.organization(ev.OrganizationRegistered, created))
                tx.insert_proposal_link(new_link(p, created.id, now))
                return Taken(decision, created.id, True)
            assert link is not None and org is not None
            outcome = org_rules.update(org, profile, actor, now)
            if outcome is not None:
                change, names = outcome
                tx.save_organization(change.organization, org.version)
                tx.add_audit(change.audit)
                self._emit(tx, self.events.organization_updated(change.organization, names))
            tx.save_proposal_link(advanced(link, decision, p.revision, now))
            return Taken(decision, org.id, outcome is not None)

        return self.store.atomically(unit)

    @staticmethod
    def _check_parent(tx: Transaction, profile: OrganizationProfile, own_id: str) -> None:
        """A declared parent must exist (a producer is nobody's member, so it cannot nest a
        proposal under an organization more deeply than naming one that exists)."""
        parent_id = profile.parent_organization_id
        if not parent_id:
            return
        if parent_id == own_id:
            raise InvalidProposal(f"{PARENT_FIELD}: must not be the organization itself")
        if tx.get_organization(parent_id) is None:
            raise InvalidProposal(f"{PARENT_FIELD}: no organization {parent_id}")

    def take_expert(self, p: Proposal, draft: ExpertDraft) -> Taken:
        """Create, revise or leave the expert profile p names; InvalidProposal when
        registration's rules refuse it."""
        profile = _checked_expert(draft)

        def unit(tx: Transaction) -> Taken:
            link = tx.get_proposal_link(p.key)
            expert = tx.get_expert(link.entity_id) if link is not None else None
            editable = expert is not None and rules.expert_still_proposed(expert, p)
            decision = decide(link, p.revision, editable)
            now = self.clock()
            done = settled(link, decision, p.revision, now, tx.save_proposal_link)
            if done is not None:
                return done
            org_id = profile.affiliation_organization_id
            if org_id and tx.get_organization(org_id) is None:
                raise InvalidProposal(f"{AFFILIATION_FIELD}: no organization {org_id}")
            if decision is Decision.CREATE:
                created = expert_rules.register(
                    self.ids(), profile, self.instance, rules.acting_for(p), now
                )
                tx.insert_expert(created)
                self._emit(tx, self.events.expert_registered(created))
                tx.insert_proposal_link(new_link(p, created.id, now))
                return Taken(decision, created.id, True)
            assert link is not None and expert is not None
            updated = expert_rules.update(expert, profile, now)
            if updated is not None:
                tx.save_expert(updated, expert.version)
                self._emit(tx, self.events.expert_updated(updated))
            tx.save_proposal_link(advanced(link, decision, p.revision, now))
            return Taken(decision, expert.id, updated is not None)

        return self.store.atomically(unit)
