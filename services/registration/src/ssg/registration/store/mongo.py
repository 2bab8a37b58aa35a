"""The Store on MongoDB (database ``registration``), through pymongo so that every write of a
command shares one transaction with its outbox events (``write_with_events``).

Collections: ``organizations``, ``audit``, ``members``, ``experts``, ``requests`` (idempotency
records, ``_id`` = caller + request id, so a second insert of the same request fails),
``proposal_links`` (which entity each ingress proposal made, ``ssg.platform.proposals``) and the
platform's ``outbox``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

from pymongo import ASCENDING, DESCENDING, MongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.database import Database

from ssg.contracts.events.v1 import envelope_pb2
from ssg.platform.errors import VersionConflict
from ssg.platform.events.outbox import Outbox, UnitOfWork, atomically
from ssg.platform.migrations import drop_retired_indexes, run_once
from ssg.platform.mongo import merged_page, run_sync
from ssg.platform.proposals import ProposalLink, get_link, insert_link, save_link
from ssg.platform.readcache import (
    CacheFeed,
    ReadCache,
    Route,
    dropping_written,
    feed_from_settings,
)
from ssg.platform.settings import PlatformSettings
from ssg.registration.domain.authorization import Scope
from ssg.registration.domain.duplicates import match_keys, website_domain
from ssg.registration.domain.model import (
    OPEN_STATUSES,
    AuditEntry,
    DuplicateCandidate,
    Expert,
    ExpertProfile,
    ExpertVisibility,
    Member,
    MemberRole,
    Organization,
    OrganizationProfile,
    OrganizationStatus,
    OrganizationType,
    Region,
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

Doc = dict[str, Any]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# -- documents <-> domain ---------------------------------------------------------------------


def _duplicates_doc(items: tuple[DuplicateCandidate, ...]) -> list[Doc]:
    return [
        {"id": d.organization_id, "name": d.name, "score": d.score, "reasons": list(d.reasons)}
        for d in items
    ]


def _duplicates(items: list[Doc] | None) -> tuple[DuplicateCandidate, ...]:
    return tuple(
        DuplicateCandidate(d["id"], d["name"], float(d["score"]), tuple(d["reasons"]))
        for d in items or ()
    )


def organization_doc(org: Organization) -> Doc:
    """The stored document of an organization."""
    p = org.profile
    return {
        "_id": org.id,
        "name": p.name,
        "name_key": organization_sort_key(org),
        "list_key": list_key(organization_sort_key(org), org.id),
        "acronym": p.acronym,
        "type": p.type.value,
        "hq": p.headquarters_country,
        "countries": list(p.operating_countries),
        "regions": [r.value for r in p.regions],
        "sdgs": list(p.sdgs),
        "website": p.website,
        "domain": website_domain(p.website),
        "match_keys": match_keys(p.name, p.acronym),
        "email": p.contact_email,
        "description": p.description,
        "languages": list(p.languages),
        "parent_id": p.parent_organization_id,
        "instance": org.instance,
        "status": org.status.value,
        "version": org.version,
        "created_at": org.created_at,
        "updated_at": org.updated_at,
        "verified_at": org.verified_at,
        "expires_at": org.verification_expires_at,
        "reconfirm": org.reconfirmation_required,
        "merged_into": org.merged_into,
        "status_reason": org.status_reason,
        "duplicates": _duplicates_doc(org.possible_duplicates),
    }


def organization_from_doc(doc: Doc) -> Organization:
    """The organization a stored document holds."""
    return Organization(
        id=doc["_id"],
        profile=OrganizationProfile(
            name=doc["name"],
            acronym=doc.get("acronym", ""),
            type=OrganizationType(doc["type"]),
            headquarters_country=doc["hq"],
            operating_countries=tuple(doc.get("countries", ())),
            regions=tuple(Region(r) for r in doc.get("regions", ())),
            sdgs=tuple(doc.get("sdgs", ())),
            website=doc.get("website", ""),
            contact_email=doc.get("email", ""),
            description=doc.get("description", ""),
            languages=tuple(doc.get("languages", ())),
            parent_organization_id=doc.get("parent_id", ""),
        ),
        instance=doc["instance"],
        status=OrganizationStatus(doc["status"]),
        version=int(doc["version"]),
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
        verified_at=doc.get("verified_at"),
        verification_expires_at=doc.get("expires_at"),
        reconfirmation_required=bool(doc.get("reconfirm", False)),
        merged_into=doc.get("merged_into", ""),
        status_reason=doc.get("status_reason", ""),
        possible_duplicates=_duplicates(doc.get("duplicates")),
    )


# What the duplicate matcher reads of an existing organization; nothing else is loaded.
_POOL_FIELDS: Doc = {
    "_id": 1, "name": 1, "acronym": 1, "type": 1, "hq": 1, "website": 1, "status": 1
}  # fmt: skip
_OPEN = frozenset(s.value for s in OPEN_STATUSES)


def _pool_organization(doc: Doc) -> Organization:
    """A partial organization for the matcher: only the _POOL_FIELDS are real."""
    return Organization(
        id=doc["_id"],
        profile=OrganizationProfile(
            name=doc["name"],
            acronym=doc.get("acronym", ""),
            type=OrganizationType(doc["type"]),
            headquarters_country=doc["hq"],
            website=doc.get("website", ""),
        ),
        instance="",
        status=OrganizationStatus.PENDING,
        version=0,
        created_at=_EPOCH,
        updated_at=_EPOCH,
    )


def _audit_doc(entry: AuditEntry) -> Doc:
    return {
        "_id": uuid.uuid4().hex,
        "org_id": entry.organization_id,
        "action": entry.action,
        "actor": entry.actor,
        "roles": list(entry.actor_roles),
        "from": entry.from_status.value if entry.from_status else None,
        "to": entry.to_status.value if entry.to_status else None,
        "version": entry.version,
        "at": entry.at,
        "reason": entry.reason,
        "evidence": entry.evidence_note,
    }


def _audit(doc: Doc) -> AuditEntry:
    return AuditEntry(
        organization_id=doc["org_id"],
        action=doc["action"],
        actor=doc["actor"],
        actor_roles=tuple(doc.get("roles", ())),
        from_status=OrganizationStatus(doc["from"]) if doc.get("from") else None,
        to_status=OrganizationStatus(doc["to"]) if doc.get("to") else None,
        version=int(doc["version"]),
        at=doc["at"],
        reason=doc.get("reason", ""),
        evidence_note=doc.get("evidence", ""),
    )


def _member_doc(member: Member) -> Doc:
    return {
        "org_id": member.organization_id,
        "user_id": member.user_id,
        "role": member.role.value,
        "display_name": member.display_name,
        "added_by": member.added_by,
        "added_at": member.added_at,
    }


def _member(doc: Doc) -> Member:
    return Member(
        organization_id=doc["org_id"],
        user_id=doc["user_id"],
        role=MemberRole(doc["role"]),
        added_by=doc.get("added_by", ""),
        added_at=doc["added_at"],
        display_name=doc.get("display_name", ""),
    )


def expert_doc(expert: Expert) -> Doc:
    """The stored document of an expert."""
    p = expert.profile
    return {
        "_id": expert.id,
        "display_name": p.display_name,
        "name_key": expert_sort_key(expert),
        "list_key": list_key(expert_sort_key(expert), expert.id),
        "visibility": p.visibility.value,
        "areas": list(p.expertise_areas),
        "sdgs": list(p.sdgs),
        "languages": list(p.languages),
        "countries": list(p.countries),
        "affiliation_id": p.affiliation_organization_id,
        "affiliation": p.affiliation,
        "biography": p.biography,
        "owner": expert.owner,
        "instance": expert.instance,
        "version": expert.version,
        "created_at": expert.created_at,
        "updated_at": expert.updated_at,
    }


def expert_from_doc(doc: Doc) -> Expert:
    """The expert a stored document holds."""
    return Expert(
        id=doc["_id"],
        profile=ExpertProfile(
            display_name=doc["display_name"],
            visibility=ExpertVisibility(doc["visibility"]),
            expertise_areas=tuple(doc.get("areas", ())),
            sdgs=tuple(doc.get("sdgs", ())),
            languages=tuple(doc.get("languages", ())),
            countries=tuple(doc.get("countries", ())),
            affiliation_organization_id=doc.get("affiliation_id", ""),
            affiliation=doc.get("affiliation", ""),
            biography=doc.get("biography", ""),
        ),
        owner=doc["owner"],
        instance=doc["instance"],
        version=int(doc["version"]),
        created_at=doc["created_at"],
        updated_at=doc["updated_at"],
    )


def _request_doc(record: RequestRecord) -> Doc:
    return {
        "_id": record.key,
        "kind": record.kind,
        "fingerprint": record.fingerprint,
        "entity_id": record.entity_id,
        "created_at": record.created_at,
        "duplicates": _duplicates_doc(record.duplicates),
    }


def _request(doc: Doc) -> RequestRecord:
    return RequestRecord(
        key=doc["_id"],
        kind=doc["kind"],
        fingerprint=doc["fingerprint"],
        entity_id=doc["entity_id"],
        created_at=doc["created_at"],
        duplicates=_duplicates(doc.get("duplicates")),
    )


# -- queries ----------------------------------------------------------------------------------


def list_key(sort_key: str, entity_id: str) -> str:
    """One string ordered as the pair (sort key, id): a page after a cursor is then a single
    index range (``list_key > cursor``) rather than an ``$or`` of two, which no index serves."""
    # NUL sorts below every character a validated name can hold, so a name that is a prefix of
    # another still sorts first, as in the pair.
    return f"{sort_key}\x00{entity_id}"


def _one_of(values: Collection[str]) -> str | Doc:
    ordered = sorted(values)
    return ordered[0] if len(ordered) == 1 else {"$in": ordered}


def _branches(
    fields: Doc,
    scopes: tuple[Scope, ...],
    field: str,
    wanted: frozenset[str],
    every: frozenset[str],
    after: Cursor | None,
) -> list[Doc]:
    """One flat filter per scope clause (the caller merges their results): equalities only and at
    most one range or $in, so that each is answered from a compound index on any MongoDB, where
    an ``$or`` of scopes or an ``$and`` wrapper is planned as a scan by simpler servers.

    ``fields`` come first: a server that serves a filter from one clause's index takes the first
    clause with one, and the query's own fields are the selective ones."""
    branches: list[Doc] = []
    for scope in scopes:
        allowed = scope.values & wanted
        if not allowed:
            continue  # this clause cannot match anything the query asks for
        branch: Doc = dict(fields)
        if scope.instance:
            branch["instance"] = scope.instance
        if scope.owner:
            branch["owner"] = scope.owner
        if allowed != every:  # a condition every document meets would only widen the plan
            branch[field] = _one_of(allowed)
        if after is not None:
            branch["list_key"] = {"$gt": list_key(*after)}
        branches.append(branch)
    return branches


ALL_STATUSES = frozenset(s.value for s in OrganizationStatus)
LISTED_STATUSES = ALL_STATUSES - {OrganizationStatus.MERGED.value}  # merged ones only redirect
ALL_VISIBILITIES = frozenset(v.value for v in ExpertVisibility)


def organization_filters(query: OrganizationQuery, after: Cursor | None) -> list[Doc]:
    """The MongoDB filters of a ListOrganizations query, one per scope clause of the caller
    (exposed for tests of the query shape)."""
    fields: Doc = {}
    if query.country:
        fields["hq"] = query.country
    if query.sdg:
        fields["sdgs"] = query.sdg
    if query.region:
        fields["regions"] = query.region
    if query.type:
        fields["type"] = query.type
    if query.reconfirmation_required:
        fields["reconfirm"] = True
    wanted = frozenset({query.status}) if query.status else LISTED_STATUSES
    return _branches(fields, query.scopes, "status", wanted, ALL_STATUSES, after)


def expert_filters(query: ExpertQuery, after: Cursor | None) -> list[Doc]:
    """The MongoDB filters of a ListExperts query, one per scope clause of the caller."""
    fields: Doc = {}
    if query.affiliation_organization_id:
        fields["affiliation_id"] = query.affiliation_organization_id
    if query.country:
        fields["countries"] = query.country
    if query.sdg:
        fields["sdgs"] = query.sdg
    if query.language:
        fields["languages"] = query.language
    every = ALL_VISIBILITIES
    return _branches(fields, query.scopes, "visibility", every, every, after)


def duplicate_signals(country: str, keys: list[str], domain: str) -> list[Doc]:
    """The filters of the duplicate pool, one per signal: equalities and one $in on an index's
    fields alone. Whether a match is still open is checked while reading, since a second $in
    beside the keys' makes simpler planners serve the filter from one clause's index."""
    signals: list[Doc] = [{"hq": country, "match_keys": {"$in": sorted(keys)}}]
    if domain:
        signals.append({"domain": domain})
    return signals


# -- the store --------------------------------------------------------------------------------


# Indexes of earlier releases that the list_key indexes replace (dropped when present).
RETIRED_ORGANIZATION_INDEXES = (
    "status_1_name_key_1__id_1",
    "instance_1_status_1_name_key_1",
    "hq_1_status_1",
)
RETIRED_EXPERT_INDEXES = ("visibility_1_name_key_1__id_1", "owner_1")


class MongoTransaction(Transaction):
    """Store operations bound to one pymongo session inside a transaction.

    New documents wait in the unit of work and go out with its events in one command (see
    UnitOfWork); every other operation goes through ``_db``, which writes them first, so a
    unit reads and updates what it inserted."""

    def __init__(self, uow: UnitOfWork, written: list[str] | None = None) -> None:
        self._uow = uow
        self._s = uow.session
        # Ids of the organizations this unit writes: their cache entries go when it ends.
        self._written = written if written is not None else []

    @property
    def _db(self) -> Database[Doc]:
        self._uow.flush()
        return self._uow.db

    def get_organization(self, org_id: str) -> Organization | None:
        doc = self._db.organizations.find_one({"_id": org_id}, session=self._s)
        return organization_from_doc(doc) if doc else None

    def insert_organization(self, org: Organization) -> None:
        self._written.append(org.id)
        self._uow.insert("organizations", organization_doc(org))

    def save_organization(self, org: Organization, expected_version: int) -> None:
        # $set rather than a replacement keeps fields the domain does not own (lock_rev).
        doc = organization_doc(org)
        del doc["_id"]
        self._written.append(org.id)
        result = self._db.organizations.update_one(
            {"_id": org.id, "version": expected_version}, {"$set": doc}, session=self._s
        )
        if result.matched_count != 1:
            raise VersionConflict(
                f"organization {org.id} changed since version {expected_version}; re-read it"
            )

    def touch_organization(self, org_id: str) -> None:
        self._written.append(org_id)
        self._db.organizations.update_one(
            {"_id": org_id}, {"$inc": {"lock_rev": 1}}, session=self._s
        )

    def duplicate_pool(
        self, country: str, keys: list[str], domain: str, limit: int
    ) -> list[Organization]:
        # One bounded query per signal, so that many organizations sharing a website domain
        # cannot crowd the name matches out of the pool (or the reverse).
        found: dict[str, Organization] = {}
        for signal in duplicate_signals(country, keys, domain):
            cursor = self._db.organizations.find(
                signal, projection=_POOL_FIELDS, session=self._s, batch_size=limit
            )
            taken = 0
            for doc in cursor:
                if doc["status"] not in _OPEN:
                    continue
                found.setdefault(doc["_id"], _pool_organization(doc))
                taken += 1
                if taken == limit:
                    break
            cursor.close()
        return list(found.values())

    def add_audit(self, entry: AuditEntry) -> None:
        self._uow.insert("audit", _audit_doc(entry))

    def get_member(self, org_id: str, user_id: str) -> Member | None:
        doc = self._db.members.find_one({"org_id": org_id, "user_id": user_id}, session=self._s)
        return _member(doc) if doc else None

    def members_of(self, org_id: str) -> list[Member]:
        cursor = self._db.members.find({"org_id": org_id}, session=self._s).sort(
            "user_id", ASCENDING
        )
        return [_member(doc) for doc in cursor]

    def insert_member(self, member: Member) -> None:
        self._uow.insert("members", _member_doc(member))

    def delete_member(self, org_id: str, user_id: str) -> None:
        self._db.members.delete_one({"org_id": org_id, "user_id": user_id}, session=self._s)

    def get_expert(self, expert_id: str) -> Expert | None:
        doc = self._db.experts.find_one({"_id": expert_id}, session=self._s)
        return expert_from_doc(doc) if doc else None

    def insert_expert(self, expert: Expert) -> None:
        self._uow.insert("experts", expert_doc(expert))

    def save_expert(self, expert: Expert, expected_version: int) -> None:
        result = self._db.experts.replace_one(
            {"_id": expert.id, "version": expected_version}, expert_doc(expert), session=self._s
        )
        if result.matched_count != 1:
            raise VersionConflict(
                f"expert {expert.id} changed since version {expected_version}; re-read it"
            )

    def delete_expert(self, expert_id: str) -> None:
        self._db.experts.delete_one({"_id": expert_id}, session=self._s)

    def get_request(self, key: str) -> RequestRecord | None:
        doc = self._db.requests.find_one({"_id": key}, session=self._s)
        return _request(doc) if doc else None

    def insert_request(self, record: RequestRecord) -> None:
        self._uow.insert("requests", _request_doc(record))

    def get_proposal_link(self, key: str) -> ProposalLink | None:
        return get_link(self._db, key, self._s)

    def insert_proposal_link(self, link: ProposalLink) -> None:
        insert_link(self._db, link, self._s)

    def save_proposal_link(self, link: ProposalLink) -> None:
        save_link(self._db, link, self._s)

    def add_event(self, topic: str, envelope: envelope_pb2.Envelope) -> None:
        self._uow.add(topic, envelope)


class MongoStore(Store):
    """The registration datastore on a MongoDB replica set (transactions need one).

    ``reads`` is the same database through the asyncio client (``make_read_client``) that the
    Get calls read from; without it they read through the sync client in the thread pool.
    ``cache`` holds organizations by id for GetOrganization (ADR 0014): the store drops the
    entries of what its own transactions wrote, the change stream (``cache_feed``) the rest.
    """

    def __init__(
        self,
        client: MongoClient[Doc],
        db: Database[Doc],
        reads: AsyncDatabase[Doc] | None = None,
        cache: ReadCache[str, Organization] | None = None,
    ) -> None:
        self.client = client
        self.db = db
        self.reads = reads
        self.cache = cache

    def atomically(self, fn: Callable[[Transaction], T]) -> T:
        drop = self.cache.invalidate_many if self.cache is not None else None
        with dropping_written(drop) as written:
            return atomically(self.client, self.db, lambda uow: fn(MongoTransaction(uow, written)))

    def cache_feed(self, settings: PlatformSettings) -> CacheFeed | None:
        """The change stream follower that keeps ``cache`` current (None without a cache)."""
        if self.cache is None:
            return None
        preload = self._preload_organizations if settings.read_cache_preload else None
        route = Route("organizations", self.cache, preload=preload)
        return feed_from_settings(settings, "registration", self.db, [route])

    def _preload_organizations(self) -> Iterator[tuple[str, Organization]]:
        assert self.cache is not None
        for doc in self.db.organizations.find().limit(self.cache.capacity):
            yield doc["_id"], organization_from_doc(doc)

    def ensure_indexes(self) -> None:
        orgs = self.db.organizations
        drop_retired_indexes(orgs, RETIRED_ORGANIZATION_INDEXES)
        # Every list filter is equalities, at most one $in, then list_key: one index each for
        # the caller's scope alone and for each filter field with it (the ESR order).
        orgs.create_index([("status", ASCENDING), ("list_key", ASCENDING)])
        orgs.create_index([("instance", ASCENDING), ("status", ASCENDING), ("list_key", ASCENDING)])
        for field in ("hq", "type", "regions", "sdgs"):
            orgs.create_index([(field, ASCENDING), ("status", ASCENDING), ("list_key", ASCENDING)])
        orgs.create_index([("hq", ASCENDING), ("match_keys", ASCENDING)])
        orgs.create_index([("domain", ASCENDING)])
        orgs.create_index(
            [("status", ASCENDING), ("reconfirm", ASCENDING), ("expires_at", ASCENDING)]
        )
        self.db.audit.create_index([("org_id", ASCENDING), ("at", ASCENDING)])
        self.db.members.create_index([("org_id", ASCENDING), ("user_id", ASCENDING)], unique=True)
        experts = self.db.experts
        drop_retired_indexes(experts, RETIRED_EXPERT_INDEXES)
        experts.create_index([("visibility", ASCENDING), ("list_key", ASCENDING)])
        experts.create_index([("instance", ASCENDING), ("list_key", ASCENDING)])
        experts.create_index([("owner", ASCENDING), ("list_key", ASCENDING)])
        Outbox(self.db).ensure_indexes()
        run_once(self.db, "organizations.match_keys", self._backfill_match_keys)
        run_once(self.db, "list_key", self._backfill_list_keys)

    def _backfill_match_keys(self) -> None:
        """Give organizations stored before match keys existed their keys (idempotent)."""
        missing = self.db.organizations.find(
            {"match_keys": {"$exists": False}}, projection={"name": 1, "acronym": 1}
        )
        for doc in missing:
            self.db.organizations.update_one(
                {"_id": doc["_id"]},
                {"$set": {"match_keys": match_keys(doc["name"], doc.get("acronym", ""))}},
            )

    def _backfill_list_keys(self) -> None:
        """Give organizations and experts stored before list keys existed theirs (idempotent)."""
        for collection in (self.db.organizations, self.db.experts):
            missing = collection.find({"list_key": {"$exists": False}}, projection={"name_key": 1})
            for doc in missing:
                collection.update_one(
                    {"_id": doc["_id"]},
                    {"$set": {"list_key": list_key(doc["name_key"], doc["_id"])}},
                )

    def get_member(self, org_id: str, user_id: str) -> Member | None:
        doc = self.db.members.find_one({"org_id": org_id, "user_id": user_id})
        return _member(doc) if doc else None

    def get_organization(self, org_id: str) -> Organization | None:
        doc = self.db.organizations.find_one({"_id": org_id})
        return organization_from_doc(doc) if doc else None

    async def read_organization(self, org_id: str) -> Organization | None:
        if self.cache is not None:
            return await self.cache.read_through(org_id, partial(self._read_organization, org_id))
        return await self._read_organization(org_id)

    async def _read_organization(self, org_id: str) -> Organization | None:
        if self.reads is None:
            return await run_sync(self.get_organization, org_id)
        doc = await self.reads.organizations.find_one({"_id": org_id})
        return organization_from_doc(doc) if doc else None

    def organizations_by_status(self) -> dict[str, int]:
        groups = self.db.organizations.aggregate([{"$group": {"_id": "$status", "n": {"$sum": 1}}}])
        return {str(group["_id"]): int(group["n"]) for group in groups}

    def list_organizations(
        self, query: OrganizationQuery, after: Cursor | None, limit: int
    ) -> list[Organization]:
        filters = organization_filters(query, after)
        docs = merged_page(self.db.organizations, filters, "list_key", ASCENDING, limit)
        return [organization_from_doc(doc) for doc in docs]

    def audit_of(self, org_id: str, limit: int = 200) -> list[AuditEntry]:
        cursor = self.db.audit.find({"org_id": org_id}).sort("at", DESCENDING).limit(limit)
        return [_audit(doc) for doc in reversed(list(cursor))]

    def list_members(self, org_id: str, after: str | None, limit: int) -> list[Member]:
        query: Doc = {"org_id": org_id}
        if after is not None:
            query["user_id"] = {"$gt": after}
        cursor = self.db.members.find(query).sort("user_id", ASCENDING).limit(limit)
        return [_member(doc) for doc in cursor]

    def get_expert(self, expert_id: str) -> Expert | None:
        doc = self.db.experts.find_one({"_id": expert_id})
        return expert_from_doc(doc) if doc else None

    def list_experts(self, query: ExpertQuery, after: Cursor | None, limit: int) -> list[Expert]:
        filters = expert_filters(query, after)
        docs = merged_page(self.db.experts, filters, "list_key", ASCENDING, limit)
        return [expert_from_doc(doc) for doc in docs]

    def verification_due(self, now: datetime, limit: int) -> list[Organization]:
        cursor = self.db.organizations.find(
            {
                "status": OrganizationStatus.VERIFIED.value,
                "reconfirm": False,
                "expires_at": {"$lte": now},
            }
        ).limit(limit)
        return [organization_from_doc(doc) for doc in cursor]
