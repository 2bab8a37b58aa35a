# Proto enum fields take plain ints here; the generated stubs type them as NewTypes.
# mypy: disable-error-code="arg-type,list-item"
"""Envelopes of registration and catalog events, as their services publish them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from google.protobuf.message import Message

from ssg.contracts.catalog.v1 import events_pb2 as cat
from ssg.contracts.catalog.v1 import funding_pb2, knowledge_product_pb2, need_pb2, solution_pb2
from ssg.contracts.common.v1 import geography_pb2, organization_type_pb2
from ssg.contracts.events.v1 import envelope_pb2
from ssg.contracts.registration.v1 import events_pb2 as reg
from ssg.contracts.registration.v1 import expert_pb2, organization_pb2
from ssg.platform.events.envelope import Origin, build_envelope

ORIGIN = Origin("test-producer", "global", "t1")
NOW = datetime(2026, 11, 1, tzinfo=UTC)


def new_id() -> str:
    """A fresh entity id as the services assign them."""
    return uuid.uuid4().hex


def envelope(
    domain: str, aggregate_id: str, version: int, payload: Message
) -> envelope_pb2.Envelope:
    """The envelope of payload about version of aggregate_id."""
    return build_envelope(
        ORIGIN,
        f"{domain}.{payload.DESCRIPTOR.name}",
        aggregate_id,
        version,
        payload,
        occurred_at=NOW,
    )


def organization(
    id: str,
    name: str = "Lakeside Water Alliance",
    status: int = organization_pb2.ORGANIZATION_STATUS_VERIFIED,
    **fields: object,
) -> organization_pb2.Organization:
    """An organization message."""
    org = organization_pb2.Organization(
        id=id,
        name=name,
        acronym="LWA",
        type=organization_type_pb2.ORGANIZATION_TYPE_NGO,
        headquarters_country="KEN",
        operating_countries=["UGA"],
        regions=[geography_pb2.REGION_AFRICA],
        sdgs=[6],
        description="Community water committees and solar pumping.",
        languages=["en", "sw"],
        status=status,
        **fields,
    )
    org.verify_time.FromDatetime(NOW)
    return org


def org_event(
    org: organization_pb2.Organization, version: int, kind: type[Message] = reg.OrganizationVerified
) -> envelope_pb2.Envelope:
    """An organization event carrying org."""
    return envelope("registration", org.id, version, kind(organization=org))


def expert_event(expert: expert_pb2.Expert, version: int) -> envelope_pb2.Envelope:
    """ExpertUpdated carrying expert."""
    return envelope("registration", expert.id, version, reg.ExpertUpdated(expert=expert))


def solution(
    id: str,
    title: str = "Solar water pumps for smallholder irrigation",
    organization_id: str = "",
    status: int = solution_pb2.SOLUTION_STATUS_PUBLISHED,
    sdgs: tuple[int, ...] = (6, 7),
    **fields: object,
) -> solution_pb2.Solution:
    """A solution message."""
    values: dict[str, object] = {
        "summary": "Farmers share solar pumps to irrigate fields in the dry season.",
        "approach": "Village committees run the pumps and collect small fees.",
        "implementing_countries": ["KEN"],
        "regions": [geography_pb2.REGION_AFRICA],
        "modality": solution_pb2.COOPERATION_MODALITY_SOUTH_SOUTH,
        "language": "en",
        "tags": ["irrigation", "solar"],
        "period": solution_pb2.Period(start_date="2021-03-01"),
        **fields,
    }
    s = solution_pb2.Solution(
        id=id,
        title=title,
        sdgs=list(sdgs),
        organization_id=organization_id or new_id(),
        status=status,
        **values,
    )
    s.publish_time.FromDatetime(NOW)
    return s


def solution_event(
    s: solution_pb2.Solution, version: int, kind: type[Message] = cat.SolutionPublished
) -> envelope_pb2.Envelope:
    """A solution event (published by default) carrying s."""
    return envelope("catalog", s.id, version, kind(solution=s))


def need(id: str, status: int = need_pb2.NEED_STATUS_OPEN, **fields: object) -> need_pb2.Need:
    """A need message."""
    values: dict[str, object] = {"seeker_organization_id": new_id(), **fields}
    n = need_pb2.Need(
        id=id,
        title="Drip irrigation know-how for arid districts",
        problem_statement="Our farmers lose half the water they pump.",
        sdgs=[2, 6],
        country="NER",
        support_kinds=[need_pb2.SUPPORT_KIND_TECHNICAL_ASSISTANCE],
        status=status,
        **values,
    )
    n.create_time.FromDatetime(NOW)
    return n


def knowledge(id: str, **fields: object) -> knowledge_product_pb2.KnowledgeProduct:
    """A published knowledge product message."""
    return knowledge_product_pb2.KnowledgeProduct(
        id=id,
        title="Guía de bombas solares",
        type=knowledge_product_pb2.KNOWLEDGE_PRODUCT_TYPE_TOOLKIT,
        authors=["Ana Ruiz"],
        year=2023,
        abstract="Cómo instalar bombas de agua solares en comunidades rurales.",
        sdgs=[6, 7],
        language="es",
        status=knowledge_product_pb2.KNOWLEDGE_PRODUCT_STATUS_PUBLISHED,
        publishing_organization_id=new_id(),
        **fields,
    )


def funding(
    id: str, status: int = funding_pb2.FUNDING_STATUS_OPEN
) -> funding_pb2.FundingOpportunity:
    """A funding opportunity message."""
    return funding_pb2.FundingOpportunity(
        id=id,
        funder_organization_id=new_id(),
        title="Fonds pour l'eau potable",
        description="Subventions pour des projets d'accès à l'eau potable.",
        eligible_countries=["SEN", "MLI"],
        eligible_organization_types=[organization_type_pb2.ORGANIZATION_TYPE_NGO],
        sdgs=[6],
        status=status,
    )


def catalog_event(payload: Message, aggregate_id: str, version: int) -> envelope_pb2.Envelope:
    """Any catalog event."""
    return envelope("catalog", aggregate_id, version, payload)


def expert(id: str, visibility: int = expert_pb2.EXPERT_VISIBILITY_PUBLIC) -> expert_pb2.Expert:
    """An expert profile message."""
    return expert_pb2.Expert(
        id=id,
        display_name="Nadia Osei",
        expertise_areas=["solar mini-grids"],
        sdgs=[7],
        languages=["en", "fr"],
        countries=["GHA"],
        biography="Designs village mini-grids.",
        visibility=visibility,
    )
