"""The catalog's records as plain immutable values.

Field names follow ``ssg.catalog.v1`` so that mapping stays mechanical. Each record keeps what
its owners write (``*Content``) apart from what the service decides (status, version,
provenance, times).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class SolutionStatus(StrEnum):
    """Review workflow of a solution."""

    DRAFT = "DRAFT"
    SUBMITTED = "SUBMITTED"
    IN_REVIEW = "IN_REVIEW"
    PUBLISHED = "PUBLISHED"
    CHANGES_REQUESTED = "CHANGES_REQUESTED"
    REJECTED = "REJECTED"
    ARCHIVED = "ARCHIVED"


class KnowledgeStatus(StrEnum):
    """Lifecycle of a knowledge product."""

    DRAFT = "DRAFT"
    PUBLISHED = "PUBLISHED"
    ARCHIVED = "ARCHIVED"


class NeedStatus(StrEnum):
    """Lifecycle of a need."""

    OPEN = "OPEN"
    MATCHED = "MATCHED"
    IN_PROGRESS = "IN_PROGRESS"
    CLOSED = "CLOSED"


class FundingStatus(StrEnum):
    """Lifecycle of a funding opportunity."""

    DRAFT = "DRAFT"
    OPEN = "OPEN"
    CLOSED = "CLOSED"


class Modality(StrEnum):
    """Cooperation modality of a solution."""

    SOUTH_SOUTH = "SOUTH_SOUTH"
    TRIANGULAR = "TRIANGULAR"
    EAST_EAST = "EAST_EAST"


class PartnerRole(StrEnum):
    """What a partner did in a solution."""

    PROVIDER = "PROVIDER"
    BENEFICIARY = "BENEFICIARY"
    FACILITATOR = "FACILITATOR"
    FUNDER = "FUNDER"


class Source(StrEnum):
    """How a record entered the catalog."""

    MANUAL = "MANUAL"
    IMPORT = "IMPORT"
    FEDERATED = "FEDERATED"
    # Proposed by an internal system through the ingress bridge (a draft until submitted).
    INGRESS = "INGRESS"


class Criterion(StrEnum):
    """The review checklist."""

    EVIDENCE_OF_RESULTS = "EVIDENCE_OF_RESULTS"
    REPLICABILITY = "REPLICABILITY"
    PARTNERSHIP = "PARTNERSHIP"
    SUSTAINABILITY = "SUSTAINABILITY"
    INNOVATION = "INNOVATION"
    SDG_ALIGNMENT = "SDG_ALIGNMENT"


class ReviewOutcome(StrEnum):
    """A reviewer's decision."""

    APPROVE = "APPROVE"
    REQUEST_CHANGES = "REQUEST_CHANGES"
    REJECT = "REJECT"


class KnowledgeType(StrEnum):
    """Kind of knowledge product."""

    RESEARCH_REPORT = "RESEARCH_REPORT"
    POLICY_BRIEF = "POLICY_BRIEF"
    CASE_STUDY = "CASE_STUDY"
    TOOLKIT = "TOOLKIT"
    DATASET = "DATASET"


class SupportKind(StrEnum):
    """Kind of support a need asks for."""

    TECHNICAL_ASSISTANCE = "TECHNICAL_ASSISTANCE"
    KNOWLEDGE_EXCHANGE = "KNOWLEDGE_EXCHANGE"
    TECHNOLOGY_TRANSFER = "TECHNOLOGY_TRANSFER"
    CAPACITY_BUILDING = "CAPACITY_BUILDING"
    FINANCING = "FINANCING"


class OrganizationStatus(StrEnum):
    """An organization's status as registration last announced it."""

    PENDING = "PENDING"
    VERIFIED = "VERIFIED"
    REJECTED = "REJECTED"
    SUSPENDED = "SUSPENDED"
    MERGED = "MERGED"


@dataclass(frozen=True)
class Indicator:
    """One measured result."""

    name: str = ""
    baseline: str = ""
    value: str = ""
    unit: str = ""
    year: int = 0


@dataclass(frozen=True)
class Partner:
    """A partner organization and its role."""

    organization_id: str = ""
    role: str = ""


@dataclass(frozen=True)
class Period:
    """When a solution ran, as ISO dates; end_date '' means ongoing."""

    start_date: str = ""
    end_date: str = ""


@dataclass(frozen=True)
class Money:
    """An amount in one currency (units + nanos, like google.type.Money)."""

    currency_code: str = ""
    units: int = 0
    nanos: int = 0


@dataclass(frozen=True)
class Resource:
    """A link."""

    title: str = ""
    url: str = ""


@dataclass(frozen=True)
class Contact:
    """Who to ask."""

    name: str = ""
    email: str = ""


@dataclass(frozen=True)
class Provenance:
    """Who stands behind a record and where it came from."""

    submitted_by: str = ""
    vouching_organization_id: str = ""
    # Filled from the organizations read model when a record is shown or published.
    vouching_organization_verified: bool = False
    reviewed_by: str = ""
    review_time: datetime | None = None
    source: str = Source.MANUAL
    external_id: str = ""
    origin_instance: str = ""
    submit_time: datetime | None = None
    # The internal system that proposed it (source INGRESS); external_id is its id there.
    producer: str = ""


@dataclass(frozen=True)
class SolutionContent:
    """What a solution's organization writes."""

    title: str = ""
    summary: str = ""
    challenge: str = ""
    approach: str = ""
    results: str = ""
    indicators: tuple[Indicator, ...] = ()
    sdgs: tuple[int, ...] = ()
    sdg_targets: tuple[str, ...] = ()
    implementing_countries: tuple[str, ...] = ()
    beneficiary_countries: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    modality: str = ""
    partners: tuple[Partner, ...] = ()
    period: Period | None = None
    budget: Money | None = None
    replicability: str = ""
    prerequisites: str = ""
    resources: tuple[Resource, ...] = ()
    contact: Contact | None = None
    language: str = ""
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Solution:
    """A good practice and where it stands."""

    id: str
    organization_id: str
    content: SolutionContent
    provenance: Provenance
    instance: str
    status: SolutionStatus
    version: int
    create_time: datetime
    update_time: datetime
    publish_time: datetime | None = None
    confirm_time: datetime | None = None
    stale: bool = False
    # Id of the review that approved the current content ('' when none does).
    approved_review_id: str = ""


@dataclass(frozen=True)
class CriterionScore:
    """The score of one checklist item."""

    criterion: str = ""
    score: int = 0
    comment: str = ""


@dataclass(frozen=True)
class Review:
    """One recorded review."""

    id: str
    solution_id: str
    solution_version: int
    scores: tuple[CriterionScore, ...]
    outcome: ReviewOutcome
    comment: str
    reviewer: str
    create_time: datetime
    total_score: int
    passed: bool


@dataclass(frozen=True)
class KnowledgeContent:
    """What a knowledge product's organization writes."""

    title: str = ""
    type: str = ""
    authors: tuple[str, ...] = ()
    year: int = 0
    abstract: str = ""
    sdgs: tuple[int, ...] = ()
    url: str = ""
    language: str = ""


@dataclass(frozen=True)
class KnowledgeProduct:
    """A publication."""

    id: str
    publishing_organization_id: str
    content: KnowledgeContent
    provenance: Provenance
    instance: str
    status: KnowledgeStatus
    version: int
    create_time: datetime
    update_time: datetime
    publish_time: datetime | None = None


@dataclass(frozen=True)
class NeedContent:
    """What a seeker writes."""

    title: str = ""
    problem_statement: str = ""
    sdgs: tuple[int, ...] = ()
    country: str = ""
    support_kinds: tuple[str, ...] = ()
    deadline: str = ""


@dataclass(frozen=True)
class Need:
    """A request for a solution."""

    id: str
    seeker_organization_id: str
    content: NeedContent
    provenance: Provenance
    instance: str
    status: NeedStatus
    version: int
    create_time: datetime
    update_time: datetime
    close_reason: str = ""


@dataclass(frozen=True)
class FundingContent:
    """What a funder writes."""

    title: str = ""
    description: str = ""
    eligible_countries: tuple[str, ...] = ()
    eligible_organization_types: tuple[str, ...] = ()
    sdgs: tuple[int, ...] = ()
    amount_min: Money | None = None
    amount_max: Money | None = None
    deadline: datetime | None = None
    url: str = ""


@dataclass(frozen=True)
class FundingOpportunity:
    """A call for proposals."""

    id: str
    funder_organization_id: str
    content: FundingContent
    provenance: Provenance
    instance: str
    status: FundingStatus
    version: int
    create_time: datetime
    update_time: datetime
    close_time: datetime | None = None
    close_reason: str = ""


@dataclass(frozen=True)
class OrganizationRef:
    """What the catalog knows of a registered organization (its read model)."""

    id: str
    name: str
    status: OrganizationStatus
    instance: str
    country: str = ""
    type: str = ""
    merged_into: str = ""
    version: int = 0
    regions: tuple[str, ...] = field(default_factory=tuple)
