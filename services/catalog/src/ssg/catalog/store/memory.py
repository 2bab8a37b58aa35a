"""An in-memory Store for service-layer unit tests: the same port, the same index fields and
filter semantics as MongoDB, state copied per unit so a failed unit leaves nothing behind."""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection
from dataclasses import replace
from datetime import datetime
from typing import Any

from ssg.catalog.domain.model import OrganizationRef, Review
from ssg.catalog.store.documents import (
    KINDS,
    SOLUTIONS,
    Doc,
    Kind,
    index_fields,
    sort_key,
)
from ssg.catalog.store.ports import Cursor, Query, R, Store, T, Transaction
from ssg.contracts.events.v1 import envelope_pb2
from ssg.platform.errors import AlreadyExists, VersionConflict


def matches(ix: Doc, query: Query) -> bool:
    """Whether a record with index fields ix passes query (the MongoDB filter, in Python)."""
    vis = query.visibility
    if not (
        ix["status"] in vis.public_statuses
        or ix["org"] in vis.organizations
        or (vis.instance and ix["instance"] == vis.instance)
    ):
        return False
    checks = (
        (query.sdg, lambda: query.sdg in ix["sdgs"]),
        (query.sdg_target, lambda: query.sdg_target in ix.get("targets", ())),
        (
            query.country,
            lambda: query.country in ix.get("countries", ()) or ix.get("open_to_all", False),
        ),
        (query.region, lambda: query.region in ix.get("regions", ())),
        (query.modality, lambda: ix.get("modality") == query.modality),
        (query.organization_id, lambda: query.organization_id in ix["orgs"]),
        (query.status, lambda: ix["status"] == query.status),
        (query.updated_since, lambda: ix["updated"] >= query.updated_since),
        (query.stale_only, lambda: bool(ix.get("stale"))),
        (query.type, lambda: ix.get("type") == query.type),
        (query.support_kind, lambda: query.support_kind in ix.get("support", ())),
    )
    return all(check() for wanted, check in checks if wanted)


def _any(record: object) -> Any:
    """A record of any kind, for the fields every kind has (id, status, version, ...)."""
    return record


def _pick(
    organizations: dict[str, OrganizationRef], ids: Collection[str]
) -> dict[str, OrganizationRef]:
    return {i: organizations[i] for i in set(ids) if i in organizations}


class _State:
    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {k.collection: {} for k in KINDS}
        self.reviews: list[Review] = []
        self.organizations: dict[str, OrganizationRef] = {}
        self.events: list[tuple[str, envelope_pb2.Envelope]] = []


class MemoryTransaction(Transaction):
    """A unit over a private copy of the state."""

    def __init__(self, state: _State) -> None:
        self.state = state

    def get(self, kind: Kind[T], record_id: str) -> T | None:
        found: T | None = self.state.records[kind.collection].get(record_id)
        return found

    def insert(self, kind: Kind[T], record: T) -> None:
        table = self.state.records[kind.collection]
        record_id = _any(record).id
        if record_id in table:
            raise AlreadyExists(f"{record_id} exists")
        ext = _any(record).provenance.external_id
        if ext and kind is SOLUTIONS and self.find_external([ext]):
            raise AlreadyExists(f"external id {ext} exists")
        table[record_id] = record

    def save(self, kind: Kind[T], record: T, expected_version: int) -> None:
        table = self.state.records[kind.collection]
        record_id = _any(record).id
        current = table.get(record_id)
        if current is None or current.version != expected_version:
            raise VersionConflict(f"{record_id} changed since version {expected_version}")
        table[record_id] = record

    def get_organization(self, org_id: str) -> OrganizationRef | None:
        return self.state.organizations.get(org_id)

    def get_organizations(self, org_ids: Collection[str]) -> dict[str, OrganizationRef]:
        return _pick(self.state.organizations, org_ids)

    def find_external(self, external_ids: Collection[str]) -> dict[str, str]:
        wanted = set(external_ids)
        return {
            s.provenance.external_id: s.id
            for s in self.state.records[SOLUTIONS.collection].values()
            if s.provenance.external_id in wanted
        }

    def insert_review(self, review: Review) -> None:
        self.state.reviews.append(review)

    def add_event(self, topic: str, envelope: envelope_pb2.Envelope) -> None:
        self.state.events.append((topic, envelope))


class MemoryStore(Store):
    """The catalog datastore in a dict; ``events`` lists what would have gone to the outbox."""

    def __init__(self) -> None:
        self._state = _State()

    @property
    def events(self) -> list[tuple[str, envelope_pb2.Envelope]]:
        """Every committed event, in order."""
        return self._state.events

    def atomically(self, fn: Callable[[Transaction], R]) -> R:
        work = _State()
        work.records = {name: dict(table) for name, table in self._state.records.items()}
        work.reviews = list(self._state.reviews)
        work.organizations = dict(self._state.organizations)
        work.events = list(self._state.events)
        result = fn(MemoryTransaction(work))
        self._state = work  # commit: records are immutable values, so shallow copies suffice
        return result

    def ensure_indexes(self) -> None:
        return None

    def get(self, kind: Kind[T], record_id: str) -> T | None:
        return MemoryTransaction(self._state).get(kind, record_id)

    def list_records(
        self, kind: Kind[T], query: Query, after: Cursor | None, limit: int
    ) -> list[T]:
        items = [
            r
            for r in self._state.records[kind.collection].values()
            if matches(index_fields(r), query)
        ]
        items.sort(key=sort_key, reverse=True)
        if after is not None:
            at, last_id = datetime.fromisoformat(after[0]), after[1]
            items = [r for r in items if sort_key(r) < (at, last_id)]
        return items[:limit]

    def reviews_of(self, solution_id: str) -> list[Review]:
        return [r for r in self._state.reviews if r.solution_id == solution_id]

    def find_external(self, external_ids: Collection[str]) -> dict[str, str]:
        return MemoryTransaction(self._state).find_external(external_ids)

    def stale_candidates(self, confirmed_before: datetime, limit: int) -> list[str]:
        out = []
        for s in self._state.records[SOLUTIONS.collection].values():
            ix = index_fields(s)
            confirmed = ix["confirmed"]
            due = confirmed is not None and confirmed <= confirmed_before
            if ix["status"] == "PUBLISHED" and not ix["stale"] and due:
                out.append(s.id)
        return out[:limit]

    def expired_funding(self, now: datetime, limit: int) -> list[str]:
        table = self._state.records["funding_opportunities"].values()
        return [
            f.id
            for f in table
            if str(f.status) == "OPEN"
            and f.content.deadline is not None
            and f.content.deadline <= now
        ][:limit]

    def get_organization(self, org_id: str) -> OrganizationRef | None:
        return self._state.organizations.get(org_id)

    def get_organizations(self, org_ids: Collection[str]) -> dict[str, OrganizationRef]:
        return _pick(self._state.organizations, org_ids)

    def apply_organization(self, org: OrganizationRef) -> bool:
        current = self._state.organizations.get(org.id)
        if current is not None and current.version >= org.version:
            return False
        self._state.organizations[org.id] = copy.copy(org)
        return True

    def organizations(self) -> list[OrganizationRef]:
        return sorted(self._state.organizations.values(), key=lambda o: o.id)

    def put_organization(self, org: OrganizationRef) -> None:
        """Test helper: set an organization whatever the stored version."""
        self._state.organizations[org.id] = replace(org)
