"""The external event types the bridge accepts: routing key -> body schema, event, Kafka topic."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from google.protobuf.message import Message

from ssg.contracts.ingress.v1 import events_pb2, proposals_pb2
from ssg.platform.events.envelope import topic_name
from ssg.platform.events.publishing import event_type

DOMAIN = "ingress"


@dataclass(frozen=True)
class ExternalType:
    """One routing key: what its body must be and where its event goes."""

    routing_key: str
    body: type[Message]
    event: type[Message]
    # The field of the body holding the record, and the record's fields that must be set.
    record_field: str
    required: tuple[str, ...]
    # The entity part of the topic, e.g. "solution-proposal".
    entity: str

    @cached_property
    def topic(self) -> str:
        """The Kafka topic of this type's events."""
        return topic_name(DOMAIN, self.entity)

    @cached_property
    def event_type(self) -> str:
        """The envelope's event type, e.g. ``ingress.SolutionProposed``."""
        return event_type(DOMAIN, self.event())


CATALOGUE: dict[str, ExternalType] = {
    t.routing_key: t
    for t in (
        ExternalType(
            "solution.proposed",
            proposals_pb2.SolutionProposal,
            events_pb2.SolutionProposed,
            "solution",
            ("title", "organization_id"),
            "solution-proposal",
        ),
        ExternalType(
            "organization.proposed",
            proposals_pb2.OrganizationProposal,
            events_pb2.OrganizationProposed,
            "organization",
            ("name",),
            "organization-proposal",
        ),
        ExternalType(
            "expert.profile",
            proposals_pb2.ExpertProfile,
            events_pb2.ExpertProfileProposed,
            "expert",
            ("display_name",),
            "expert-proposal",
        ),
        ExternalType(
            "funding.opportunity",
            proposals_pb2.FundingOpportunityProposal,
            events_pb2.FundingOpportunityProposed,
            "funding_opportunity",
            ("title",),
            "funding-proposal",
        ),
        ExternalType(
            "knowledge.product",
            proposals_pb2.KnowledgeProductProposal,
            events_pb2.KnowledgeProductProposed,
            "knowledge_product",
            ("title",),
            "knowledge-proposal",
        ),
    )
}


def topics() -> list[str]:
    """Every topic the bridge publishes to."""
    return [t.topic for t in CATALOGUE.values()]
