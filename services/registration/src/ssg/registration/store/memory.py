"""An in-memory Store for service-layer unit tests: same port, same semantics, no server."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from pymongo.errors import DuplicateKeyError

from ssg.contracts.events.v1 import envelope_pb2
from ssg.platform.errors import VersionConflict
from ssg.registration.domain import organizations as org_rules
from ssg.registration.domain.authorization import Scope
from ssg.registration.domain.duplicates import match_keys, website_domain
from ssg.registration.domain.model import (
    OPEN_STATUSES,
    AuditEntry,
    Expert,
    Member,
    Organization,
    OrganizationStatus,
    RequestRecord,
)
from ssg.registration.store.ports import (
    Cursor,
    ExpertQuery,
    OrganizationQuery,
    Store,
    T,
    Transaction,
    expert_sort_key,
    organization_sort_key,
)


@dataclass
class _State:
    organizations: dict[str, Organization] = field(default_factory=dict)
    audit: list[AuditEntry] = field(default_factory=list)
    members: dict[tuple[str, str], Member] = field(default_factory=dict)
    experts: dict[str, Expert] = field(default_factory=dict)
    requests: dict[str, RequestRecord] = field(default_factory=dict)
    events: list[tuple[str, envelope_pb2.Envelope]] = field(default_factory=list)


def scope_matches(scopes: tuple[Scope, ...], value: str, instance: str, owner: str = "") -> bool:
    """True when any scope admits an entity with this status/visibility, instance and owner."""
    return any(
        value in s.values
        and (not s.instance or s.instance == instance)
        and (not s.owner or s.owner == owner)
        for s in scopes
    )


class _MemoryTransaction(Transaction):
    def __init__(self, state: _State) -> None:
        self.s = state

    def get_organization(self, org_id: str) -> Organization | None:
        return self.s.organizations.get(org_id)

    def insert_organization(self, org: Organization) -> None:
        if org.id in self.s.organizations:
            raise DuplicateKeyError(f"organization {org.id}")
        self.s.organizations[org.id] = org

    def save_organization(self, org: Organization, expected_version: int) -> None:
        current = self.s.organizations.get(org.id)
        if current is None or current.version != expected_version:
            raise VersionConflict(f"organization {org.id} changed since version {expected_version}")
        self.s.organizations[org.id] = org

    def touch_organization(self, org_id: str) -> None:
        # Units run one at a time here, so there is no write skew to prevent.
        return None

    def duplicate_pool(
        self, country: str, keys: list[str], domain: str, limit: int
    ) -> list[Organization]:
        wanted = set(keys)
        return [
            o
            for o in self.s.organizations.values()
            if o.status in OPEN_STATUSES
            and (
                (
                    o.profile.headquarters_country == country
                    and wanted.intersection(match_keys(o.profile.name, o.profile.acronym))
                )
                or (domain and website_domain(o.profile.website) == domain)
            )
        ][:limit]

    def add_audit(self, entry: AuditEntry) -> None:
        self.s.audit.append(entry)

    def get_member(self, org_id: str, user_id: str) -> Member | None:
        return self.s.members.get((org_id, user_id))

    def members_of(self, org_id: str) -> list[Member]:
        return sorted(
            (m for m in self.s.members.values() if m.organization_id == org_id),
            key=lambda m: m.user_id,
        )

    def insert_member(self, member: Member) -> None:
        key = (member.organization_id, member.user_id)
        if key in self.s.members:
            raise DuplicateKeyError(f"member {key}")
        self.s.members[key] = member

    def delete_member(self, org_id: str, user_id: str) -> None:
        self.s.members.pop((org_id, user_id), None)

    def get_expert(self, expert_id: str) -> Expert | None:
        return self.s.experts.get(expert_id)

    def insert_expert(self, expert: Expert) -> None:
        if expert.id in self.s.experts:
            raise DuplicateKeyError(f"expert {expert.id}")
        self.s.experts[expert.id] = expert

    def save_expert(self, expert: Expert, expected_version: int) -> None:
        current = self.s.experts.get(expert.id)
        if current is None or current.version != expected_version:
            raise VersionConflict(f"expert {expert.id} changed since version {expected_version}")
        self.s.experts[expert.id] = expert

    def delete_expert(self, expert_id: str) -> None:
        self.s.experts.pop(expert_id, None)

    def get_request(self, key: str) -> RequestRecord | None:
        return self.s.requests.get(key)

    def insert_request(self, record: RequestRecord) -> None:
        if record.key in self.s.requests:
            raise DuplicateKeyError(f"request {record.key}")
        self.s.requests[record.key] = record

    def add_event(self, topic: str, envelope: envelope_pb2.Envelope) -> None:
        self.s.events.append((topic, envelope))


class MemoryStore(Store):
    """Holds everything in dicts; a failed unit restores the state it started from."""

    def __init__(self) -> None:
        self._state = _State()
        self._lock = threading.Lock()

    @property
    def events(self) -> list[tuple[str, envelope_pb2.Envelope]]:
        """Every committed (topic, envelope), oldest first: what the outbox would hold."""
        return list(self._state.events)

    @property
    def audit(self) -> list[AuditEntry]:
        """Every committed audit entry, oldest first."""
        return list(self._state.audit)

    def atomically(self, fn: Callable[[Transaction], T]) -> T:
        # One unit at a time, on a copy: a failure leaves no partial writes behind, exactly
        # like an aborted transaction.
        with self._lock:
            draft = copy.deepcopy(self._state)
            result = fn(_MemoryTransaction(draft))
            self._state = draft
            return result

    def ensure_indexes(self) -> None:
        return None

    def get_organization(self, org_id: str) -> Organization | None:
        return self._state.organizations.get(org_id)

    def list_organizations(
        self, query: OrganizationQuery, after: Cursor | None, limit: int
    ) -> list[Organization]:
        def matches(o: Organization) -> bool:
            p = o.profile
            return (
                scope_matches(query.scopes, o.status.value, o.instance)
                and (
                    o.status.value == query.status
                    if query.status
                    else o.status is not OrganizationStatus.MERGED
                )
                and (not query.type or p.type.value == query.type)
                and (not query.country or p.headquarters_country == query.country)
                and (not query.region or query.region in p.regions)
                and (not query.sdg or query.sdg in p.sdgs)
                and (not query.reconfirmation_required or o.reconfirmation_required)
            )

        return _page(
            [o for o in self._state.organizations.values() if matches(o)],
            organization_sort_key,
            after,
            limit,
        )

    def audit_of(self, org_id: str, limit: int = 200) -> list[AuditEntry]:
        return [e for e in self._state.audit if e.organization_id == org_id][-limit:]

    def get_member(self, org_id: str, user_id: str) -> Member | None:
        return self._state.members.get((org_id, user_id))

    def list_members(self, org_id: str, after: str | None, limit: int) -> list[Member]:
        members = sorted(
            (m for m in self._state.members.values() if m.organization_id == org_id),
            key=lambda m: m.user_id,
        )
        return [m for m in members if after is None or m.user_id > after][:limit]

    def get_expert(self, expert_id: str) -> Expert | None:
        return self._state.experts.get(expert_id)

    def list_experts(self, query: ExpertQuery, after: Cursor | None, limit: int) -> list[Expert]:
        def matches(e: Expert) -> bool:
            p = e.profile
            return (
                scope_matches(query.scopes, p.visibility.value, e.instance, e.owner)
                and (not query.sdg or query.sdg in p.sdgs)
                and (not query.country or query.country in p.countries)
                and (not query.language or query.language in p.languages)
                and (
                    not query.affiliation_organization_id
                    or p.affiliation_organization_id == query.affiliation_organization_id
                )
            )

        return _page(
            [e for e in self._state.experts.values() if matches(e)], expert_sort_key, after, limit
        )

    def verification_due(self, now: datetime, limit: int) -> list[Organization]:
        due = [o for o in self._state.organizations.values() if org_rules.verification_due(o, now)]
        return due[:limit]


def _page(items: list[T], key: Callable[[T], str], after: Cursor | None, limit: int) -> list[T]:
    ordered = sorted(items, key=lambda item: (key(item), item.id))  # type: ignore[attr-defined]
    if after is not None:
        ordered = [i for i in ordered if (key(i), i.id) > after]  # type: ignore[attr-defined]
    return ordered[:limit]
