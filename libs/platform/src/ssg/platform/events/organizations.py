"""The registration events that carry an organization's whole state: what services that keep
an organizations read model (catalog, recommendation) consume, listed once."""

from __future__ import annotations

from ssg.contracts.registration.v1 import events_pb2 as reg
from ssg.platform.events.envelope import topic_name

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
