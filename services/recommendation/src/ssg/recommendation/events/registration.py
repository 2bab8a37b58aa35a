"""Organizations and experts kept from ``registration.organization-events.v1`` (verification,
regions, languages) and ``registration.expert-events.v1`` (profiles behind matched providers;
hidden and erased ones become tombstones), for matchmaking; conditional on aggregate_version
like every read model."""

from __future__ import annotations

from typing import Any

from ssg.contracts.common.v1 import geography_pb2
from ssg.contracts.registration.v1 import events_pb2 as reg_events
from ssg.contracts.registration.v1 import expert_pb2, organization_pb2
from ssg.platform.events.consumer import Event, HandlerRegistry, NonRetryableError
from ssg.platform.events.envelope import topic_name
from ssg.platform.events.organizations import ORGANIZATION_EVENTS
from ssg.recommendation.domain.experts import Expert
from ssg.recommendation.domain.model import Organization
from ssg.recommendation.store.mongo import MongoStore

EXPERT_TOPIC = topic_name("registration", "expert")


def organization(org: organization_pb2.Organization, version: int) -> Organization:
    """What matching keeps of an organization message."""
    return Organization(
        id=org.id,
        name=org.name,
        verified=org.status == organization_pb2.ORGANIZATION_STATUS_VERIFIED,
        country=org.headquarters_country,
        regions=tuple(
            geography_pb2.Region.Name(r).removeprefix("REGION_")
            for r in org.regions
            if r != geography_pb2.REGION_UNSPECIFIED
        ),
        languages=tuple(org.languages),
        version=version,
    )


def expert(e: expert_pb2.Expert, version: int) -> Expert | None:
    """What matching keeps of an expert message; None for a hidden profile."""
    if e.visibility not in (
        expert_pb2.EXPERT_VISIBILITY_PUBLIC,
        expert_pb2.EXPERT_VISIBILITY_MEMBERS_ONLY,
    ):
        return None
    return Expert(
        id=e.id,
        name=e.display_name,
        organization_id=e.affiliation_organization_id,
        expertise=tuple(e.expertise_areas),
        sdgs=tuple(int(g) for g in e.sdgs),
        languages=tuple(e.languages),
        countries=tuple(e.countries),
        public=e.visibility == expert_pb2.EXPERT_VISIBILITY_PUBLIC,
        version=version,
    )


def registration_handlers(store: MongoStore) -> HandlerRegistry:
    """Handlers of every organization and expert event type."""
    handlers = HandlerRegistry()

    def apply_expert(event: Event[Any]) -> None:
        e = event.payload.expert
        if not e.id:
            raise NonRetryableError("expert event without an expert id")
        version = event.envelope.aggregate_version
        store.apply_expert(expert(e, version), e.id, version, event.session)

    def erase_expert(event: Event[Any]) -> None:
        expert_id = event.payload.expert_id or event.envelope.aggregate_id
        if not expert_id:
            raise NonRetryableError("ExpertErased without an expert id")
        store.apply_expert(None, expert_id, event.envelope.aggregate_version, event.session)

    for expert_type in (reg_events.ExpertRegistered, reg_events.ExpertUpdated):
        handlers.add(f"registration.{expert_type.DESCRIPTOR.name}", expert_type, apply_expert)
    handlers.add("registration.ExpertErased", reg_events.ExpertErased, erase_expert)

    def apply(event: Event[Any]) -> None:
        org = event.payload.organization
        if not org.id:
            raise NonRetryableError("organization event without an organization id")
        store.apply_organization(organization(org, event.envelope.aggregate_version), event.session)

    for payload_type in ORGANIZATION_EVENTS:
        handlers.add(f"registration.{payload_type.DESCRIPTOR.name}", payload_type, apply)
    return handlers
