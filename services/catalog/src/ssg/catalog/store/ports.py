"""The store port: what the service layer needs from its datastore, and nothing about how.

``MongoStore`` implements it on MongoDB (service-layer tests use it too, on a database of their
own: a second, in-memory implementation could pass tests MongoDB would fail). Commands write only inside ``Store.atomically``: records, reviews and outbox events of
one command commit together or not at all.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from ssg.catalog.domain.model import OrganizationRef, Review
from ssg.catalog.store.documents import Kind
from ssg.contracts.events.v1 import envelope_pb2
from ssg.platform.proposals import ProposalLink

T = TypeVar("T")
R = TypeVar("R")
Cursor = tuple[str, str]
"""Position in a list: (update time ISO, id) of the last item of the previous page."""


@dataclass(frozen=True)
class Visibility:
    """Which records a caller may list: public statuses, plus everything of some organizations,
    plus everything of an instance (its reviewers and operators)."""

    public_statuses: tuple[str, ...]
    organizations: tuple[str, ...] = ()
    instance: str = ""


@dataclass(frozen=True)
class Query:
    """List filters ('' / 0 / None = any) over the index fields of documents.index_fields."""

    visibility: Visibility
    sdg: int = 0
    sdg_target: str = ""
    country: str = ""
    region: str = ""
    modality: str = ""
    organization_id: str = ""
    status: str = ""
    updated_since: datetime | None = None
    stale_only: bool = False
    type: str = ""
    support_kind: str = ""


@dataclass(frozen=True)
class Fetched(Generic[R]):
    """A record read for a Get, with what deciding on it needs from the same read."""

    record: R
    # The record's organization from the read model, by id (None: not in the read model).
    organizations: dict[str, OrganizationRef | None]
    # The solution's reviews, oldest first, when they were asked for (None: not read).
    reviews: tuple[Review, ...] | None = None


class Transaction(ABC):
    """Reads and writes inside one atomic unit."""

    @abstractmethod
    def get(self, kind: Kind[T], record_id: str) -> T | None:
        """The record, or None."""

    @abstractmethod
    def insert(self, kind: Kind[T], record: T) -> None:
        """Store a new record (DuplicateKeyError-like failure when its external id exists)."""

    def insert_many(self, kind: Kind[T], records: Sequence[T]) -> None:
        """Store new records (as insert, one by one unless a store does better)."""
        for record in records:
            self.insert(kind, record)

    @abstractmethod
    def save(self, kind: Kind[T], record: T, expected_version: int) -> None:
        """Replace the record if its stored version is expected_version; else VersionConflict."""

    @abstractmethod
    def get_organization(self, org_id: str) -> OrganizationRef | None:
        """One organization of the read model, or None."""

    @abstractmethod
    def get_organizations(self, org_ids: Collection[str]) -> dict[str, OrganizationRef]:
        """The read model's organizations among org_ids, by id (one batched read)."""

    @abstractmethod
    def find_external(self, external_ids: Collection[str]) -> dict[str, str]:
        """Solution ids by external id, for those already in the catalog."""

    @abstractmethod
    def insert_review(self, review: Review) -> None:
        """Append a review."""

    @abstractmethod
    def add_event(self, topic: str, envelope: envelope_pb2.Envelope) -> None:
        """Publish envelope to topic if (and only if) this unit commits."""

    @abstractmethod
    def get_proposal_link(self, key: str) -> ProposalLink | None:
        """The link of a proposal (which record it made, which revision applied), or None."""

    @abstractmethod
    def insert_proposal_link(self, link: ProposalLink) -> None:
        """Store a new link (DuplicateKeyError-like failure when its key exists)."""

    @abstractmethod
    def save_proposal_link(self, link: ProposalLink) -> None:
        """Replace a stored link."""

    def add_events(self, events: Sequence[tuple[str, envelope_pb2.Envelope]]) -> None:
        """add_event for each (topic, envelope), in order (one write where a store can)."""
        for topic, envelope in events:
            self.add_event(topic, envelope)


class Store(ABC):
    """The catalog datastore."""

    @abstractmethod
    def atomically(self, fn: Callable[[Transaction], R]) -> R:
        """Run fn in one atomic unit and return its result; fn may run more than once."""

    @abstractmethod
    def ensure_indexes(self) -> None:
        """Create the indexes queries and uniqueness rules need (idempotent)."""

    @abstractmethod
    def get(self, kind: Kind[T], record_id: str) -> T | None:
        """The record, or None."""

    @abstractmethod
    async def read_record(
        self, kind: Kind[T], record_id: str, *, with_reviews: bool = False
    ) -> Fetched[T] | None:
        """The record with its organization (and a solution's reviews when with_reviews), in
        one read awaited on the event loop (the read of the Get calls); None if not found."""

    @abstractmethod
    async def read_organization(self, org_id: str) -> OrganizationRef | None:
        """get_organization awaited on the event loop."""

    @abstractmethod
    async def read_reviews(self, solution_id: str) -> list[Review]:
        """reviews_of awaited on the event loop."""

    @abstractmethod
    def list_records(
        self, kind: Kind[T], query: Query, after: Cursor | None, limit: int
    ) -> list[T]:
        """Up to limit records matching query, newest update first, after the cursor."""

    @abstractmethod
    def published_solutions_by_sdg_region(self) -> dict[tuple[int, str], int]:
        """How many published solutions address each (SDG, region) pair; a solution counts once
        under each of its SDGs and regions, under region "" when it names none."""

    @abstractmethod
    def reviews_of(self, solution_id: str) -> list[Review]:
        """A solution's reviews, oldest first."""

    @abstractmethod
    def find_external(self, external_ids: Collection[str]) -> dict[str, str]:
        """Solution ids by external id, for those already in the catalog."""

    @abstractmethod
    def stale_candidates(self, confirmed_before: datetime, limit: int) -> list[str]:
        """Ids of published, unflagged solutions last confirmed before the time."""

    @abstractmethod
    def expired_funding(self, now: datetime, limit: int) -> list[str]:
        """Ids of OPEN funding opportunities whose deadline is not after now."""

    @abstractmethod
    def get_organization(self, org_id: str) -> OrganizationRef | None:
        """One organization of the read model, or None."""

    @abstractmethod
    def get_organizations(self, org_ids: Collection[str]) -> dict[str, OrganizationRef]:
        """The read model's organizations among org_ids, by id (one batched read)."""

    @abstractmethod
    def apply_organization(self, org: OrganizationRef) -> bool:
        """Store org unless a version at least as new is stored; True when it was written."""

    @abstractmethod
    def organizations(self) -> list[OrganizationRef]:
        """The whole read model, by id (for checks and rebuild comparisons)."""
