"""Organizations kept from ``registration.organization-events.v1`` (verification, regions,
languages), for matchmaking; conditional on aggregate_version like every read model."""

from __future__ import annotations

from typing import Any

from ssg.contracts.common.v1 import geography_pb2
from ssg.contracts.registration.v1 import events_pb2 as reg
from ssg.contracts.registration.v1 import organization_pb2
from ssg.platform.events.consumer import Event, HandlerRegistry, NonRetryableError
from ssg.platform.events.envelope import topic_name
from ssg.recommendation.domain.model import Organization
from ssg.recommendation.store.mongo import MongoStore

ORGANIZATION_TOPIC = topic_name("registration", "organization")
ORGANIZATION_EVENTS = (
    reg.OrganizationRegistered,
    reg.OrganizationUpdated,
    reg.OrganizationVerified,
    reg.OrganizationRejected,
    reg.OrganizationSuspended,
    reg.OrganizationMerged,
    reg.VerificationExpired,
)


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


def registration_handlers(store: MongoStore) -> HandlerRegistry:
    """Handlers of every organization event type."""
    handlers = HandlerRegistry()

    def apply(event: Event[Any]) -> None:
        org = event.payload.organization
        if not org.id:
            raise NonRetryableError("organization event without an organization id")
        store.apply_organization(organization(org, event.envelope.aggregate_version), event.session)

    for payload_type in ORGANIZATION_EVENTS:
        handlers.add(f"registration.{payload_type.DESCRIPTOR.name}", payload_type, apply)
    return handlers
