"""The Store on MongoDB (database ``catalog``) through pymongo, so every write of a command
shares one transaction with its outbox events (``write_with_events``).

Collections: ``solutions``, ``knowledge_products``, ``needs``, ``funding_opportunities`` (each
document: the record's fields plus ``ix``, the index fields filters read), ``reviews``,
``organizations`` (the read model kept by the worker), ``solution_external_ids``,
``proposal_links`` (which record each ingress proposal made, ``ssg.platform.proposals``) and the
platform's ``outbox``.

``solution_external_ids`` maps an imported solution's external id (``_id``) to its solution id
(``solution_id``); it is written in the same transaction as the solution, so its ``_id`` makes
external ids unique, and imports find existing rows with point reads by ``_id`` instead of a
query on the solutions' ``ix.ext``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from pymongo import ASCENDING, DESCENDING, MongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from ssg.catalog.domain.model import OrganizationRef, Review
from ssg.catalog.store.documents import (
    KINDS,
    NEEDS,
    SOLUTIONS,
    Doc,
    Kind,
    from_plain,
    need_regions,
    page_key,
    record_doc,
    record_from_doc,
    to_plain,
)
from ssg.catalog.store.ports import (
    Cursor,
    Fetched,
    Query,
    R,
    Store,
    T,
    Transaction,
    Visibility,
)
from ssg.contracts.events.v1 import envelope_pb2
from ssg.platform.errors import VersionConflict
from ssg.platform.events.consumer import apply_if_newer
from ssg.platform.events.outbox import Outbox, UnitOfWork, atomically
from ssg.platform.migrations import drop_retired_indexes, run_once
from ssg.platform.mongo import merged_page, run_sync
from ssg.platform.proposals import ProposalLink, get_link, insert_link, save_link
from ssg.platform.readcache import (
    MISS,
    CacheFeed,
    ReadCache,
    Route,
    by_field,
    cache_from_settings,
    dropping_written,
    feed_from_settings,
)
from ssg.platform.settings import PlatformSettings

EXTERNAL_IDS = "solution_external_ids"


def _one_of(values: Sequence[str]) -> Any:
    ordered = sorted(set(values))
    return ordered[0] if len(ordered) == 1 else {"$in": ordered}


def _visibility_clauses(vis: Visibility, status: str) -> list[Doc]:
    """What the caller may see, as alternatives: public statuses, its organizations' records,
    its instance's records. A status filter the public may see makes the others redundant."""
    public = [s for s in vis.public_statuses if not status or s == status]
    clauses: list[Doc] = [{"ix.status": _one_of(public)}] if public else []
    if status and public:
        return clauses
    mine: Doc = {"ix.status": status} if status else {}
    if vis.organizations:
        clauses.append({"ix.orgs": _one_of(vis.organizations), **mine})
    if vis.instance:
        clauses.append({"ix.instance": vis.instance, **mine})
    return clauses


def _combined(*parts: Doc) -> Doc:
    """The conjunction of flat clauses as one flat filter (a field named twice is ANDed)."""
    out: Doc = {}
    both: list[Doc] = []
    for part in parts:
        for field, value in part.items():
            if field in out and out[field] != value:
                both.append({field: value})
            else:
                out[field] = value
    return {**out, "$and": both} if both else out


def query_filters(query: Query, after: Cursor | None) -> list[Doc]:
    """The MongoDB filters of a list query (the union of their results is the answer, the same
    semantics as memory.matches), each flat (equalities, at most one $in or range, then the page
    key), so that each is answered from a compound index on any MongoDB; an ``$or`` or ``$and``
    wrapper is planned as a collection scan by simpler servers. The query's own fields come
    first: those servers serve a filter from the first field that leads an index."""
    fields: Doc = {}
    if query.organization_id:
        fields["ix.orgs"] = query.organization_id
    if query.sdg_target:
        fields["ix.targets"] = query.sdg_target
    if query.sdg:
        fields["ix.sdgs"] = query.sdg
    if query.region:
        fields["ix.regions"] = query.region
    if query.modality:
        fields["ix.modality"] = query.modality
    if query.type:
        fields["ix.type"] = query.type
    if query.support_kind:
        fields["ix.support"] = query.support_kind
    if query.stale_only:
        fields["ix.stale"] = True
    if query.updated_since is not None:
        fields["ix.updated"] = {"$gte": query.updated_since}
    places: list[Doc] = [{}]
    if query.country:
        places = [{"ix.countries": query.country}, {"ix.open_to_all": True}]
    page: Doc = {}
    if after is not None:
        page = {"ix.page": {"$lt": page_key(datetime.fromisoformat(after[0]), after[1])}}
    return [
        _combined(place, fields, visible, page)
        for place in places
        for visible in _visibility_clauses(query.visibility, query.status)
    ]


def _review_doc(review: Review) -> Doc:
    doc = to_plain(review)
    doc["_id"] = doc.pop("id")
    return doc


def _review(doc: Doc) -> Review:
    data = {k: v for k, v in doc.items() if k != "_id"}
    result: Review = from_plain(Review, {**data, "id": doc["_id"]})
    return result


def organization_doc(org: OrganizationRef) -> Doc:
    """The read-model document of an organization (its version as aggregate_version)."""
    doc = to_plain(org)
    doc.pop("id")
    doc.pop("version")
    return doc


def _organization(doc: Doc) -> OrganizationRef:
    data = {k: v for k, v in doc.items() if k not in ("_id", "aggregate_version")}
    result: OrganizationRef = from_plain(
        OrganizationRef, {**data, "id": doc["_id"], "version": doc.get("aggregate_version", 0)}
    )
    return result


def _external_id_docs(kind: Kind[Any], docs: Sequence[Doc]) -> list[Doc]:
    """The solution_external_ids documents of new records' documents (solutions only)."""
    if kind is not SOLUTIONS:
        return []
    return [
        {"_id": doc["ix"]["ext"], "solution_id": doc["_id"]}
        for doc in docs
        if isinstance(doc["ix"].get("ext"), str)
    ]


def _find_external(db: Database[Doc], external_ids: Collection[str], **kw: Any) -> dict[str, str]:
    wanted = sorted({e for e in external_ids if e})
    if not wanted:
        return {}
    cursor = db[EXTERNAL_IDS].find({"_id": {"$in": wanted}}, **kw)
    return {doc["_id"]: doc["solution_id"] for doc in cursor}


def _get_organizations(
    db: Database[Doc], org_ids: Collection[str], **kw: Any
) -> dict[str, OrganizationRef]:
    wanted = sorted({i for i in org_ids if i})
    if not wanted:
        return {}
    cursor = db.organizations.find({"_id": {"$in": wanted}}, **kw)
    return {doc["_id"]: _organization(doc) for doc in cursor}


# Indexes of earlier releases (dropped when present): those the page-key indexes replace, and
# the unique external id of solutions, which solution_external_ids' _id already guarantees
# (written in the same transaction) and which no query reads (ADR 0015).
RETIRED_SOLUTION_INDEXES = ("external_id_unique",)
RETIRED_INDEXES = (
    "ix.updated_-1__id_-1",
    "ix.status_1_ix.updated_-1",
    "ix.orgs_1_ix.updated_-1",
    "ix.sdgs_1_ix.updated_-1",
    "ix.targets_1_ix.updated_-1",
    "ix.countries_1_ix.updated_-1",
)


class MongoTransaction(Transaction):
    """Store operations bound to one pymongo session inside a transaction."""

    def __init__(self, uow: UnitOfWork, written: list[tuple[str, str]] | None = None) -> None:
        self._uow = uow
        self._db = uow.db
        self._s = uow.session
        # (collection, cache key) of what this unit writes: those entries go when it ends.
        self._written = written if written is not None else []

    def get(self, kind: Kind[T], record_id: str) -> T | None:
        doc = self._db[kind.collection].find_one({"_id": record_id}, session=self._s)
        return record_from_doc(kind, doc) if doc else None

    def insert(self, kind: Kind[T], record: T) -> None:
        self.insert_many(kind, [record])

    def insert_many(self, kind: Kind[T], records: Sequence[T]) -> None:
        if not records:
            return
        docs = [record_doc(kind, record) for record in records]
        self._written.extend((kind.collection, doc["_id"]) for doc in docs)
        external = _external_id_docs(kind, docs)
        if external:
            # First: a taken external id fails here (DuplicateKeyError) before the bulk write.
            self._db[EXTERNAL_IDS].insert_many(external, session=self._s)
        self._db[kind.collection].insert_many(docs, session=self._s)

    def save(self, kind: Kind[T], record: T, expected_version: int) -> None:
        doc = record_doc(kind, record)
        self._written.append((kind.collection, doc["_id"]))
        result = self._db[kind.collection].replace_one(
            {"_id": doc["_id"], "version": expected_version}, doc, session=self._s
        )
        if result.matched_count != 1:
            raise VersionConflict(
                f"{doc['_id']} changed since version {expected_version}; re-read it"
            )

    def get_organization(self, org_id: str) -> OrganizationRef | None:
        doc = self._db.organizations.find_one({"_id": org_id}, session=self._s)
        return _organization(doc) if doc else None

    def get_organizations(self, org_ids: Collection[str]) -> dict[str, OrganizationRef]:
        return _get_organizations(self._db, org_ids, session=self._s)

    def find_external(self, external_ids: Collection[str]) -> dict[str, str]:
        return _find_external(self._db, external_ids, session=self._s)

    def insert_review(self, review: Review) -> None:
        self._written.append((REVIEWS, review.solution_id))
        self._db.reviews.insert_one(_review_doc(review), session=self._s)

    def add_event(self, topic: str, envelope: envelope_pb2.Envelope) -> None:
        self._uow.add(topic, envelope)

    def add_events(self, events: Sequence[tuple[str, envelope_pb2.Envelope]]) -> None:
        self._uow.add_many(events)

    def get_proposal_link(self, key: str) -> ProposalLink | None:
        return get_link(self._db, key, self._s)

    def insert_proposal_link(self, link: ProposalLink) -> None:
        insert_link(self._db, link, self._s)

    def save_proposal_link(self, link: ProposalLink) -> None:
        save_link(self._db, link, self._s)


def read_pipeline(kind: Kind[Any], record_id: str, with_reviews: bool) -> list[Doc]:
    """The one aggregation a Get reads: the record by ``_id``, its organization from the read
    model and, for a solution's staff, its reviews, joined by ``_id`` and the reviews' index
    (three commands before: each costs the API and the database more than the join does)."""
    pipeline: list[Doc] = [
        {"$match": {"_id": record_id}},
        {"$limit": 1},
        {
            "$lookup": {
                "from": "organizations",
                "localField": kind.org_field,
                "foreignField": "_id",
                "as": "_org",
            }
        },
    ]
    if with_reviews and kind is SOLUTIONS:
        pipeline.append(
            {
                "$lookup": {
                    "from": "reviews",
                    "localField": "_id",
                    "foreignField": "solution_id",
                    "as": "_reviews",
                }
            }
        )
    return pipeline


def _fetched(kind: Kind[T], doc: Doc) -> Fetched[T]:
    """A Fetched from the document read_pipeline returns."""
    orgs = doc.pop("_org")
    reviews = doc.pop("_reviews", None)
    org_id = doc.get(kind.org_field, "")
    return Fetched(
        record_from_doc(kind, doc),
        {org_id: _organization(orgs[0]) if orgs else None},
        None
        if reviews is None
        else tuple(_review(r) for r in sorted(reviews, key=lambda r: r["create_time"])),
    )


REVIEWS = "reviews"


@dataclass(frozen=True)
class ReadCaches:
    """The Get calls' caches (ADR 0014): records by id per collection, the organizations read
    model by id, a solution's reviews (oldest first) by solution id."""

    records: Mapping[str, ReadCache[str, Any]]
    organizations: ReadCache[str, OrganizationRef]
    reviews: ReadCache[str, tuple[Review, ...]]

    @classmethod
    def from_settings(cls, settings: PlatformSettings) -> ReadCaches | None:
        """One cache per collection of SSG_READ_CACHE_ENTRIES entries; None when that is 0."""
        organizations = cache_from_settings(settings, "catalog.organizations")
        reviews = cache_from_settings(settings, "catalog.reviews")
        if organizations is None or reviews is None:
            return None
        records = {
            kind.collection: ReadCache[str, Any](
                f"catalog.{kind.collection}", settings.read_cache_entries
            )
            for kind in KINDS
        }
        return cls(records, organizations, reviews)

    def invalidate(self, written: Sequence[tuple[str, str]]) -> None:
        """Drop the entries of what a unit of work wrote."""
        for collection, key in written:
            cache = self.reviews if collection == REVIEWS else self.records.get(collection)
            if cache is not None:
                cache.invalidate(key)


class MongoStore(Store):
    """The catalog datastore on a MongoDB replica set (transactions need one).

    ``reads`` is the same database through the asyncio client (``make_read_client``) that the
    Get calls read from; without it they read through the sync client in the thread pool.
    """

    def __init__(
        self,
        client: MongoClient[Doc],
        db: Database[Doc],
        reads: AsyncDatabase[Doc] | None = None,
        caches: ReadCaches | None = None,
    ) -> None:
        self.client = client
        self.db = db
        self.reads = reads
        self.caches = caches

    def atomically(self, fn: Callable[[Transaction], R]) -> R:
        drop = self.caches.invalidate if self.caches is not None else None
        with dropping_written(drop) as written:
            return atomically(self.client, self.db, lambda uow: fn(MongoTransaction(uow, written)))

    def cache_feed(self, settings: PlatformSettings) -> CacheFeed | None:
        """The change stream follower that keeps ``caches`` current (None without caches)."""
        caches = self.caches
        if caches is None:
            return None
        preload = settings.read_cache_preload
        routes = [
            Route(
                kind.collection,
                caches.records[kind.collection],
                preload=partial(self._preload_records, kind, caches) if preload else None,
            )
            for kind in KINDS
        ]
        routes.append(
            Route(
                "organizations",
                caches.organizations,
                preload=partial(self._preload_organizations, caches) if preload else None,
            )
        )
        routes.append(
            Route(
                REVIEWS,
                caches.reviews,
                by_field("solution_id"),
                ("solution_id",),
                partial(self._preload_reviews, caches) if preload else None,
            )
        )
        return feed_from_settings(settings, "catalog", self.db, routes)

    def _preload_records(self, kind: Kind[T], caches: ReadCaches) -> Iterator[tuple[str, T]]:
        limit = caches.records[kind.collection].capacity
        for doc in self.db[kind.collection].find().limit(limit):
            yield doc["_id"], record_from_doc(kind, doc)

    def _preload_organizations(self, caches: ReadCaches) -> Iterator[tuple[str, OrganizationRef]]:
        for doc in self.db.organizations.find().limit(caches.organizations.capacity):
            yield doc["_id"], _organization(doc)

    def _preload_reviews(self, caches: ReadCaches) -> Iterator[tuple[str, tuple[Review, ...]]]:
        """The reviews of the solutions preloaded (none is an answer too)."""
        by_solution: dict[str, list[Review]] = {}
        for doc in self.db.reviews.find().sort("create_time", ASCENDING):
            by_solution.setdefault(doc["solution_id"], []).append(_review(doc))
        for solution_id in caches.records[SOLUTIONS.collection].held_keys():
            yield solution_id, tuple(by_solution.get(solution_id, ()))

    def ensure_indexes(self) -> None:
        # Each list filter is equalities (the caller's visibility clause among them), at most
        # one $in or range, then the page key: an index per common leading field, with the page
        # key last (the ESR order). Fewer indexes also mean fewer entries per imported row.
        for kind in KINDS:
            records = self.db[kind.collection]
            drop_retired_indexes(records, RETIRED_INDEXES)
            records.create_index([("ix.status", ASCENDING), ("ix.page", DESCENDING)])
            records.create_index([("ix.instance", ASCENDING), ("ix.page", DESCENDING)])
            for field in ("ix.orgs", "ix.sdgs"):
                records.create_index(
                    [(field, ASCENDING), ("ix.status", ASCENDING), ("ix.page", DESCENDING)]
                )
        solutions = self.db[SOLUTIONS.collection]
        # Idempotent imports: one solution per external id, kept by solution_external_ids.
        drop_retired_indexes(solutions, RETIRED_SOLUTION_INDEXES)
        run_once(self.db, "solution_external_ids", self._backfill_external_ids)
        run_once(self.db, "needs.ix.regions", self._backfill_need_regions)
        run_once(self.db, "ix.page", self._backfill_page_keys)
        for field in ("ix.targets", "ix.countries"):
            solutions.create_index(
                [(field, ASCENDING), ("ix.status", ASCENDING), ("ix.page", DESCENDING)]
            )
        solutions.create_index(
            [("ix.status", ASCENDING), ("ix.stale", ASCENDING), ("ix.confirmed", ASCENDING)]
        )
        self.db.funding_opportunities.create_index(
            [("ix.status", ASCENDING), ("ix.deadline", ASCENDING)]
        )
        self.db.reviews.create_index([("solution_id", ASCENDING), ("create_time", ASCENDING)])
        Outbox(self.db).ensure_indexes()

    def _backfill_page_keys(self) -> None:
        """Give records stored before page keys existed theirs (idempotent)."""
        for kind in KINDS:
            records = self.db[kind.collection]
            for doc in records.find({"ix.page": {"$exists": False}}, {"ix.updated": 1}):
                records.update_one(
                    {"_id": doc["_id"]},
                    {"$set": {"ix.page": page_key(doc["ix"]["updated"], doc["_id"])}},
                )

    def _backfill_external_ids(self) -> None:
        """Map the external id of every solution stored before solution_external_ids existed
        (idempotent: only missing entries are written; a taken _id is left as it is)."""
        mapped = {doc["_id"] for doc in self.db[EXTERNAL_IDS].find({}, {"_id": 1})}
        missing = [
            {"_id": doc["ix"]["ext"], "solution_id": doc["_id"]}
            for doc in self.db[SOLUTIONS.collection].find(
                {"ix.ext": {"$type": "string"}}, {"ix.ext": 1}
            )
            if doc["ix"]["ext"] not in mapped
        ]
        for start in range(0, len(missing), 1000):
            try:
                self.db[EXTERNAL_IDS].insert_many(missing[start : start + 1000], ordered=False)
            except BulkWriteError as exc:
                # Only a concurrent backfill or import may have written one meanwhile.
                if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                    raise

    def _backfill_need_regions(self) -> None:
        """Give needs stored before the region filter existed their ``ix.regions`` (idempotent)."""
        needs = self.db[NEEDS.collection]
        for doc in needs.find({"ix.regions": {"$exists": False}}, {"ix.countries": 1}):
            country = (doc["ix"].get("countries") or [""])[0]
            needs.update_one(
                {"_id": doc["_id"], "ix.regions": {"$exists": False}},
                {"$set": {"ix.regions": need_regions(country)}},
            )

    def get(self, kind: Kind[T], record_id: str) -> T | None:
        doc = self.db[kind.collection].find_one({"_id": record_id})
        return record_from_doc(kind, doc) if doc else None

    def _read_record_sync(
        self, kind: Kind[T], record_id: str, with_reviews: bool
    ) -> Fetched[T] | None:
        docs = list(
            self.db[kind.collection].aggregate(read_pipeline(kind, record_id, with_reviews))
        )
        return _fetched(kind, docs[0]) if docs else None

    async def read_record(
        self, kind: Kind[T], record_id: str, *, with_reviews: bool = False
    ) -> Fetched[T] | None:
        caches = self.caches
        if caches is None:
            return await self._read_record(kind, record_id, with_reviews)
        with_reviews = with_reviews and kind is SOLUTIONS
        records = caches.records[kind.collection]
        record = records.get(record_id)
        if record is not MISS:
            org_id = getattr(record, kind.org_field)
            org = caches.organizations.get(org_id)
            if org is not MISS:
                if not with_reviews:
                    return Fetched(record, {org_id: org})
                reviews = caches.reviews.get(record_id)
                if reviews is not MISS:
                    return Fetched(record, {org_id: org}, reviews)
        # One command reads what missed and the rest; each cache keeps what it may.
        record_ticket = records.ticket(record_id)
        org_ticket = caches.organizations.seq()  # its id is known only from the record
        reviews_ticket = caches.reviews.ticket(record_id) if with_reviews else -1
        fetched: Fetched[T] | None = None
        try:
            fetched = await self._read_record(kind, record_id, with_reviews)
        finally:
            records.fill(record_id, record_ticket, fetched.record if fetched else None)
            caches.reviews.fill(record_id, reviews_ticket, fetched.reviews if fetched else None)
            for org_id, ref in fetched.organizations.items() if fetched else ():
                caches.organizations.fill_unchanged(org_id, org_ticket, ref)
        return fetched

    async def _read_record(
        self, kind: Kind[T], record_id: str, with_reviews: bool
    ) -> Fetched[T] | None:
        if self.reads is None:
            return await run_sync(self._read_record_sync, kind, record_id, with_reviews)
        pipeline = read_pipeline(kind, record_id, with_reviews)
        cursor = await self.reads[kind.collection].aggregate(pipeline)
        docs = await cursor.to_list()
        return _fetched(kind, docs[0]) if docs else None

    async def read_organization(self, org_id: str) -> OrganizationRef | None:
        if self.caches is not None:
            return await self.caches.organizations.read_through(
                org_id, partial(self._read_organization, org_id)
            )
        return await self._read_organization(org_id)

    async def _read_organization(self, org_id: str) -> OrganizationRef | None:
        if self.reads is None:
            return await run_sync(self.get_organization, org_id)
        doc = await self.reads.organizations.find_one({"_id": org_id})
        return _organization(doc) if doc else None

    async def read_reviews(self, solution_id: str) -> list[Review]:
        if self.caches is not None:
            reviews = await self.caches.reviews.read_through(
                solution_id, partial(self._read_reviews, solution_id)
            )
            return list(reviews or ())
        return list(await self._read_reviews(solution_id))

    async def _read_reviews(self, solution_id: str) -> tuple[Review, ...]:
        if self.reads is None:
            return tuple(await run_sync(self.reviews_of, solution_id))
        cursor = self.reads.reviews.find({"solution_id": solution_id}).sort("create_time", 1)
        return tuple(_review(doc) for doc in await cursor.to_list())

    def list_records(
        self, kind: Kind[T], query: Query, after: Cursor | None, limit: int
    ) -> list[T]:
        filters = query_filters(query, after)
        docs = merged_page(self.db[kind.collection], filters, "ix.page", DESCENDING, limit)
        return [record_from_doc(kind, doc) for doc in docs]

    def published_solutions_by_sdg_region(self) -> dict[tuple[int, str], int]:
        published = self.db[SOLUTIONS.collection].find(
            {"ix.status": "PUBLISHED"}, {"ix.sdgs": 1, "ix.regions": 1}
        )
        counts: dict[tuple[int, str], int] = {}
        for doc in published:
            ix = doc.get("ix", {})
            for sdg in ix.get("sdgs") or []:
                for region in ix.get("regions") or [""]:
                    key = (int(sdg), str(region))
                    counts[key] = counts.get(key, 0) + 1
        return counts

    def reviews_of(self, solution_id: str) -> list[Review]:
        cursor = self.db.reviews.find({"solution_id": solution_id}).sort("create_time", ASCENDING)
        return [_review(doc) for doc in cursor]

    def find_external(self, external_ids: Collection[str]) -> dict[str, str]:
        return _find_external(self.db, external_ids)

    def stale_candidates(self, confirmed_before: datetime, limit: int) -> list[str]:
        cursor = (
            self.db[SOLUTIONS.collection]
            .find(
                {
                    "ix.status": "PUBLISHED",
                    "ix.stale": False,
                    "ix.confirmed": {"$lte": confirmed_before},
                },
                {"_id": 1},
            )
            .limit(limit)
        )
        return [doc["_id"] for doc in cursor]

    def expired_funding(self, now: datetime, limit: int) -> list[str]:
        cursor = self.db.funding_opportunities.find(
            {"ix.status": "OPEN", "ix.deadline": {"$lte": now}}, {"_id": 1}
        ).limit(limit)
        return [doc["_id"] for doc in cursor]

    def get_organization(self, org_id: str) -> OrganizationRef | None:
        doc = self.db.organizations.find_one({"_id": org_id})
        return _organization(doc) if doc else None

    def get_organizations(self, org_ids: Collection[str]) -> dict[str, OrganizationRef]:
        return _get_organizations(self.db, org_ids)

    def apply_organization(self, org: OrganizationRef) -> bool:
        try:
            return apply_if_newer(self.db.organizations, org.id, org.version, organization_doc(org))
        finally:
            if self.caches is not None:  # the worker's store has none; the stream tells the API
                self.caches.organizations.invalidate(org.id)

    def organizations(self) -> list[OrganizationRef]:
        return [_organization(doc) for doc in self.db.organizations.find().sort("_id", ASCENDING)]


def drop_everything(db: Database[Any]) -> None:
    """Test helper: remove the catalog's collections."""
    for name in db.list_collection_names():
        db.drop_collection(name)
