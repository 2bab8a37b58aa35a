"""The registration domain's entities and value types (plain data, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class OrganizationStatus(StrEnum):
    """Where an organization stands in its verification lifecycle."""

    PENDING = "PENDING"
    VERIFIED = "VERIFIED"
    REJECTED = "REJECTED"
    SUSPENDED = "SUSPENDED"
    MERGED = "MERGED"


# Statuses of an organization that still exists on its own (not folded away or refused).
OPEN_STATUSES = frozenset(
    {OrganizationStatus.PENDING, OrganizationStatus.VERIFIED, OrganizationStatus.SUSPENDED}
)


class OrganizationType(StrEnum):
    """Kinds of organization; names match ssg.common.v1.OrganizationType without its prefix."""

    GOVERNMENT = "GOVERNMENT"
    UN_ENTITY = "UN_ENTITY"
    INTERGOVERNMENTAL = "INTERGOVERNMENTAL"
    NGO = "NGO"
    THINK_TANK = "THINK_TANK"
    ACADEMIA = "ACADEMIA"
    PRIVATE_SECTOR = "PRIVATE_SECTOR"
    FOUNDATION = "FOUNDATION"
    DEVELOPMENT_BANK = "DEVELOPMENT_BANK"
    SOUTH_SOUTH_NETWORK = "SOUTH_SOUTH_NETWORK"


class Region(StrEnum):
    """UN regional groupings; names match ssg.common.v1.Region without its prefix."""

    AFRICA = "AFRICA"
    ARAB_STATES = "ARAB_STATES"
    ASIA_PACIFIC = "ASIA_PACIFIC"
    EUROPE_CENTRAL_ASIA = "EUROPE_CENTRAL_ASIA"
    LATIN_AMERICA_CARIBBEAN = "LATIN_AMERICA_CARIBBEAN"
    NORTH_AMERICA = "NORTH_AMERICA"
    WESTERN_EUROPE = "WESTERN_EUROPE"


class MemberRole(StrEnum):
    """What a person may do for their organization."""

    ADMIN = "ADMIN"
    MEMBER = "MEMBER"


class ExpertVisibility(StrEnum):
    """Who may see an expert profile."""

    PUBLIC = "PUBLIC"
    MEMBERS_ONLY = "MEMBERS_ONLY"
    HIDDEN = "HIDDEN"


@dataclass(frozen=True)
class OrganizationProfile:
    """The fields a registrant provides and members may edit (validated)."""

    name: str
    type: OrganizationType
    headquarters_country: str
    acronym: str = ""
    operating_countries: tuple[str, ...] = ()
    regions: tuple[Region, ...] = ()
    sdgs: tuple[int, ...] = ()
    website: str = ""
    contact_email: str = ""
    description: str = ""
    languages: tuple[str, ...] = ()
    parent_organization_id: str = ""


EDITABLE_ORGANIZATION_FIELDS: tuple[str, ...] = (
    "name",
    "acronym",
    "type",
    "headquarters_country",
    "operating_countries",
    "regions",
    "sdgs",
    "website",
    "contact_email",
    "description",
    "languages",
    "parent_organization_id",
)


@dataclass(frozen=True)
class Organization:
    """A registered organization: its profile plus lifecycle state."""

    id: str
    profile: OrganizationProfile
    instance: str
    status: OrganizationStatus
    version: int
    created_at: datetime
    updated_at: datetime
    verified_at: datetime | None = None
    verification_expires_at: datetime | None = None
    reconfirmation_required: bool = False
    merged_into: str = ""
    status_reason: str = ""
    possible_duplicates: tuple[DuplicateCandidate, ...] = ()


@dataclass(frozen=True)
class DuplicateCandidate:
    """An existing organization that looks like a new one, with how and why."""

    organization_id: str
    name: str
    score: float
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class AuditEntry:
    """One recorded change of an organization: who, when, what and why."""

    organization_id: str
    action: str
    actor: str
    actor_roles: tuple[str, ...]
    from_status: OrganizationStatus | None
    to_status: OrganizationStatus | None
    version: int
    at: datetime
    reason: str = ""
    evidence_note: str = ""


@dataclass(frozen=True)
class Member:
    """A person (their identity subject) belonging to an organization."""

    organization_id: str
    user_id: str
    role: MemberRole
    added_by: str
    added_at: datetime
    display_name: str = ""


@dataclass(frozen=True)
class ExpertProfile:
    """The fields of an expert profile its owner provides and edits (validated)."""

    display_name: str
    visibility: ExpertVisibility
    expertise_areas: tuple[str, ...] = ()
    sdgs: tuple[int, ...] = ()
    languages: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    affiliation_organization_id: str = ""
    affiliation: str = ""
    biography: str = ""


EDITABLE_EXPERT_FIELDS: tuple[str, ...] = (
    "display_name",
    "expertise_areas",
    "sdgs",
    "languages",
    "countries",
    "affiliation_organization_id",
    "affiliation",
    "biography",
    "visibility",
)


@dataclass(frozen=True)
class Expert:
    """An expert profile and who owns it (the owner is never published)."""

    id: str
    profile: ExpertProfile
    owner: str
    instance: str
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class RequestRecord:
    """What an idempotent command produced the first time it ran under a request id."""

    key: str
    kind: str
    fingerprint: str
    entity_id: str
    created_at: datetime
    duplicates: tuple[DuplicateCandidate, ...] = field(default=())
