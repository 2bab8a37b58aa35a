"""What one event does to the subscriptions it matches: an instant alert (a delivery) for each
instant subscription, an entry in the next digest for each digest subscription. An event may
be news for several audiences (a match proposal: the seeker's and the provider's
subscriptions), each with its own item; a subscription reached by two of them gets the first."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from ssg.notifications.domain.ids import delivery_id
from ssg.notifications.domain.languages import message_language
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
    # The subscriptions of digest_subscriptions grouped by the item each one keeps.
    digest_groups: list[tuple[Item, list[str]]] = field(default_factory=list)


def fan_out(
    item: Item,
    candidates: Iterable[Subscription],
    event: SourceEvent,
    now: datetime,
    unsubscribe_url: Callable[[str], str],
) -> FanOut:
    """Apply the matching rule to the candidates and plan what each match receives."""
    return fan_out_audiences([(item, candidates)], event, now, unsubscribe_url)


def fan_out_audiences(
    audiences: Iterable[tuple[Item, Iterable[Subscription]]],
    event: SourceEvent,
    now: datetime,
    unsubscribe_url: Callable[[str], str],
) -> FanOut:
    """fan_out for each (item, candidates) of one event; one plan entry per subscription."""
    deliveries: list[Delivery] = []
    digests: list[str] = []
    groups: list[tuple[Item, list[str]]] = []
    reached: set[str] = set()
    for item, candidates in audiences:
        group: list[str] = []
        # One rendering per language, not per subscriber.
        templates: dict[str, AlertTemplate] = {}
        for sub in candidates:
            if sub.id in reached or not matches(sub, item):
                continue
            reached.add(sub.id)
            if sub.spec.frequency is not Frequency.INSTANT:
                digests.append(sub.id)
                group.append(sub.id)
                continue
            language = message_language(sub.spec.language)
            template = templates.get(language)
            if template is None:
                template = templates[language] = AlertTemplate(
                    item, event.event_id, event.event_type, event.occurred_at, language
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
        if group:
            groups.append((item, group))
    return FanOut(deliveries, digests, groups)
