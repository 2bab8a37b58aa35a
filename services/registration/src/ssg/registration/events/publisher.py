"""Envelopes for every registration change, ready to add to the outbox with the state change.

Organization events go to ``registration.organization-events.v1`` and expert events to
``registration.expert-events.v1``, keyed by the entity id, each carrying the entity's full
public state after the change (ExpertErased: only the id) and its version.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from ssg.contracts.registration.v1 import events_pb2
from ssg.platform.events import publishing
from ssg.platform.events.envelope import topic_name
from ssg.platform.events.publishing import Event
from ssg.registration.domain.model import Expert, Organization
from ssg.registration.mapping import expert_to_proto, organization_to_proto

DOMAIN = "registration"
ORGANIZATION_TOPIC = topic_name(DOMAIN, "organization")
EXPERT_TOPIC = topic_name(DOMAIN, "expert")

OrganizationEvent = type[
    events_pb2.OrganizationRegistered
    | events_pb2.OrganizationVerified
    | events_pb2.OrganizationRejected
    | events_pb2.OrganizationSuspended
    | events_pb2.OrganizationMerged
    | events_pb2.VerificationExpired
]


@dataclass(frozen=True)
class EventFactory(publishing.EventFactory):
    """Builds the registration envelopes of one producing process."""

    domain: ClassVar[str] = DOMAIN

    def organization(self, kind: OrganizationEvent, org: Organization) -> Event:
        """An organization event of the given payload type carrying org's full state."""
        payload = kind(organization=organization_to_proto(org))
        return self.event(ORGANIZATION_TOPIC, org.id, org.version, payload, org.updated_at)

    def organization_updated(self, org: Organization, changed: tuple[str, ...]) -> Event:
        """OrganizationUpdated with the names of the fields that changed."""
        payload = events_pb2.OrganizationUpdated(
            organization=organization_to_proto(org), changed_fields=changed
        )
        return self.event(ORGANIZATION_TOPIC, org.id, org.version, payload, org.updated_at)

    def expert_registered(self, expert: Expert) -> Event:
        """ExpertRegistered with the profile's full public state."""
        payload = events_pb2.ExpertRegistered(expert=expert_to_proto(expert))
        return self.event(EXPERT_TOPIC, expert.id, expert.version, payload, expert.updated_at)

    def expert_updated(self, expert: Expert) -> Event:
        """ExpertUpdated with the profile's full public state."""
        payload = events_pb2.ExpertUpdated(expert=expert_to_proto(expert))
        return self.event(EXPERT_TOPIC, expert.id, expert.version, payload, expert.updated_at)

    def expert_erased(self, expert: Expert, at: datetime) -> Event:
        """ExpertErased: only the id, one version past the last state."""
        payload = events_pb2.ExpertErased(expert_id=expert.id)
        return self.event(EXPERT_TOPIC, expert.id, expert.version + 1, payload, at)
