"""Envelopes for every public change, added to the outbox in the change's own transaction.

Topics ``catalog.solution-events.v1``, ``catalog.knowledge-events.v1``,
``catalog.need-events.v1``, ``catalog.funding-events.v1``, keyed by record id, with the record
version as aggregate_version. SolutionSubmitted and SolutionReviewRecorded carry ids and
statuses only: a solution's content leaves the service only once it is published.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ssg.catalog import mapping
from ssg.catalog.domain.model import (
    FundingOpportunity,
    KnowledgeProduct,
    Need,
    Review,
    Solution,
)
from ssg.contracts.catalog.v1 import events_pb2 as ev
from ssg.contracts.catalog.v1 import review_pb2, solution_pb2
from ssg.platform.events import publishing
from ssg.platform.events.envelope import topic_name
from ssg.platform.events.publishing import Event

DOMAIN = "catalog"
SOLUTION_TOPIC = topic_name(DOMAIN, "solution")
KNOWLEDGE_TOPIC = topic_name(DOMAIN, "knowledge")
NEED_TOPIC = topic_name(DOMAIN, "need")
FUNDING_TOPIC = topic_name(DOMAIN, "funding")
TOPICS = (SOLUTION_TOPIC, KNOWLEDGE_TOPIC, NEED_TOPIC, FUNDING_TOPIC)


@dataclass(frozen=True)
class EventFactory(publishing.EventFactory):
    """Builds the catalog envelopes of one producing process."""

    domain: ClassVar[str] = DOMAIN

    def solution_submitted(self, s: Solution, resubmission: bool) -> Event:
        """SolutionSubmitted: ids only."""
        payload = ev.SolutionSubmitted(
            solution_id=s.id,
            organization_id=s.organization_id,
            submitted_by=s.provenance.submitted_by,
            resubmission=resubmission,
        )
        return self.event(SOLUTION_TOPIC, s.id, s.version, payload, s.update_time)

    def review_recorded(self, s: Solution, review: Review) -> Event:
        """SolutionReviewRecorded: ids, outcome and the status after it."""
        payload = ev.SolutionReviewRecorded(
            solution_id=s.id,
            organization_id=s.organization_id,
            review_id=review.id,
            outcome=review_pb2.ReviewOutcome.Value(f"REVIEW_OUTCOME_{review.outcome}"),
            passed=review.passed,
            status=solution_pb2.SolutionStatus.Value(f"SOLUTION_STATUS_{s.status}"),
        )
        return self.event(SOLUTION_TOPIC, s.id, s.version, payload, s.update_time)

    def solution(
        self,
        kind: type[ev.SolutionPublished | ev.SolutionStale],
        s: Solution,
        verified: bool,
    ) -> Event:
        """An event carrying the solution's full public state."""
        payload = kind(solution=mapping.solution_to_proto(s, verified))
        return self.event(SOLUTION_TOPIC, s.id, s.version, payload, s.update_time)

    def solution_updated(self, s: Solution, verified: bool, changed: tuple[str, ...]) -> Event:
        """SolutionUpdated (changed is empty for a confirmation)."""
        payload = ev.SolutionUpdated(
            solution=mapping.solution_to_proto(s, verified), changed_fields=changed
        )
        return self.event(SOLUTION_TOPIC, s.id, s.version, payload, s.update_time)

    def solution_archived(self, s: Solution, verified: bool, reason: str) -> Event:
        """SolutionArchived with the last public state and the reason."""
        payload = ev.SolutionArchived(
            solution=mapping.solution_to_proto(s, verified), reason=reason
        )
        return self.event(SOLUTION_TOPIC, s.id, s.version, payload, s.update_time)

    def knowledge(
        self,
        kind: type[ev.KnowledgeProductPublished | ev.KnowledgeProductArchived],
        k: KnowledgeProduct,
        verified: bool,
    ) -> Event:
        """A knowledge product event with its full public state."""
        payload = kind(knowledge_product=mapping.knowledge_to_proto(k, verified))
        return self.event(KNOWLEDGE_TOPIC, k.id, k.version, payload, k.update_time)

    def knowledge_updated(
        self, k: KnowledgeProduct, verified: bool, changed: tuple[str, ...]
    ) -> Event:
        """KnowledgeProductUpdated."""
        payload = ev.KnowledgeProductUpdated(
            knowledge_product=mapping.knowledge_to_proto(k, verified), changed_fields=changed
        )
        return self.event(KNOWLEDGE_TOPIC, k.id, k.version, payload, k.update_time)

    def need(self, kind: type[ev.NeedPosted | ev.NeedClosed], n: Need, verified: bool) -> Event:
        """A need event with its full public state."""
        payload = kind(need=mapping.need_to_proto(n, verified))
        return self.event(NEED_TOPIC, n.id, n.version, payload, n.update_time)

    def need_updated(self, n: Need, verified: bool, changed: tuple[str, ...]) -> Event:
        """NeedUpdated."""
        payload = ev.NeedUpdated(need=mapping.need_to_proto(n, verified), changed_fields=changed)
        return self.event(NEED_TOPIC, n.id, n.version, payload, n.update_time)

    def funding(
        self,
        kind: type[ev.FundingPublished | ev.FundingClosed],
        f: FundingOpportunity,
        verified: bool,
    ) -> Event:
        """A funding event with its full public state."""
        payload = kind(funding_opportunity=mapping.funding_to_proto(f, verified))
        return self.event(FUNDING_TOPIC, f.id, f.version, payload, f.update_time)

    def funding_updated(
        self, f: FundingOpportunity, verified: bool, changed: tuple[str, ...]
    ) -> Event:
        """FundingUpdated."""
        payload = ev.FundingUpdated(
            funding_opportunity=mapping.funding_to_proto(f, verified), changed_fields=changed
        )
        return self.event(FUNDING_TOPIC, f.id, f.version, payload, f.update_time)
