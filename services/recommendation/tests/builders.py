"""Catalog and registration envelopes, as the other services publish them, for the tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ssg.contracts.catalog.v1 import events_pb2 as cat
from ssg.contracts.catalog.v1 import need_pb2, solution_pb2
from ssg.contracts.common.v1 import geography_pb2, sdg_pb2
from ssg.contracts.events.v1 import envelope_pb2
from ssg.contracts.registration.v1 import events_pb2 as reg
from ssg.contracts.registration.v1 import expert_pb2, organization_pb2
from ssg.platform.events.envelope import Origin, build_envelope

CATALOG = Origin("catalog", "africa", "test-catalog")
REGISTRATION = Origin("registration", "africa", "test-registration")


def solution(
    id: str,
    title: str,
    summary: str,
    sdgs: list[Any],
    org: str = "o-prov",
    *,
    countries: tuple[str, ...] = ("KEN",),
    regions: tuple[Any, ...] = (geography_pb2.REGION_AFRICA,),
    age_days: int = 30,
    targets: tuple[str, ...] = (),
    language: str = "en",
) -> solution_pb2.Solution:
    """A published solution message."""
    s = solution_pb2.Solution(
        id=id,
        title=title,
        summary=summary,
        sdgs=sdgs,
        sdg_targets=[sdg_pb2.SdgTarget(code=t) for t in targets],
        implementing_countries=list(countries),
        regions=list(regions),
        organization_id=org,
        status=solution_pb2.SOLUTION_STATUS_PUBLISHED,
        language=language,
        modality=solution_pb2.COOPERATION_MODALITY_SOUTH_SOUTH,
    )
    s.publish_time.FromDatetime(datetime.now(UTC) - timedelta(days=age_days))
    return s


def solution_event(kind: Any, s: solution_pb2.Solution, version: int) -> envelope_pb2.Envelope:
    """A catalog solution envelope of kind carrying s."""
    return build_envelope(
        CATALOG, f"catalog.{kind.DESCRIPTOR.name}", s.id, version, kind(solution=s)
    )


def need_event(
    id: str,
    title: str,
    problem: str,
    sdgs: list[Any],
    seeker: str,
    country: str = "TCD",
    version: int = 1,
) -> envelope_pb2.Envelope:
    """A NeedPosted envelope."""
    n = need_pb2.Need(
        id=id,
        title=title,
        problem_statement=problem,
        sdgs=sdgs,
        seeker_organization_id=seeker,
        country=country,
        status=need_pb2.NEED_STATUS_OPEN,
    )
    n.create_time.FromDatetime(datetime.now(UTC))
    return build_envelope(CATALOG, "catalog.NeedPosted", id, version, cat.NeedPosted(need=n))


def organization_event(
    id: str,
    verified: bool,
    version: int = 2,
    regions: tuple[Any, ...] = (geography_pb2.REGION_AFRICA,),
    languages: tuple[str, ...] = ("en",),
) -> envelope_pb2.Envelope:
    """An organization envelope (verified or pending) with its full state."""
    status = (
        organization_pb2.ORGANIZATION_STATUS_VERIFIED
        if verified
        else organization_pb2.ORGANIZATION_STATUS_PENDING
    )
    kind = reg.OrganizationVerified if verified else reg.OrganizationRegistered
    org = organization_pb2.Organization(
        id=id,
        name=f"Org {id}",
        status=status,
        regions=list(regions),
        languages=list(languages),
        version=version,
    )
    return build_envelope(
        REGISTRATION, f"registration.{kind.DESCRIPTOR.name}", id, version, kind(organization=org)
    )


def expert_event(
    id: str,
    organization: str,
    *,
    expertise: tuple[str, ...] = (),
    sdgs: tuple[Any, ...] = (),
    visibility: Any = None,
    version: int = 1,
    erased: bool = False,
) -> envelope_pb2.Envelope:
    """An ExpertRegistered (or ExpertErased) envelope."""
    if erased:
        payload: Any = reg.ExpertErased(expert_id=id)
        kind = "ExpertErased"
    else:
        payload = reg.ExpertRegistered(
            expert=expert_pb2.Expert(
                id=id,
                display_name=f"Expert {id}",
                expertise_areas=list(expertise),
                sdgs=list(sdgs),
                affiliation_organization_id=organization,
                visibility=visibility or expert_pb2.EXPERT_VISIBILITY_PUBLIC,
                version=version,
            )
        )
        kind = "ExpertRegistered"
    return build_envelope(REGISTRATION, f"registration.{kind}", id, version, payload)
