"""The events the notifications service publishes (through its outbox)."""

from __future__ import annotations

from dataclasses import dataclass

from ssg.contracts.notifications.v1 import events_pb2
from ssg.notifications import mapping
from ssg.notifications.domain.model import Delivery
from ssg.platform.events.envelope import topic_name
from ssg.platform.events.publishing import Event, EventFactory

DELIVERY_TOPIC = topic_name("notifications", "delivery")
TOPICS = (DELIVERY_TOPIC,)


@dataclass(frozen=True)
class DeliveryEvents(EventFactory):
    """Builds notifications.* envelopes."""

    domain = "notifications"

    def delivery_failed(self, delivery: Delivery) -> Event:
        """DeliveryFailed: every attempt failed (version = number of attempts)."""
        payload = events_pb2.DeliveryFailed(delivery=mapping.delivery_to_proto(delivery))
        version = max((a.number for a in delivery.attempts), default=1)
        return self.event(DELIVERY_TOPIC, delivery.id, version, payload, delivery.attempts[-1].time)
