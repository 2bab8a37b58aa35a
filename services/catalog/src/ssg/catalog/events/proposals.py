"""Proposals of the ingress bridge the catalog takes in: solutions, knowledge products and
funding opportunities become drafts of their organizations (``ssg.catalog.proposals``).

No processed-events store: the proposal link makes every handler idempotent on its own (a
redelivery finds a revision already applied and writes nothing). A proposal naming an
organization the read model has not learned yet raises NotKnownYet (through take_proposal), so
its consumer, a group of its own, retries it for a bounded time before dead-lettering it."""

from __future__ import annotations

from ssg.catalog import mapping
from ssg.catalog.proposals import (
    FUNDING_PROPOSALS,
    KNOWLEDGE_PROPOSALS,
    SOLUTION_PROPOSALS,
    ProposalIntake,
)
from ssg.contracts.ingress.v1 import events_pb2 as ingress
from ssg.platform.events.consumer import Event, HandlerRegistry
from ssg.platform.events.proposals import (
    FUNDING_PROPOSAL_TOPIC,
    KNOWLEDGE_PROPOSAL_TOPIC,
    SOLUTION_PROPOSAL_TOPIC,
    take_proposal,
)

PROPOSAL_TOPICS = (SOLUTION_PROPOSAL_TOPIC, KNOWLEDGE_PROPOSAL_TOPIC, FUNDING_PROPOSAL_TOPIC)


def proposal_handlers(intake: ProposalIntake) -> HandlerRegistry:
    """The handlers of the three proposal event types."""
    handlers = HandlerRegistry()

    def solution(event: Event[ingress.SolutionProposed]) -> None:
        msg = event.payload.proposal.solution
        take_proposal(
            "solution",
            event,
            lambda p: intake.take(
                SOLUTION_PROPOSALS, p, msg.organization_id, mapping.solution_content(msg)
            ),
        )

    def knowledge(event: Event[ingress.KnowledgeProductProposed]) -> None:
        msg = event.payload.proposal.knowledge_product
        take_proposal(
            "knowledge_product",
            event,
            lambda p: intake.take(
                KNOWLEDGE_PROPOSALS,
                p,
                msg.publishing_organization_id,
                mapping.knowledge_content(msg),
            ),
        )

    def funding(event: Event[ingress.FundingOpportunityProposed]) -> None:
        msg = event.payload.proposal.funding_opportunity
        take_proposal(
            "funding_opportunity",
            event,
            lambda p: intake.take(
                FUNDING_PROPOSALS, p, msg.funder_organization_id, mapping.funding_content(msg)
            ),
        )

    handlers.add("ingress.SolutionProposed", ingress.SolutionProposed, solution)
    handlers.add("ingress.KnowledgeProductProposed", ingress.KnowledgeProductProposed, knowledge)
    handlers.add("ingress.FundingOpportunityProposed", ingress.FundingOpportunityProposed, funding)
    return handlers
