"""Envelopes for every registration change, ready to add to the outbox with the state change.

Organization events go to ``registration.organization-events.v1`` and expert events to
``registration.expert-events.v1``, keyed by the entity id, each carrying the entity's full
public state after the change (ExpertErased: only the id) and its version.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from google.protobuf.message import Message

from ssg.contracts.events.v1 import envelope_pb2
from ssg.contracts.registration.v1 import events_pb2
from ssg.platform.events.envelope import Origin, build_envelope, topic_name
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
class Event:
    """One envelope and the topic it goes to."""

    topic: str
    envelope: envelope_pb2.Envelope


def event_type(payload: Message) -> str:
    """``registration.<MessageName>`` for a payload."""
    return f"{DOMAIN}.{payload.DESCRIPTOR.name}"


@dataclass(frozen=True)
class EventFactory:
    """Builds the envelopes of one producing process."""

    origin: Origin

    def _event(
        self, topic: str, aggregate_id: str, version: int, payload: Message, at: datetime
    ) -> Event:
        envelope = build_envelope(
            self.origin, event_type(payload), aggregate_id, version, payload, occurred_at=at
        )
        return Event(topic, envelope)

    def organization(self, kind: OrganizationEvent, org: Organization) -> Event:
        """An organization event of the given payload type carrying org's full state."""
        payload = kind(organization=organization_to_proto(org))
        return self._event(ORGANIZATION_TOPIC, org.id, org.version, payload, org.updated_at)

    def organization_updated(self, org: Organization, changed: tuple[str, ...]) -> Event:
        """OrganizationUpdated with the names of the fields that changed."""
        payload = events_pb2.OrganizationUpdated(
            organization=organization_to_proto(org), changed_fields=changed
        )
        return self._event(ORGANIZATION_TOPIC, org.id, org.version, payload, org.updated_at)

    def expert_registered(self, expert: Expert) -> Event:
        """ExpertRegistered with the profile's full public state."""
        payload = events_pb2.ExpertRegistered(expert=expert_to_proto(expert))
        return self._event(EXPERT_TOPIC, expert.id, expert.version, payload, expert.updated_at)

    def expert_updated(self, expert: Expert) -> Event:
        """ExpertUpdated with the profile's full public state."""
        payload = events_pb2.ExpertUpdated(expert=expert_to_proto(expert))
        return self._event(EXPERT_TOPIC, expert.id, expert.version, payload, expert.updated_at)

    def expert_erased(self, expert: Expert, at: datetime) -> Event:
        """ExpertErased: only the id, one version past the last state."""
        payload = events_pb2.ExpertErased(expert_id=expert.id)
        return self._event(EXPERT_TOPIC, expert.id, expert.version + 1, payload, at)
