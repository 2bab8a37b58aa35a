"""Proposals of the ingress bridge registration takes in: organizations (registered PENDING,
through verification) and expert profiles (``ssg.registration.proposals``).

No processed-events store: the proposal link makes every handler idempotent on its own (a
redelivery finds a revision already applied and writes nothing)."""

from __future__ import annotations

from ssg.contracts.ingress.v1 import events_pb2 as ingress
from ssg.platform.events.consumer import Event, HandlerRegistry
from ssg.platform.events.proposals import (
    EXPERT_PROPOSAL_TOPIC,
    ORGANIZATION_PROPOSAL_TOPIC,
    take_proposal,
)
from ssg.registration import mapping
from ssg.registration.proposals import ProposalIntake

PROPOSAL_TOPICS = (ORGANIZATION_PROPOSAL_TOPIC, EXPERT_PROPOSAL_TOPIC)


def proposal_handlers(intake: ProposalIntake) -> HandlerRegistry:
    """The handlers of the organization and expert proposal event types."""
    handlers = HandlerRegistry()

    def organization(event: Event[ingress.OrganizationProposed]) -> None:
        draft = mapping.organization_draft(event.payload.proposal.organization)
        take_proposal("organization", event, lambda p: intake.take_organization(p, draft))

    def expert(event: Event[ingress.ExpertProfileProposed]) -> None:
        draft = mapping.expert_draft(event.payload.proposal.expert)
        take_proposal("expert", event, lambda p: intake.take_expert(p, draft))

    handlers.add("ingress.OrganizationProposed", ingress.OrganizationProposed, organization)
    handlers.add("ingress.ExpertProfileProposed", ingress.ExpertProfileProposed, expert)
    return handlers
