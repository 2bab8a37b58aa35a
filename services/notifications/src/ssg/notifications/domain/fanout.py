"""What one event does to the subscriptions it matches: an instant alert (a delivery) for each
instant subscription, an entry in the next digest for each digest subscription."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from ssg.notifications.domain.ids import delivery_id
from ssg.notifications.domain.matching import matches
from ssg.notifications.domain.messages import AlertTemplate
from ssg.notifications.domain.model import (
    Delivery,
    DeliveryStatus,
    Frequency,
    Item,
    Subscription,
)


@dataclass(frozen=True)
class SourceEvent:
    """The event an item came from."""

    event_id: str
    event_type: str
    occurred_at: datetime


@dataclass(frozen=True)
class FanOut:
    """Deliveries to record now, and the subscriptions whose digest gets the item."""

    deliveries: list[Delivery]
    digest_subscriptions: list[str]


def fan_out(
    item: Item,
    candidates: Iterable[Subscription],
    event: SourceEvent,
    now: datetime,
    unsubscribe_url: Callable[[str], str],
) -> FanOut:
    """Apply the matching rule to the candidates and plan what each match receives."""
    deliveries: list[Delivery] = []
    digests: list[str] = []
    template: AlertTemplate | None = None
    for sub in candidates:
        if not matches(sub, item):
            continue
        if sub.spec.frequency is not Frequency.INSTANT:
            digests.append(sub.id)
            continue
        template = template or AlertTemplate(
            item, event.event_id, event.event_type, event.occurred_at
        )
        did = delivery_id(event.event_id, sub.id, int(sub.spec.channel))
        deliveries.append(
            Delivery(
                id=did,
                subscription_id=sub.id,
                owner=sub.owner,
                event_id=event.event_id,
                event_type=event.event_type,
                channel=sub.spec.channel,
                address=sub.spec.address,
                message=template.message(did, unsubscribe_url(sub.id)),
                status=DeliveryStatus.PENDING,
                create_time=now,
                event_time=event.occurred_at,
            )
        )
    return FanOut(deliveries, digests)
