"""Translation between domain objects and ``ssg.registration.v1`` messages, shared by the gRPC
servicer (requests and replies) and the event builders (payloads)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from ssg.contracts.common.v1 import geography_pb2, organization_type_pb2
from ssg.contracts.registration.v1 import expert_pb2, organization_pb2
from ssg.registration.domain.model import (
    AuditEntry,
    DuplicateCandidate,
    Expert,
    Member,
    Organization,
    OrganizationStatus,
)
from ssg.registration.domain.validation import ExpertDraft, OrganizationDraft

# Proto enum wrappers and the prefix of their value names.
_TYPE = (organization_type_pb2.OrganizationType, "ORGANIZATION_TYPE_")
_REGION = (geography_pb2.Region, "REGION_")
_STATUS = (organization_pb2.OrganizationStatus, "ORGANIZATION_STATUS_")
_ROLE = (organization_pb2.MemberRole, "MEMBER_ROLE_")
_VISIBILITY = (expert_pb2.ExpertVisibility, "EXPERT_VISIBILITY_")


def enum_name(enum: tuple[Any, str], number: int) -> str:
    """The value's name without prefix; '' for 0 (unset) and '#<n>' for an undefined number."""
    wrapper, prefix = enum
    if number == 0:
        return ""
    try:
        return str(wrapper.Name(number)).removeprefix(prefix)
    except ValueError:
        return f"#{number}"


def enum_number(enum: tuple[Any, str], name: str) -> int:
    """The proto number of a domain enum value's name."""
    wrapper, prefix = enum
    return int(wrapper.Value(prefix + name))


def type_name(number: int) -> str:
    """OrganizationType number -> domain name ('' unset, '#n' unknown)."""
    return enum_name(_TYPE, number)


def region_name(number: int) -> str:
    """Region number -> domain name ('' unset, '#n' unknown)."""
    return enum_name(_REGION, number)


def status_name(number: int) -> str:
    """OrganizationStatus number -> domain name ('' unset, '#n' unknown)."""
    return enum_name(_STATUS, number)


def role_name(number: int) -> str:
    """MemberRole number -> domain name ('' unset, '#n' unknown)."""
    return enum_name(_ROLE, number)


def _ts(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def organization_draft(message: organization_pb2.Organization) -> OrganizationDraft:
    """The caller's organization fields, unchecked (output-only fields ignored)."""
    return OrganizationDraft(
        name=message.name,
        acronym=message.acronym,
        type=type_name(message.type),
        headquarters_country=message.headquarters_country,
        operating_countries=list(message.operating_countries),
        regions=[region_name(r) for r in message.regions],
        sdgs=list(message.sdgs),
        website=message.website,
        contact_email=message.contact_email,
        description=message.description,
        languages=list(message.languages),
        parent_organization_id=message.parent_organization_id,
    )


def organization_to_proto(org: Organization) -> organization_pb2.Organization:
    """The full public state of an organization."""
    p = org.profile
    return organization_pb2.Organization(
        id=org.id,
        name=p.name,
        acronym=p.acronym,
        type=enum_number(_TYPE, p.type.value),  # type: ignore[arg-type]
        headquarters_country=p.headquarters_country,
        operating_countries=p.operating_countries,
        regions=[enum_number(_REGION, r.value) for r in p.regions],  # type: ignore[misc]
        sdgs=p.sdgs,  # type: ignore[arg-type]
        website=p.website,
        contact_email=p.contact_email,
        description=p.description,
        languages=p.languages,
        parent_organization_id=p.parent_organization_id,
        instance=org.instance,
        status=status_number(org.status),  # type: ignore[arg-type]
        version=org.version,
        create_time=_ts(org.created_at),
        update_time=_ts(org.updated_at),
        verify_time=_ts(org.verified_at),
        verification_expire_time=_ts(org.verification_expires_at),
        reconfirmation_required=org.reconfirmation_required,
        merged_into=org.merged_into,
        status_reason=org.status_reason,
    )


def status_number(status: OrganizationStatus | None) -> int:
    """OrganizationStatus proto number of a domain status (0 for None)."""
    return enum_number(_STATUS, status.value) if status else 0


def duplicate_to_proto(candidate: DuplicateCandidate) -> organization_pb2.DuplicateCandidate:
    """A duplicate candidate as the API shows it."""
    return organization_pb2.DuplicateCandidate(
        organization_id=candidate.organization_id,
        name=candidate.name,
        score=candidate.score,
        reasons=candidate.reasons,
    )


def audit_to_proto(entry: AuditEntry) -> organization_pb2.AuditEntry:
    """An audit entry as the API shows it."""
    return organization_pb2.AuditEntry(
        organization_id=entry.organization_id,
        action=entry.action,
        actor=entry.actor,
        actor_roles=entry.actor_roles,
        from_status=status_number(entry.from_status),  # type: ignore[arg-type]
        to_status=status_number(entry.to_status),  # type: ignore[arg-type]
        reason=entry.reason,
        evidence_note=entry.evidence_note,
        version=entry.version,
        time=_ts(entry.at),
    )


def member_to_proto(member: Member) -> organization_pb2.Member:
    """A membership as the API shows it."""
    return organization_pb2.Member(
        organization_id=member.organization_id,
        user_id=member.user_id,
        role=enum_number(_ROLE, member.role.value),  # type: ignore[arg-type]
        display_name=member.display_name,
        added_by=member.added_by,
        add_time=_ts(member.added_at),
    )


def expert_draft(message: expert_pb2.Expert) -> ExpertDraft:
    """The caller's expert fields, unchecked (output-only fields ignored)."""
    return ExpertDraft(
        display_name=message.display_name,
        visibility=enum_name(_VISIBILITY, message.visibility),
        expertise_areas=list(message.expertise_areas),
        sdgs=list(message.sdgs),
        languages=list(message.languages),
        countries=list(message.countries),
        affiliation_organization_id=message.affiliation_organization_id,
        affiliation=message.affiliation,
        biography=message.biography,
    )


def expert_to_proto(expert: Expert) -> expert_pb2.Expert:
    """The full public state of an expert (never its owner)."""
    p = expert.profile
    return expert_pb2.Expert(
        id=expert.id,
        display_name=p.display_name,
        expertise_areas=p.expertise_areas,
        sdgs=p.sdgs,  # type: ignore[arg-type]
        languages=p.languages,
        countries=p.countries,
        affiliation_organization_id=p.affiliation_organization_id,
        affiliation=p.affiliation,
        biography=p.biography,
        visibility=enum_number(_VISIBILITY, p.visibility.value),  # type: ignore[arg-type]
        instance=expert.instance,
        version=expert.version,
        create_time=_ts(expert.created_at),
        update_time=_ts(expert.updated_at),
    )
