"""Mapping between domain objects and MongoDB documents."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ssg.notifications.domain.matching import subscription_keys
from ssg.notifications.domain.model import (
    Attempt,
    AttemptOutcome,
    Channel,
    Delivery,
    DeliveryStatus,
    Filters,
    Frequency,
    Item,
    Message,
    Subscription,
    SubscriptionInput,
    SubscriptionStatus,
    Topic,
)

Doc = dict[str, Any]


def utc(value: datetime) -> datetime:
    """value as an aware UTC datetime."""
    # pymongo returns naive UTC datetimes unless the client is tz-aware.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def spec_fields(spec: SubscriptionInput) -> Doc:
    """The stored fields of a subscription's caller-supplied part, with its index keys."""
    f = spec.filters
    return {
        "organization_id": spec.organization_id,
        "channel": int(spec.channel),
        "address": spec.address,
        "topics": sorted(int(t) for t in f.topics),
        "sdgs": sorted(f.sdgs),
        "regions": sorted(f.regions),
        "countries": sorted(f.countries),
        "keywords": list(f.keywords),
        "sdg_targets": sorted(f.sdg_targets),
        "frequency": int(spec.frequency),
        "language": spec.language,
        **subscription_keys(f, spec.organization_id),
    }


def subscription_from_doc(doc: Doc) -> Subscription:
    """A stored subscription."""
    spec = SubscriptionInput(
        channel=Channel(doc["channel"]),
        address=doc["address"],
        filters=Filters(
            topics=frozenset(Topic(t) for t in doc["topics"]),
            sdgs=frozenset(doc["sdgs"]),
            regions=frozenset(doc["regions"]),
            countries=frozenset(doc["countries"]),
            keywords=tuple(doc["keywords"]),
            # Subscriptions stored before target filters existed have none.
            sdg_targets=frozenset(doc.get("sdg_targets", ())),
        ),
        frequency=Frequency(doc["frequency"]),
        language=doc["language"],
        organization_id=doc.get("organization_id", ""),
    )
    return Subscription(
        id=doc["_id"],
        owner=doc["owner"],
        spec=spec,
        status=SubscriptionStatus(doc["status"]),
        version=int(doc["version"]),
        create_time=utc(doc["create_time"]),
        update_time=utc(doc["update_time"]),
    )


def item_to_doc(item: Item) -> Doc:
    """An item kept for a digest."""
    return {
        "topic": int(item.topic),
        "kind": item.kind,
        "id": item.id,
        "title": item.title,
        "summary": item.summary,
        "organization_id": item.organization_id,
        "sdgs": sorted(item.sdgs),
        "regions": sorted(item.regions),
        "countries": sorted(item.countries),
        "sdg_targets": sorted(item.sdg_targets),
        "headline": item.headline,
        "url": item.url,
        "details": [list(d) for d in item.details],
    }


def item_from_doc(doc: Doc) -> Item:
    """An item read back for a digest."""
    return Item(
        topic=Topic(doc["topic"]),
        kind=doc["kind"],
        id=doc["id"],
        title=doc["title"],
        summary=doc["summary"],
        organization_id=doc["organization_id"],
        sdgs=frozenset(doc["sdgs"]),
        regions=frozenset(doc["regions"]),
        countries=frozenset(doc["countries"]),
        sdg_targets=frozenset(doc.get("sdg_targets", ())),
        headline=doc["headline"],
        url=doc["url"],
        details=tuple((k, v) for k, v in doc["details"]),
    )


def delivery_to_doc(d: Delivery) -> Doc:
    """A new delivery (no attempts yet)."""
    return {
        "_id": d.id,
        "subscription_id": d.subscription_id,
        "owner": d.owner,
        "event_id": d.event_id,
        "event_type": d.event_type,
        "channel": int(d.channel),
        "address": d.address,
        "subject": d.message.subject,
        "text": d.message.text,
        "html": d.message.html,
        "body": d.message.body,
        "unsubscribe_url": d.message.unsubscribe_url,
        "status": int(d.status),
        "attempts": {},
        "create_time": d.create_time,
        "event_time": d.event_time,
    }


def delivery_from_doc(doc: Doc) -> Delivery:
    """A stored delivery with its attempts in order."""
    attempts = sorted(
        (
            Attempt(
                number=int(n),
                outcome=AttemptOutcome(a["outcome"]),
                time=utc(a["time"]),
                response_code=int(a.get("response_code", 0)),
                error=a.get("error", ""),
            )
            for n, a in (doc.get("attempts") or {}).items()
        ),
        key=lambda a: a.number,
    )
    return Delivery(
        id=doc["_id"],
        subscription_id=doc["subscription_id"],
        owner=doc["owner"],
        event_id=doc["event_id"],
        event_type=doc["event_type"],
        channel=Channel(doc["channel"]),
        address=doc["address"],
        message=Message(
            doc["subject"], doc["text"], doc["html"], doc["body"], doc.get("unsubscribe_url", "")
        ),
        status=DeliveryStatus(doc["status"]),
        create_time=utc(doc["create_time"]),
        event_time=utc(doc["event_time"]),
        attempts=tuple(attempts),
    )
