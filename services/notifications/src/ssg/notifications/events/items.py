"""What each consumed event is about: catalog, registration and recommendation payloads turned
into ``Item``s (the only place that knows those contracts). Topic names are the publishers'
(DESIGN §3). A match event is news for each party it concerns, as one item per party (ADR
0033)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from ssg.contracts.catalog.v1 import events_pb2 as catalog_events
from ssg.contracts.catalog.v1 import funding_pb2, review_pb2
from ssg.contracts.recommendation.v1 import events_pb2 as recommendation_events
from ssg.contracts.recommendation.v1 import match_pb2
from ssg.contracts.registration.v1 import events_pb2 as registration_events
from ssg.notifications.domain.model import Item, Topic
from ssg.platform.events.consumer import NonRetryableError
from ssg.platform.events.envelope import topic_name

SOLUTION_TOPIC = topic_name("catalog", "solution")
KNOWLEDGE_TOPIC = topic_name("catalog", "knowledge")
NEED_TOPIC = topic_name("catalog", "need")
FUNDING_TOPIC = topic_name("catalog", "funding")
ORGANIZATION_TOPIC = topic_name("registration", "organization")
MATCH_TOPIC = topic_name("recommendation", "match")
CONSUMED_TOPICS = (
    SOLUTION_TOPIC,
    KNOWLEDGE_TOPIC,
    NEED_TOPIC,
    FUNDING_TOPIC,
    ORGANIZATION_TOPIC,
    MATCH_TOPIC,
)
MATCH_REASONS_SHOWN = 3
_MATCH_FIELDS = (
    "id",
    "need_id",
    "solution_id",
    "seeker_organization_id",
    "provider_organization_id",
)

_OUTCOMES = {
    review_pb2.REVIEW_OUTCOME_APPROVE: "approved",
    review_pb2.REVIEW_OUTCOME_REQUEST_CHANGES: "changes requested",
    review_pb2.REVIEW_OUTCOME_REJECT: "rejected",
}


@dataclass(frozen=True)
class ItemSource:
    """How one event type becomes an Item."""

    payload_type: type[Message]
    to_item: Callable[[Any, str], Item | Sequence[Item]]

    def items(self, payload: Any, base: str) -> list[Item]:
        """The items of one payload (none when the event is news for nobody)."""
        found = self.to_item(payload, base)
        return [found] if isinstance(found, Item) else list(found)


def _solution_published(p: catalog_events.SolutionPublished, base: str) -> Item:
    s = p.solution
    return Item(
        topic=Topic.SOLUTIONS,
        kind="solution",
        id=s.id,
        title=s.title,
        summary=s.summary,
        organization_id=s.organization_id,
        sdgs=frozenset(int(x) for x in s.sdgs),
        regions=frozenset(int(x) for x in s.regions),
        countries=frozenset([*s.implementing_countries, *s.beneficiary_countries]),
        sdg_targets=frozenset(t.code for t in s.sdg_targets),
        headline="New solution published",
        url=f"{base}/solutions/{s.id}",
    )


def _knowledge_published(p: catalog_events.KnowledgeProductPublished, base: str) -> Item:
    k = p.knowledge_product
    return Item(
        topic=Topic.KNOWLEDGE_PRODUCTS,
        kind="knowledge product",
        id=k.id,
        title=k.title,
        summary=k.abstract,
        organization_id=k.publishing_organization_id,
        sdgs=frozenset(int(x) for x in k.sdgs),
        headline="New knowledge product",
        url=f"{base}/knowledge/{k.id}",
    )


def funding_item(f: funding_pb2.FundingOpportunity, base: str) -> Item:
    """A funding opportunity as news (also what its deadline reminder starts from)."""
    deadline = f.deadline.ToDatetime().date().isoformat() if f.HasField("deadline") else ""
    return Item(
        topic=Topic.FUNDING,
        kind="funding opportunity",
        id=f.id,
        title=f.title,
        summary=f.description,
        organization_id=f.funder_organization_id,
        sdgs=frozenset(int(x) for x in f.sdgs),
        countries=frozenset(f.eligible_countries),
        headline="New funding opportunity",
        url=f"{base}/funding/{f.id}",
        details=(("deadline", deadline),),
    )


def _funding_published(p: catalog_events.FundingPublished, base: str) -> Item:
    return funding_item(p.funding_opportunity, base)


def _need_posted(p: catalog_events.NeedPosted, base: str) -> Item:
    n = p.need
    return Item(
        topic=Topic.NEEDS,
        kind="need",
        id=n.id,
        title=n.title,
        summary=n.problem_statement,
        organization_id=n.seeker_organization_id,
        sdgs=frozenset(int(x) for x in n.sdgs),
        countries=frozenset([n.country] if n.country else []),
        headline="New need posted",
        url=f"{base}/needs/{n.id}",
        details=(("deadline", n.deadline),),
    )


def _review_recorded(p: catalog_events.SolutionReviewRecorded, base: str) -> Item:
    outcome = _OUTCOMES.get(p.outcome, "recorded")
    return Item(
        topic=Topic.MY_ORGANIZATION,
        kind="solution",
        id=p.solution_id,
        # The event carries no draft content (drafts are not public): the id stands in.
        title=f"Solution {p.solution_id}",
        organization_id=p.organization_id,
        headline=f"Review of your solution: {outcome}",
        url=f"{base}/solutions/{p.solution_id}",
        details=(("outcome", outcome), ("passed", "yes" if p.passed else "no")),
    )


def _solution_stale(p: catalog_events.SolutionStale, base: str) -> Item:
    s = p.solution
    return Item(
        topic=Topic.MY_ORGANIZATION,
        kind="solution",
        id=s.id,
        title=s.title,
        summary="Not confirmed for 24 months: please confirm it is current or update it.",
        organization_id=s.organization_id,
        headline="Your solution needs confirming",
        url=f"{base}/solutions/{s.id}",
    )


def _organization(headline: str) -> Callable[[Any, str], Item]:
    def to_item(p: Any, base: str) -> Item:
        o = p.organization
        return Item(
            topic=Topic.MY_ORGANIZATION,
            kind="organization",
            id=o.id,
            title=o.name,
            organization_id=o.id,
            headline=headline,
            url=f"{base}/organizations/{o.id}",
            details=(("reason", o.status_reason),),
        )

    return to_item


def _checked_match(m: match_pb2.Match) -> match_pb2.Match:
    missing = [name for name in _MATCH_FIELDS if not getattr(m, name)]
    if missing:
        # Nobody can be told: retrying cannot fix the event, so it goes to the dead letters.
        raise NonRetryableError(f"match without {', '.join(missing)}")
    return m


def _match_item(
    m: match_pb2.Match, topic: Topic, organization_id: str, headline: str, base: str
) -> Item:
    reasons = sorted(m.reasons, key=lambda r: -r.weight)[:MATCH_REASONS_SHOWN]
    details = [("need", m.need_id), ("solution", m.solution_id), ("score", f"{m.score:.2f}")]
    if m.status == match_pb2.MATCH_STATUS_DECLINED and m.history:
        details.append(("reason", m.history[-1].note))
    return Item(
        topic=topic,
        kind="match",
        id=m.id,
        # Ids only: the event carries no titles (ADR 0033), and ids read the same in every
        # language.
        title=f"{m.need_id} ↔ {m.solution_id}",
        summary="; ".join(r.text for r in reasons if r.text),
        organization_id=organization_id,
        headline=headline,
        url=f"{base}/matches/{m.id}",
        details=tuple(details),
    )


def _seeker(m: match_pb2.Match, headline: str, base: str) -> Item:
    return _match_item(m, Topic.MATCHES_FOR_MY_NEEDS, m.seeker_organization_id, headline, base)


def _provider(m: match_pb2.Match, headline: str, base: str) -> Item:
    return _match_item(m, Topic.NEEDS_FOR_MY_SOLUTIONS, m.provider_organization_id, headline, base)


def _match_proposed(p: recommendation_events.MatchProposed, base: str) -> list[Item]:
    m = _checked_match(p.match)
    return [
        _seeker(m, "A solution is proposed for your need", base),
        _provider(m, "A need your solution could answer", base),
    ]


# Status -> the headline the side that did not make the change reads.
_ANSWERS = {
    match_pb2.MATCH_STATUS_SEEKER_ACCEPTED: "The seeker accepted the match",
    match_pb2.MATCH_STATUS_PROVIDER_ACCEPTED: "The provider accepted the match",
    match_pb2.MATCH_STATUS_ACCEPTED: "The match is accepted by both sides",
    match_pb2.MATCH_STATUS_DECLINED: "The match was declined",
}


def _match_status_changed(p: recommendation_events.MatchStatusChanged, base: str) -> list[Item]:
    """An answer to a match, for the other side; later steps of the partnership are the
    parties' own business and not alerted."""
    m = _checked_match(p.match)
    headline = _ANSWERS.get(m.status)
    if headline is None:
        return []
    if m.status == match_pb2.MATCH_STATUS_SEEKER_ACCEPTED:
        actor = m.seeker_organization_id
    elif m.status == match_pb2.MATCH_STATUS_PROVIDER_ACCEPTED:
        actor = m.provider_organization_id
    else:
        actor = m.history[-1].organization_id if m.history else ""
    items = []
    if actor != m.seeker_organization_id:
        items.append(_seeker(m, headline, base))
    if actor != m.provider_organization_id:
        items.append(_provider(m, headline, base))
    return items


# event_type -> how it becomes an item; every other event type of the topics is skipped.
SOURCES: dict[str, ItemSource] = {
    "catalog.SolutionPublished": ItemSource(catalog_events.SolutionPublished, _solution_published),
    "catalog.KnowledgeProductPublished": ItemSource(
        catalog_events.KnowledgeProductPublished, _knowledge_published
    ),
    "catalog.FundingPublished": ItemSource(catalog_events.FundingPublished, _funding_published),
    "catalog.NeedPosted": ItemSource(catalog_events.NeedPosted, _need_posted),
    "catalog.SolutionReviewRecorded": ItemSource(
        catalog_events.SolutionReviewRecorded, _review_recorded
    ),
    "catalog.SolutionStale": ItemSource(catalog_events.SolutionStale, _solution_stale),
    "registration.OrganizationVerified": ItemSource(
        registration_events.OrganizationVerified, _organization("Your organization is verified")
    ),
    "registration.OrganizationRejected": ItemSource(
        registration_events.OrganizationRejected,
        _organization("Your organization's registration was rejected"),
    ),
    "registration.OrganizationSuspended": ItemSource(
        registration_events.OrganizationSuspended,
        _organization("Your organization's verification was suspended"),
    ),
    "registration.VerificationExpired": ItemSource(
        registration_events.VerificationExpired,
        _organization("Your organization's verification expired: please reconfirm"),
    ),
    "recommendation.MatchProposed": ItemSource(
        recommendation_events.MatchProposed, _match_proposed
    ),
    "recommendation.MatchStatusChanged": ItemSource(
        recommendation_events.MatchStatusChanged, _match_status_changed
    ),
}
