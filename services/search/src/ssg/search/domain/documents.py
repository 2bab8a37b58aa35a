"""Search documents from registration and catalog events (event-carried state transfer).

Each event carries its entity's full public state, so one event maps to one action on one
document: ``Upsert`` (the entity is searchable, here is its document) or ``Hide`` (it must not
be found: unverified, not public, unpublished, archived, closed, suspended or erased). Both
carry the envelope's aggregate_version, which the store uses as the document's external
version: an older event can never overwrite what a newer one wrote. A hidden entity keeps a
tombstone document without content (no personal data), so that the version survives too.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC
from typing import Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from ssg.contracts.catalog.v1 import events_pb2 as cat
from ssg.contracts.catalog.v1 import (
    funding_pb2,
    knowledge_product_pb2,
    need_pb2,
    solution_pb2,
)
from ssg.contracts.common.v1 import geography_pb2, organization_type_pb2
from ssg.contracts.registration.v1 import events_pb2 as reg
from ssg.contracts.registration.v1 import expert_pb2, organization_pb2
from ssg.platform.events.envelope import Envelope, EnvelopeError, unpack_payload

Document = dict[str, Any]


class EntityType(enum.StrEnum):
    """The kinds of searchable items; each has its own index."""

    ORGANIZATION = "organization"
    EXPERT = "expert"
    SOLUTION = "solution"
    KNOWLEDGE_PRODUCT = "knowledge_product"
    NEED = "need"
    FUNDING_OPPORTUNITY = "funding_opportunity"


class UnindexableEvent(ValueError):
    """An event that cannot become a document (it goes to the dead-letter topic)."""


@dataclass(frozen=True)
class Upsert:
    """Write document as entity_type/id at version (unless a newer version is stored)."""

    entity_type: EntityType
    id: str
    version: int
    document: Document


@dataclass(frozen=True)
class Hide:
    """Replace entity_type/id by a tombstone at version: it is no longer found."""

    entity_type: EntityType
    id: str
    version: int


IndexAction = Upsert | Hide


@dataclass(frozen=True)
class Provider:
    """What the index knows of an organization that provides, funds or seeks an item."""

    verified: bool
    type: str = ""
    regions: tuple[str, ...] = field(default_factory=tuple)


def tombstone(entity_type: EntityType, id: str) -> Document:
    """The document left in place of a hidden entity: its identity, nothing else."""
    return {"entity_type": entity_type.value, "id": id, "hidden": True}


def provider_ids(actions: Iterable[IndexAction]) -> set[str]:
    """Organization ids whose verification the upserted content documents depend on."""
    return {
        a.document["organization_id"]
        for a in actions
        if isinstance(a, Upsert)
        and a.entity_type is not EntityType.ORGANIZATION
        and a.document.get("organization_id")
    }


def with_provider(action: IndexAction, providers: Mapping[str, Provider]) -> IndexAction:
    """action with its provider's verification, type and (when it has none) regions."""
    if not isinstance(action, Upsert) or action.entity_type is EntityType.ORGANIZATION:
        return action
    provider = providers.get(action.document.get("organization_id", ""))
    if provider is None:
        return action
    doc = dict(action.document)
    doc["verified_provider"] = provider.verified
    if provider.type and not doc.get("organization_types"):
        doc["organization_types"] = [provider.type]
    if not doc.get("regions"):
        doc["regions"] = list(provider.regions)
    return replace(action, document=doc)


def action_for(env: Envelope) -> IndexAction | None:
    """The index action of an event; None for event types search does not index.

    Raises UnindexableEvent when the event is one search handles but cannot use.
    """
    mapper = _MAPPERS.get(env.event_type)
    if mapper is None:
        return None
    payload_type, to_action = mapper
    try:
        payload = unpack_payload(env, payload_type)
    except EnvelopeError as exc:
        raise UnindexableEvent(str(exc)) from None
    if env.aggregate_version < 1:
        raise UnindexableEvent("aggregate_version must be at least 1")
    action = to_action(payload, env.aggregate_version)
    if not action.id:
        raise UnindexableEvent(f"{env.event_type} without an entity id")
    if action.id != env.aggregate_id:
        raise UnindexableEvent(
            f"{env.event_type}: entity id {action.id!r} is not the aggregate id"
            f" {env.aggregate_id!r}"
        )
    return action


# --- field helpers -----------------------------------------------------------------------


def _name(enum_type: Any, value: int, prefix: str) -> str:
    return str(enum_type.Name(value)).removeprefix(prefix)


def _sdgs(values: Iterable[int]) -> list[str]:
    return [str(v) for v in values if v]


def _regions(values: Iterable[int]) -> list[str]:
    return [
        _name(geography_pb2.Region, v, "REGION_")
        for v in values
        if v != geography_pb2.REGION_UNSPECIFIED
    ]


def _time(ts: Timestamp, *, present: bool) -> str | None:
    if not present:
        return None
    return ts.ToDatetime(tzinfo=UTC).isoformat()


def _year_of(date: str) -> int | None:
    head = date[:4]
    return int(head) if len(head) == 4 and head.isdigit() else None


def _text(*parts: str) -> str:
    return "\n".join(p.strip() for p in parts if p and p.strip())


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


def _document(entity_type: EntityType, id: str, **fields: Any) -> Document:
    doc: Document = {"entity_type": entity_type.value, "id": id, "hidden": False}
    doc.update({k: v for k, v in fields.items() if v not in (None, "", [])})
    title = doc.get("title", "")
    # Completion inputs: the title, and the name without a leading article-like word.
    doc["suggest"] = {"input": _unique([title, *doc.pop("suggest_extra", [])])}
    return doc


# --- organizations and experts ------------------------------------------------------------


def organization_action(org: organization_pb2.Organization, version: int) -> IndexAction:
    """Verified organizations are found; any other status hides them."""
    if org.status != organization_pb2.ORGANIZATION_STATUS_VERIFIED:
        return Hide(EntityType.ORGANIZATION, org.id, version)
    org_type = _name(organization_type_pb2.OrganizationType, org.type, "ORGANIZATION_TYPE_")
    return Upsert(
        EntityType.ORGANIZATION,
        org.id,
        version,
        _document(
            EntityType.ORGANIZATION,
            org.id,
            title=org.name,
            body=_text(org.description),
            tags=org.acronym,
            sdgs=_sdgs(org.sdgs),
            regions=_regions(org.regions),
            countries=_unique([org.headquarters_country, *org.operating_countries]),
            organization_types=[org_type] if org.type else [],
            languages=_unique(org.languages),
            organization_id=org.id,
            verified_provider=True,
            published_at=_time(org.verify_time, present=org.HasField("verify_time")),
            reviewed_at=_time(org.verify_time, present=org.HasField("verify_time")),
            suggest_extra=[org.acronym] if org.acronym else [],
        ),
    )


def expert_action(expert: expert_pb2.Expert, version: int) -> IndexAction:
    """Public profiles are found; members-only and hidden ones are not."""
    if expert.visibility != expert_pb2.EXPERT_VISIBILITY_PUBLIC:
        return Hide(EntityType.EXPERT, expert.id, version)
    return Upsert(
        EntityType.EXPERT,
        expert.id,
        version,
        _document(
            EntityType.EXPERT,
            expert.id,
            title=expert.display_name,
            body=_text(expert.biography, expert.affiliation),
            tags=" ; ".join(expert.expertise_areas),
            sdgs=_sdgs(expert.sdgs),
            countries=_unique(expert.countries),
            languages=_unique(expert.languages),
            organization_id=expert.affiliation_organization_id,
            published_at=_time(expert.create_time, present=expert.HasField("create_time")),
            reviewed_at=_time(expert.update_time, present=expert.HasField("update_time")),
        ),
    )


# --- catalog ----------------------------------------------------------------------------


def solution_action(s: solution_pb2.Solution, version: int) -> IndexAction:
    """Published solutions are found; archived (or any other status) are not."""
    if s.status != solution_pb2.SOLUTION_STATUS_PUBLISHED:
        return Hide(EntityType.SOLUTION, s.id, version)
    modality = _name(solution_pb2.CooperationModality, s.modality, "COOPERATION_MODALITY_")
    published = _time(s.publish_time, present=s.HasField("publish_time"))
    confirmed = _time(s.confirm_time, present=s.HasField("confirm_time"))
    return Upsert(
        EntityType.SOLUTION,
        s.id,
        version,
        _document(
            EntityType.SOLUTION,
            s.id,
            title=s.title,
            body=_text(s.summary, s.challenge, s.approach, s.results, s.replicability),
            tags=" ; ".join(s.tags),
            sdgs=_sdgs(s.sdgs),
            sdg_targets=_unique(t.code for t in s.sdg_targets),
            regions=_regions(s.regions),
            countries=_unique([*s.implementing_countries, *s.beneficiary_countries]),
            modalities=[modality] if s.modality else [],
            languages=[s.language] if s.language else [],
            year=_year_of(s.period.start_date) if s.HasField("period") else None,
            organization_id=s.organization_id,
            published_at=published,
            reviewed_at=confirmed or published,
        ),
    )


def knowledge_action(k: knowledge_product_pb2.KnowledgeProduct, version: int) -> IndexAction:
    """Published knowledge products are found; archived ones are not."""
    if k.status != knowledge_product_pb2.KNOWLEDGE_PRODUCT_STATUS_PUBLISHED:
        return Hide(EntityType.KNOWLEDGE_PRODUCT, k.id, version)
    kind = _name(knowledge_product_pb2.KnowledgeProductType, k.type, "KNOWLEDGE_PRODUCT_TYPE_")
    published = _time(k.publish_time, present=k.HasField("publish_time"))
    return Upsert(
        EntityType.KNOWLEDGE_PRODUCT,
        k.id,
        version,
        _document(
            EntityType.KNOWLEDGE_PRODUCT,
            k.id,
            title=k.title,
            body=_text(k.abstract),
            tags=" ; ".join([*k.authors, kind.replace("_", " ").lower() if k.type else ""]),
            sdgs=_sdgs(k.sdgs),
            languages=[k.language] if k.language else [],
            year=k.year or None,
            organization_id=k.publishing_organization_id,
            published_at=published,
            reviewed_at=_time(k.update_time, present=k.HasField("update_time")) or published,
        ),
    )


def need_action(n: need_pb2.Need, version: int) -> IndexAction:
    """Open needs are found; matched, in-progress and closed ones are not."""
    if n.status != need_pb2.NEED_STATUS_OPEN:
        return Hide(EntityType.NEED, n.id, version)
    created = _time(n.create_time, present=n.HasField("create_time"))
    kinds = [_name(need_pb2.SupportKind, k, "SUPPORT_KIND_") for k in n.support_kinds if k]
    return Upsert(
        EntityType.NEED,
        n.id,
        version,
        _document(
            EntityType.NEED,
            n.id,
            title=n.title,
            body=_text(n.problem_statement),
            tags=" ; ".join(k.replace("_", " ").lower() for k in kinds),
            sdgs=_sdgs(n.sdgs),
            countries=[n.country] if n.country else [],
            year=int(created[:4]) if created else None,
            organization_id=n.seeker_organization_id,
            published_at=created,
            reviewed_at=_time(n.update_time, present=n.HasField("update_time")) or created,
        ),
    )


def funding_action(f: funding_pb2.FundingOpportunity, version: int) -> IndexAction:
    """Open funding opportunities are found; drafts and closed ones are not."""
    if f.status != funding_pb2.FUNDING_STATUS_OPEN:
        return Hide(EntityType.FUNDING_OPPORTUNITY, f.id, version)
    created = _time(f.create_time, present=f.HasField("create_time"))
    types = [
        _name(organization_type_pb2.OrganizationType, t, "ORGANIZATION_TYPE_")
        for t in f.eligible_organization_types
        if t
    ]
    return Upsert(
        EntityType.FUNDING_OPPORTUNITY,
        f.id,
        version,
        _document(
            EntityType.FUNDING_OPPORTUNITY,
            f.id,
            title=f.title,
            body=_text(f.description),
            sdgs=_sdgs(f.sdgs),
            countries=_unique(f.eligible_countries),
            organization_types=types,
            year=int(created[:4]) if created else None,
            organization_id=f.funder_organization_id,
            published_at=created,
            reviewed_at=_time(f.update_time, present=f.HasField("update_time")) or created,
        ),
    )


def _erased(e: reg.ExpertErased, version: int) -> IndexAction:
    return Hide(EntityType.EXPERT, e.expert_id, version)


def _hidden(entity_type: EntityType, id_of: Callable[[Any], str]) -> Callable[[Any, int], Hide]:
    return lambda payload, version: Hide(entity_type, id_of(payload), version)


_Mapper = tuple[type[Message], Callable[[Any, int], IndexAction]]


def _registry() -> dict[str, _Mapper]:
    org = lambda p, v: organization_action(p.organization, v)  # noqa: E731
    expert = lambda p, v: expert_action(p.expert, v)  # noqa: E731
    solution = lambda p, v: solution_action(p.solution, v)  # noqa: E731
    knowledge = lambda p, v: knowledge_action(p.knowledge_product, v)  # noqa: E731
    need = lambda p, v: need_action(p.need, v)  # noqa: E731
    funding = lambda p, v: funding_action(p.funding_opportunity, v)  # noqa: E731
    table: dict[type[Message], Callable[[Any, int], IndexAction]] = {
        reg.OrganizationRegistered: org,
        reg.OrganizationUpdated: org,
        reg.OrganizationVerified: org,
        reg.OrganizationRejected: org,
        reg.OrganizationSuspended: org,
        reg.OrganizationMerged: org,
        reg.VerificationExpired: org,
        reg.ExpertRegistered: expert,
        reg.ExpertUpdated: expert,
        reg.ExpertErased: _erased,
        cat.SolutionPublished: solution,
        cat.SolutionUpdated: solution,
        cat.SolutionStale: solution,
        # Archived: whatever status the payload shows, the solution is withdrawn.
        cat.SolutionArchived: _hidden(EntityType.SOLUTION, lambda p: p.solution.id),
        cat.KnowledgeProductPublished: knowledge,
        cat.KnowledgeProductUpdated: knowledge,
        cat.KnowledgeProductArchived: _hidden(
            EntityType.KNOWLEDGE_PRODUCT, lambda p: p.knowledge_product.id
        ),
        cat.NeedPosted: need,
        cat.NeedUpdated: need,
        cat.NeedClosed: _hidden(EntityType.NEED, lambda p: p.need.id),
        cat.FundingPublished: funding,
        cat.FundingUpdated: funding,
        cat.FundingClosed: _hidden(
            EntityType.FUNDING_OPPORTUNITY, lambda p: p.funding_opportunity.id
        ),
    }
    out: dict[str, _Mapper] = {}
    for payload_type, mapper in table.items():
        # ssg.<domain>.v1.<Name> -> "<domain>.<Name>", the envelope's event_type.
        domain = payload_type.DESCRIPTOR.full_name.split(".")[1]
        out[f"{domain}.{payload_type.DESCRIPTOR.name}"] = (payload_type, mapper)
    return out


_MAPPERS = _registry()
INDEXED_EVENT_TYPES = frozenset(_MAPPERS)
