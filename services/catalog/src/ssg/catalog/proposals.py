"""The intake of proposed records: a proposal from the ingress bridge becomes a DRAFT of the
organization it names, through the catalog's own validation, in one transaction with its
proposal link (ADR 0022).

Synchronous: the event consumer runs handlers in a worker thread. Drafts are not public, so
writing one publishes no event (as CreateSolution does not); the organization's submit, the
reviewers' decisions and publication go through ``CatalogService`` and its outbox as usual.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar, cast

from ssg.catalog.domain import proposals as rules
from ssg.catalog.domain import validation as check
from ssg.catalog.domain.model import FundingContent, KnowledgeContent, SolutionContent
from ssg.catalog.domain.organizations import is_known, resolve
from ssg.catalog.store.documents import FUNDING, KNOWLEDGE, SOLUTIONS, Kind
from ssg.catalog.store.ports import Store, Transaction
from ssg.platform.clock import new_id, utc_now
from ssg.platform.errors import ValidationError, Violations
from ssg.platform.proposals import (
    Decision,
    InvalidProposal,
    Proposal,
    Taken,
    UnknownReference,
    advanced,
    decide,
    new_link,
    settled,
)

T = TypeVar("T")
C = TypeVar("C")
Knows = Callable[[str], bool]


@dataclass(frozen=True)
class ProposalType(Generic[T, C]):
    """How one kind of proposed record is checked, drafted and revised."""

    kind: Kind[T]
    # The request path of the owning organization, as CreateSolution etc. name it.
    organization_path: str
    validate: Callable[[C, Knows], C]
    draft: Callable[[str, Proposal, str, C, str, datetime], T]
    revise: Callable[[T, C, datetime], tuple[T, tuple[str, ...]] | None]


SOLUTION_PROPOSALS: ProposalType[Any, SolutionContent] = ProposalType(
    SOLUTIONS,
    "solution.organization_id",
    check.validate_solution,
    rules.draft_solution,
    rules.revise_solution,
)
KNOWLEDGE_PROPOSALS: ProposalType[Any, KnowledgeContent] = ProposalType(
    KNOWLEDGE,
    "knowledge_product.publishing_organization_id",
    lambda content, knows: check.validate_knowledge(content),
    rules.draft_knowledge,
    rules.revise_knowledge,
)
FUNDING_PROPOSALS: ProposalType[Any, FundingContent] = ProposalType(
    FUNDING,
    "funding_opportunity.funder_organization_id",
    lambda content, knows: check.validate_funding(content),
    rules.draft_funding,
    rules.revise_funding,
)


class ProposalIntake:
    """Turns proposals into drafts; each delivery is one transaction, safe to repeat."""

    def __init__(
        self,
        store: Store,
        *,
        instance: str,
        clock: Callable[[], datetime] = utc_now,
        ids: Callable[[], str] = new_id,
    ) -> None:
        self.store = store
        self.instance = instance
        self.clock = clock
        self.ids = ids

    def take(
        self, ptype: ProposalType[T, C], p: Proposal, organization_id: str, content: C
    ) -> Taken:
        """Create, revise or leave the draft p names; InvalidProposal when the catalog's rules
        refuse it (a rejected organization, invalid content), UnknownReference when it names an
        organization the read model has not learned yet."""
        kind = ptype.kind

        def unit(tx: Transaction) -> Taken:
            link = tx.get_proposal_link(p.key)
            record = tx.get(kind, link.entity_id) if link is not None else None
            editable = record is not None and rules.still_proposed(cast(Any, record))
            decision = decide(link, p.revision, editable)
            now = self.clock()
            done = settled(link, decision, p.revision, now, tx.save_proposal_link)
            if done is not None:
                return done
            checked = self._checked(ptype, tx, organization_id, content)
            if decision is Decision.CREATE:
                created = ptype.draft(self.ids(), p, organization_id, checked, self.instance, now)
                record_id = cast(Any, created).id
                tx.insert(kind, created)
                tx.insert_proposal_link(new_link(p, record_id, now))
                return Taken(decision, record_id, True)
            assert link is not None and record is not None
            current_org = getattr(record, kind.org_field)
            if organization_id != current_org:
                raise InvalidProposal(
                    f"{ptype.organization_path}: revision {p.revision} names {organization_id}, "
                    f"the draft belongs to {current_org}"
                )
            outcome = ptype.revise(record, checked, now)
            if outcome is not None:
                tx.save(kind, outcome[0], cast(Any, record).version)
            tx.save_proposal_link(advanced(link, decision, p.revision, now))
            return Taken(decision, link.entity_id, outcome is not None)

        return self.store.atomically(unit)

    @staticmethod
    def _checked(ptype: ProposalType[T, C], tx: Transaction, organization_id: str, content: C) -> C:
        """The validated content; InvalidProposal listing every violation, UnknownReference when
        the only ones are organizations the read model has not learned yet (their registration
        event may still be on its way)."""
        lookup = tx.get_organization
        unheard: set[str] = set()

        def knows(org_id: str) -> bool:
            return is_known(resolve(org_id, lookup))

        def knows_or_unheard(org_id: str) -> bool:
            org = resolve(org_id, lookup)
            if org is None:
                unheard.add(org_id)
                return True
            return is_known(org)

        checked = _validated(ptype, organization_id, content, knows_or_unheard)
        if unheard:
            try:
                _validated(ptype, organization_id, content, knows)
            except InvalidProposal as exc:
                # The reason names each field, as the refusal after the wait will.
                raise UnknownReference(str(exc)) from None
        return checked


def _validated(ptype: ProposalType[T, C], organization_id: str, content: C, knows: Knows) -> C:
    """The validated content; InvalidProposal listing every violation."""
    v = Violations()
    check.organizations(v, ptype.organization_path, organization_id, knows)
    try:
        checked = ptype.validate(content, knows)
    except ValidationError as exc:
        raise InvalidProposal("; ".join(str(f) for f in (*v.items, *exc.violations))) from None
    if v:
        raise InvalidProposal("; ".join(str(f) for f in v.items))
    return checked
