"""Items kept from the catalog's events (event-carried state: each event has the full record).

Every handler stores the record unless a newer version is stored (``apply_if_newer`` on
aggregate_version). Archived, closed and withdrawn records stay stored, inactive, so
explanations can still name them. A posted need and a published solution are also matched
(``proposals``) when their write is new.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from google.protobuf.timestamp_pb2 import Timestamp
from pymongo.client_session import ClientSession

from ssg.contracts.catalog.v1 import events_pb2 as cat
from ssg.contracts.catalog.v1 import funding_pb2, knowledge_product_pb2, need_pb2, solution_pb2
from ssg.contracts.common.v1 import geography_pb2
from ssg.platform.events.consumer import Event, HandlerRegistry, NonRetryableError
from ssg.platform.events.envelope import topic_name
from ssg.recommendation.domain.model import Item, ItemKind
from ssg.recommendation.store.mongo import MongoStore

SOLUTION_TOPIC = topic_name("catalog", "solution")
KNOWLEDGE_TOPIC = topic_name("catalog", "knowledge")
NEED_TOPIC = topic_name("catalog", "need")
FUNDING_TOPIC = topic_name("catalog", "funding")
CATALOG_TOPICS = (SOLUTION_TOPIC, KNOWLEDGE_TOPIC, NEED_TOPIC, FUNDING_TOPIC)


def _time(ts: Timestamp) -> datetime | None:
    return ts.ToDatetime(tzinfo=UTC) if ts.seconds or ts.nanos else None


def _regions(values: Any) -> tuple[str, ...]:
    return tuple(
        geography_pb2.Region.Name(r).removeprefix("REGION_")
        for r in values
        if r != geography_pb2.REGION_UNSPECIFIED
    )


def _text(*parts: str) -> str:
    return "\n".join(p for p in parts if p)


def solution_item(s: solution_pb2.Solution, version: int, active: bool = True) -> Item:
    """The item of a published solution."""
    return Item(
        id=s.id,
        kind=ItemKind.SOLUTION,
        title=s.title,
        text=_text(
            s.summary, s.challenge, s.approach, s.results, s.replicability, " ".join(s.tags)
        ),
        organization_id=s.organization_id,
        sdgs=tuple(int(g) for g in s.sdgs if g),
        targets=tuple(t.code for t in s.sdg_targets),
        countries=tuple(dict.fromkeys([*s.implementing_countries, *s.beneficiary_countries])),
        regions=_regions(s.regions),
        language=s.language,
        modality=solution_pb2.CooperationModality.Name(s.modality).removeprefix(
            "COOPERATION_MODALITY_"
        ),
        published_at=_time(s.publish_time) or _time(s.create_time),
        active=active,
        verified=s.provenance.vouching_organization_verified,
        instance=s.instance,
        version=version,
    )


def knowledge_item(
    k: knowledge_product_pb2.KnowledgeProduct, version: int, active: bool = True
) -> Item:
    """The item of a knowledge product."""
    return Item(
        id=k.id,
        kind=ItemKind.KNOWLEDGE_PRODUCT,
        title=k.title,
        text=_text(k.abstract, ", ".join(k.authors)),
        organization_id=k.publishing_organization_id,
        sdgs=tuple(int(g) for g in k.sdgs if g),
        language=k.language,
        published_at=_time(k.publish_time) or _time(k.create_time),
        active=active,
        instance=k.instance,
        version=version,
    )


def need_item(n: need_pb2.Need, version: int, active: bool = True) -> Item:
    """The item of a need (inactive once closed)."""
    return Item(
        id=n.id,
        kind=ItemKind.NEED,
        title=n.title,
        text=n.problem_statement,
        organization_id=n.seeker_organization_id,
        sdgs=tuple(int(g) for g in n.sdgs if g),
        countries=(n.country,) if n.country else (),
        country=n.country,
        published_at=_time(n.create_time),
        active=active and n.status != need_pb2.NEED_STATUS_CLOSED,
        verified=n.provenance.vouching_organization_verified,
        instance=n.instance,
        version=version,
    )


def funding_item(f: funding_pb2.FundingOpportunity, version: int, active: bool = True) -> Item:
    """The item of a funding opportunity."""
    return Item(
        id=f.id,
        kind=ItemKind.FUNDING_OPPORTUNITY,
        title=f.title,
        text=f.description,
        organization_id=f.funder_organization_id,
        sdgs=tuple(int(g) for g in f.sdgs if g),
        countries=tuple(f.eligible_countries),
        published_at=_time(f.create_time),
        active=active,
        instance=f.instance,
        version=version,
    )


class Proposals(Protocol):
    """What happens after a need or solution was stored (``ssg.recommendation.proposals``)."""

    def for_need(self, need: Item, session: ClientSession | None) -> int:
        """Propose matches for a newly stored need; how many were proposed."""

    def for_solution(self, solution: Item, session: ClientSession | None) -> int:
        """Propose matches of a newly stored solution with open needs."""


def catalog_handlers(store: MongoStore, proposals: Proposals | None = None) -> HandlerRegistry:
    """Handlers of every public catalog event, writing items into store."""
    handlers = HandlerRegistry()

    def register(
        payload_type: type[Any],
        to_item: Callable[[Any, int], Item],
        after: Callable[[Item, Any], int] | None = None,
    ) -> None:
        def apply(event: Event[Any]) -> None:
            item = to_item(event.payload, event.envelope.aggregate_version)
            if not item.id:
                raise NonRetryableError(f"{event.envelope.event_type} without a record id")
            written = store.apply_item(item, event.session)
            if written and after is not None and item.active:
                after(item, event.session)

        handlers.add(f"catalog.{payload_type.DESCRIPTOR.name}", payload_type, apply)

    for_need = proposals.for_need if proposals else None
    for_solution = proposals.for_solution if proposals else None
    register(cat.SolutionPublished, lambda p, v: solution_item(p.solution, v), for_solution)
    register(cat.SolutionUpdated, lambda p, v: solution_item(p.solution, v))
    register(cat.SolutionStale, lambda p, v: solution_item(p.solution, v))
    register(cat.SolutionArchived, lambda p, v: solution_item(p.solution, v, active=False))
    register(cat.KnowledgeProductPublished, lambda p, v: knowledge_item(p.knowledge_product, v))
    register(cat.KnowledgeProductUpdated, lambda p, v: knowledge_item(p.knowledge_product, v))
    register(
        cat.KnowledgeProductArchived,
        lambda p, v: knowledge_item(p.knowledge_product, v, active=False),
    )
    register(cat.NeedPosted, lambda p, v: need_item(p.need, v), for_need)
    register(cat.NeedUpdated, lambda p, v: need_item(p.need, v))
    register(cat.NeedClosed, lambda p, v: need_item(p.need, v, active=False))
    register(cat.FundingPublished, lambda p, v: funding_item(p.funding_opportunity, v))
    register(cat.FundingUpdated, lambda p, v: funding_item(p.funding_opportunity, v))
    register(cat.FundingClosed, lambda p, v: funding_item(p.funding_opportunity, v, active=False))
    return handlers
