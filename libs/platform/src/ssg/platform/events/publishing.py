"""What a service's event factory shares: an envelope bound to its topic, the event type of a
payload, and the envelope built for the producing process (``ssg.events.v1.Envelope``).

A service subclasses ``EventFactory`` with its ``domain`` and one method per event, each
calling ``self.event(topic, aggregate_id, version, payload, at)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from google.protobuf.message import Message

from ssg.contracts.events.v1 import envelope_pb2
from ssg.platform.events.envelope import Origin, build_envelope


@dataclass(frozen=True)
class Event:
    """One envelope and the topic it goes to."""

    topic: str
    envelope: envelope_pb2.Envelope


def event_type(domain: str, payload: Message) -> str:
    """``<domain>.<MessageName>`` for a payload, e.g. ``catalog.SolutionPublished``."""
    return f"{domain}.{payload.DESCRIPTOR.name}"


@dataclass(frozen=True)
class EventFactory:
    """Builds the envelopes of one producing process; subclasses set domain."""

    origin: Origin
    domain: ClassVar[str]

    def event(
        self, topic: str, aggregate_id: str, version: int, payload: Message, at: datetime
    ) -> Event:
        """The envelope of payload about version of aggregate_id, occurred at at, for topic."""
        envelope = build_envelope(
            self.origin,
            event_type(self.domain, payload),
            aggregate_id,
            version,
            payload,
            occurred_at=at,
        )
        return Event(topic, envelope)
