"""The store port: what the service layer needs from its datastore, and nothing about how.

``MongoStore`` implements it on MongoDB; the service-layer tests use it too, each on a database
of its own, rather than a second implementation that could diverge from MongoDB. Writes happen only inside ``Store.atomically``: state, audit entries,
idempotency records and outbox events of one command commit together or not at all.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from ssg.contracts.events.v1 import envelope_pb2
from ssg.platform.proposals import ProposalLink
from ssg.registration.domain.authorization import Scope
from ssg.registration.domain.model import (
    AuditEntry,
    Expert,
    Member,
    Organization,
    RequestRecord,
)

T = TypeVar("T")
Cursor = tuple[str, str]
"""Position in a list: (sort key, id) of the last item of the previous page."""


def organization_sort_key(org: Organization) -> str:
    """Organizations are listed by name, case-insensitively."""
    return org.profile.name.casefold()


def expert_sort_key(expert: Expert) -> str:
    """Experts are listed by display name, case-insensitively."""
    return expert.profile.display_name.casefold()


@dataclass(frozen=True)
class OrganizationQuery:
    """Filters of ListOrganizations (empty = any) and the caller's visibility scopes."""

    scopes: tuple[Scope, ...]
    type: str = ""
    country: str = ""
    region: str = ""
    sdg: int = 0
    status: str = ""
    reconfirmation_required: bool = False


@dataclass(frozen=True)
class ExpertQuery:
    """Filters of ListExperts (empty = any) and the caller's visibility scopes."""

    scopes: tuple[Scope, ...]
    sdg: int = 0
    country: str = ""
    language: str = ""
    affiliation_organization_id: str = ""


class Transaction(ABC):
    """Reads and writes inside one atomic unit; reads see the unit's own writes."""

    @abstractmethod
    def get_organization(self, org_id: str) -> Organization | None:
        """The organization with this id, or None."""

    @abstractmethod
    def insert_organization(self, org: Organization) -> None:
        """Store a new organization."""

    @abstractmethod
    def save_organization(self, org: Organization, expected_version: int) -> None:
        """Replace the organization if its stored version is expected_version; else VersionConflict."""

    @abstractmethod
    def touch_organization(self, org_id: str) -> None:
        """Write the organization's document without changing its state (a revision counter
        outside the domain), so that two units that read state hanging off it (its members,
        its parent chain) and each change a different part of it conflict instead of both
        committing on stale reads (write skew): one is retried and sees the other's change."""

    @abstractmethod
    def duplicate_pool(
        self, country: str, keys: list[str], domain: str, limit: int
    ) -> list[Organization]:
        """Open organizations that may be duplicates: up to limit headquartered in country
        with one of the match keys (see duplicates.match_keys), and up to limit with the
        website domain.
        Only the fields the matcher reads are filled in (id, name, acronym, country, website)."""

    @abstractmethod
    def add_audit(self, entry: AuditEntry) -> None:
        """Append an audit entry."""

    @abstractmethod
    def get_member(self, org_id: str, user_id: str) -> Member | None:
        """One membership, or None."""

    @abstractmethod
    def members_of(self, org_id: str) -> list[Member]:
        """Every membership of an organization."""

    @abstractmethod
    def insert_member(self, member: Member) -> None:
        """Store a new membership."""

    @abstractmethod
    def delete_member(self, org_id: str, user_id: str) -> None:
        """Remove a membership."""

    @abstractmethod
    def get_expert(self, expert_id: str) -> Expert | None:
        """The expert with this id, or None."""

    @abstractmethod
    def insert_expert(self, expert: Expert) -> None:
        """Store a new expert."""

    @abstractmethod
    def save_expert(self, expert: Expert, expected_version: int) -> None:
        """Replace the expert if its stored version is expected_version; else VersionConflict."""

    @abstractmethod
    def delete_expert(self, expert_id: str) -> None:
        """Remove an expert for good."""

    @abstractmethod
    def get_request(self, key: str) -> RequestRecord | None:
        """The record of an earlier idempotent command, or None."""

    @abstractmethod
    def insert_request(self, record: RequestRecord) -> None:
        """Remember an idempotent command's result; a key already stored fails the unit with a
        unique-key error, after which ``Store.atomically`` runs the unit again."""

    @abstractmethod
    def get_proposal_link(self, key: str) -> ProposalLink | None:
        """The link of a proposal (which entity it made, which revision applied), or None."""

    @abstractmethod
    def insert_proposal_link(self, link: ProposalLink) -> None:
        """Store a new link (DuplicateKeyError-like failure when its key exists)."""

    @abstractmethod
    def save_proposal_link(self, link: ProposalLink) -> None:
        """Replace a stored link."""

    @abstractmethod
    def add_event(self, topic: str, envelope: envelope_pb2.Envelope) -> None:
        """Publish envelope to topic if (and only if) this unit commits."""


class Store(ABC):
    """The registration datastore."""

    @abstractmethod
    def atomically(self, fn: Callable[[Transaction], T]) -> T:
        """Run fn in one atomic unit and return its result; fn may run more than once."""

    @abstractmethod
    def ensure_indexes(self) -> None:
        """Create the indexes the queries and uniqueness rules need (idempotent)."""

    @abstractmethod
    def get_organization(self, org_id: str) -> Organization | None:
        """The organization with this id, or None."""

    @abstractmethod
    async def read_organization(self, org_id: str) -> Organization | None:
        """get_organization awaited on the event loop (the read GetOrganization makes)."""

    @abstractmethod
    def list_organizations(
        self, query: OrganizationQuery, after: Cursor | None, limit: int
    ) -> list[Organization]:
        """Up to limit organizations matching query, by (sort key, id), after the cursor."""

    @abstractmethod
    def organizations_by_status(self) -> dict[str, int]:
        """How many organizations are in each status (statuses nobody is in are left out)."""

    @abstractmethod
    def audit_of(self, org_id: str, limit: int = 200) -> list[AuditEntry]:
        """The organization's most recent audit entries, oldest first."""

    @abstractmethod
    def get_member(self, org_id: str, user_id: str) -> Member | None:
        """One membership, or None."""

    @abstractmethod
    def list_members(self, org_id: str, after: str | None, limit: int) -> list[Member]:
        """Up to limit memberships of an organization by user id, after the given one."""

    @abstractmethod
    def get_expert(self, expert_id: str) -> Expert | None:
        """The expert with this id, or None."""

    @abstractmethod
    def list_experts(self, query: ExpertQuery, after: Cursor | None, limit: int) -> list[Expert]:
        """Up to limit experts matching query, by (sort key, id), after the cursor."""

    @abstractmethod
    def verification_due(self, now: datetime, limit: int) -> list[Organization]:
        """Verified organizations whose verification lapsed by now and are not yet flagged."""
