"""Subscriptions, the items events are about, and deliveries."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class Channel(enum.IntEnum):
    """How a subscriber is reached (values of ssg.notifications.v1.Channel)."""

    EMAIL = 1
    WEBHOOK = 2


class Frequency(enum.IntEnum):
    """When matching items are sent."""

    INSTANT = 1
    DAILY = 2
    WEEKLY = 3


class Topic(enum.IntEnum):
    """A kind of news a subscription follows."""

    SOLUTIONS = 1
    KNOWLEDGE_PRODUCTS = 2
    FUNDING = 3
    NEEDS = 4
    MY_ORGANIZATION = 5
    MATCHES_FOR_MY_NEEDS = 6
    NEEDS_FOR_MY_SOLUTIONS = 7


# Topics about published content, matched by the subscription's filters.
CONTENT_TOPICS = frozenset({Topic.SOLUTIONS, Topic.KNOWLEDGE_PRODUCTS, Topic.FUNDING, Topic.NEEDS})
# Topics about one organization, matched by the subscription's organization alone (ADR 0033).
ORGANIZATION_TOPICS = frozenset(
    {Topic.MY_ORGANIZATION, Topic.MATCHES_FOR_MY_NEEDS, Topic.NEEDS_FOR_MY_SOLUTIONS}
)


class SubscriptionStatus(enum.IntEnum):
    """Whether a subscription still receives anything."""

    ACTIVE = 1
    UNSUBSCRIBED = 2


class DeliveryStatus(enum.IntEnum):
    """Where one delivery stands."""

    PENDING = 1
    QUEUED = 2
    SENT = 3
    FAILED = 4


class AttemptOutcome(enum.IntEnum):
    """The result of one attempt."""

    SUCCEEDED = 1
    FAILED = 2
    GAVE_UP = 3


@dataclass(frozen=True)
class Filters:
    """What a subscription follows; empty lists match everything."""

    topics: frozenset[Topic]
    sdgs: frozenset[int] = frozenset()
    regions: frozenset[int] = frozenset()
    countries: frozenset[str] = frozenset()
    keywords: tuple[str, ...] = ()
    # Target codes such as "6.1" (ADR 0034).
    sdg_targets: frozenset[str] = frozenset()


@dataclass(frozen=True)
class SubscriptionInput:
    """The caller-supplied part of a subscription, validated."""

    channel: Channel
    address: str
    filters: Filters
    frequency: Frequency
    language: str
    organization_id: str = ""


@dataclass(frozen=True)
class Subscription:
    """A stored subscription."""

    id: str
    owner: str
    spec: SubscriptionInput
    status: SubscriptionStatus
    version: int
    create_time: datetime
    update_time: datetime

    @property
    def active(self) -> bool:
        """True while it receives anything."""
        return self.status is SubscriptionStatus.ACTIVE


@dataclass(frozen=True)
class Item:
    """What one event is about, as far as matching and the message go."""

    topic: Topic
    kind: str  # "solution", "knowledge product", "funding opportunity", "need", "organization"
    id: str
    title: str
    summary: str = ""
    organization_id: str = ""
    sdgs: frozenset[int] = frozenset()
    regions: frozenset[int] = frozenset()
    countries: frozenset[str] = frozenset()
    # Target codes such as "6.4"; empty when the item is tagged with goals only.
    sdg_targets: frozenset[str] = frozenset()
    # One line saying what happened, e.g. "New solution published".
    headline: str = ""
    url: str = ""
    # Extra key/values for the webhook body and the message (outcome, reason, deadline).
    details: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Attempt:
    """One try at sending a delivery."""

    number: int
    outcome: AttemptOutcome
    time: datetime
    response_code: int = 0
    error: str = ""


@dataclass(frozen=True)
class Message:
    """A rendered message: subject, plain text, HTML, and the webhook JSON body."""

    subject: str
    text: str
    html: str
    body: str
    # For the List-Unsubscribe header of e-mails.
    unsubscribe_url: str = ""


@dataclass(frozen=True)
class Delivery:
    """One message to one subscriber, for one event or one digest period."""

    id: str
    subscription_id: str
    owner: str
    event_id: str
    event_type: str
    channel: Channel
    address: str
    message: Message
    status: DeliveryStatus
    create_time: datetime
    event_time: datetime
    attempts: tuple[Attempt, ...] = field(default_factory=tuple)
