"""The transactional outbox: events are written in the same MongoDB transaction as the state they
describe, into the service's ``outbox`` collection; ``OutboxRelay`` publishes them later.

A row::

    {_id: event_id, topic, key: aggregate_id, value: envelope bytes, aggregate_version,
     event_type, trace_id, seq, created_at, sent_at: None}

What counts as published: a row is published once Kafka acknowledged it and either its
``sent_at`` is set (the relay's scan path marks rows) or its ``seq`` is at most the relay
checkpoint's ``last_seq`` (the change-stream path does not mark rows one by one; see
``ssg.platform.events.relay``). Queries below take that ``published_through`` seq.

Order: rows of one aggregate (``key``) are published in ``(aggregate_version, seq)`` order.
This relies on what DESIGN §3 already asks of every service: version n+1 of an aggregate is
written by a transaction that read version n, so it commits after it (a concurrent writer of
the same aggregate gets a write conflict and retries). ``seq`` (insert time in ns, strictly
increasing within a process) breaks ties between events of one transaction and gives the
relay a fair "oldest first" order across aggregates.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from bson import Binary
from pymongo import ASCENDING, InsertOne, MongoClient, UpdateOne
from pymongo.client_session import ClientSession
from pymongo.collection import Collection as MongoCollection
from pymongo.database import Database
from pymongo.errors import (
    BulkWriteError,
    ClientBulkWriteException,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
)
from pymongo.write_concern import WriteConcern

from ssg.contracts.events.v1 import envelope_pb2
from ssg.platform.errors import FailedPrecondition

Doc = dict[str, Any]
T = TypeVar("T")
OUTBOX_COLLECTION = "outbox"
# Serves the relay's first query: the oldest unsent rows.
UNSENT_BY_SEQ = "unsent_by_seq"
# Serves the relay's second query: unsent rows of some keys, in per-aggregate order.
UNSENT_BY_KEY = "unsent_by_key"

# Below Kafka's default 1 MiB message limit (broker message.max.bytes, producer
# max_request_size), leaving room for the key, headers and record overhead.
MAX_OUTBOX_EVENT_BYTES = 900 * 1024
# A unit that lost a unique-index race (same request id, same member, two imports of one
# external id) runs again and then sees the winner's committed write; more attempts than this
# means something else is wrong.
DUPLICATE_KEY_ATTEMPTS = 3
# MongoDB 8.0: the first wire version with the bulkWrite command, which inserts into several
# collections in one command (pymongo's MongoClient.bulk_write).
CLIENT_BULK_WRITE_WIRE_VERSION = 25


class EventTooLarge(FailedPrecondition):
    """The change would produce an event too large to publish; the command is refused."""


_seq_lock = threading.Lock()
_last_seq = 0


def next_seq() -> int:
    """A strictly increasing int64 for this process, close to the wall clock in nanoseconds."""
    global _last_seq
    with _seq_lock:
        _last_seq = max(time.time_ns(), _last_seq + 1)
        return _last_seq


@dataclass(frozen=True)
class OutboxRow:
    """One stored event waiting for (or past) publication."""

    event_id: str
    topic: str
    key: str
    value: bytes
    aggregate_version: int
    seq: int
    event_type: str
    trace_id: str
    created_at: datetime

    @classmethod
    def from_doc(cls, doc: Doc) -> OutboxRow:
        """Build a row from its stored document."""
        return cls(
            event_id=doc["_id"],
            topic=doc["topic"],
            key=doc["key"],
            value=bytes(doc["value"]),
            aggregate_version=int(doc["aggregate_version"]),
            seq=int(doc["seq"]),
            event_type=doc.get("event_type", ""),
            trace_id=doc.get("trace_id", ""),
            created_at=doc["created_at"],
        )

    @property
    def order(self) -> tuple[int, int]:
        """Position of the row among the rows of its aggregate."""
        return (self.aggregate_version, self.seq)


@dataclass(frozen=True)
class OutboxStats:
    """What the backlog gauges report."""

    backlog: int
    oldest_unsent_age_seconds: float


def chains_by_key(rows: Iterable[OutboxRow]) -> dict[str, list[OutboxRow]]:
    """Group rows per aggregate, each group in publication order (oldest aggregates first)."""
    chains: dict[str, list[OutboxRow]] = {}
    for row in sorted(rows, key=lambda r: r.seq):
        chains.setdefault(row.key, []).append(row)
    for chain in chains.values():
        chain.sort(key=lambda r: r.order)
    return chains


class Outbox:
    """The ``outbox`` collection of one service's database."""

    def __init__(self, db: Database[Doc], collection: str = OUTBOX_COLLECTION) -> None:
        self.db = db
        self.collection: MongoCollection[Doc] = db[collection]

    def ensure_indexes(self) -> None:
        """Create the indexes the relay's queries use (idempotent)."""
        self.collection.create_index(
            [("sent_at", ASCENDING), ("seq", ASCENDING)], name=UNSENT_BY_SEQ
        )
        self.collection.create_index(
            [
                ("sent_at", ASCENDING),
                ("key", ASCENDING),
                ("aggregate_version", ASCENDING),
                ("seq", ASCENDING),
            ],
            name=UNSENT_BY_KEY,
        )

    def add(self, session: ClientSession, topic: str, envelope: envelope_pb2.Envelope) -> str:
        """Insert envelope for topic inside the caller's transaction; return its event id.

        The row's ``_id`` is the event id, so the same event can never be stored twice (a second
        insert raises DuplicateKeyError and aborts that transaction).
        """
        self.add_many(session, [(topic, envelope)])
        return envelope.event_id

    def add_many(
        self, session: ClientSession, events: Sequence[tuple[str, envelope_pb2.Envelope]]
    ) -> list[str]:
        """Insert (topic, envelope) pairs in order with one write, inside the caller's transaction."""
        docs = self.rows(session, events)
        _insert_run(self.collection, docs, session)
        return [doc["_id"] for doc in docs]

    def rows(
        self, session: ClientSession, events: Sequence[tuple[str, envelope_pb2.Envelope]]
    ) -> list[Doc]:
        """The outbox rows of (topic, envelope) pairs, to insert in session's transaction
        (refused at once outside one, or when an envelope is too large or incomplete)."""
        if not session.in_transaction:
            # Outside a transaction the event could commit without its state change, or the
            # reverse: exactly what the outbox exists to prevent.
            raise RuntimeError("Outbox.add must run inside the caller's transaction")
        return [row_document(topic, envelope) for topic, envelope in events]

    def unsent_batch(
        self, limit: int, exclude: Collection[str] = (), after_seq: int | None = None
    ) -> list[OutboxRow]:
        """Up to limit unsent rows, forming for each aggregate a prefix of its unsent rows.

        ``exclude`` holds rows already acknowledged by Kafka but not yet marked sent; they are
        always a prefix of their aggregate's unsent rows, so skipping them keeps the property.
        ``after_seq`` restricts the scan to rows with a larger ``seq`` (the relay's fallback after
        its change-stream position was lost: older rows went out through the stream).
        """
        want = limit + len(exclude)
        unsent = _unsent_filter(after_seq)
        # 1. Which aggregates hold the oldest unsent rows (fairness across aggregates)...
        oldest = self.collection.find(unsent, {"key": 1}).sort("seq", ASCENDING)
        keys = list(dict.fromkeys(doc["key"] for doc in oldest.limit(want)))
        if not keys:
            return []
        # 2. ...and, for those, their unsent rows in per-aggregate order. Reading every unsent
        # row of a key from its lowest version is what makes "no row before its predecessors"
        # hold across batches and restarts; cutting this sorted list keeps a prefix per key.
        cursor = self.collection.find({**unsent, "key": {"$in": keys}}).sort(
            [("key", ASCENDING), ("aggregate_version", ASCENDING), ("seq", ASCENDING)]
        )
        rows: list[OutboxRow] = []
        for doc in cursor.limit(want):
            if doc["_id"] in exclude:
                continue
            rows.append(OutboxRow.from_doc(doc))
            if len(rows) >= limit:
                break
        return rows

    def mark_sent(self, event_ids: Collection[str], when: datetime | None = None) -> int:
        """Record that these rows reached Kafka; return how many were changed."""
        if not event_ids:
            return 0
        stamp = {"$set": {"sent_at": when or datetime.now(UTC)}}
        # One bulk request of point updates by _id: an index lookup each, where a large "$in"
        # filter is evaluated per document by some servers (3x slower on SecantusDB).
        result = self.collection.bulk_write(
            [UpdateOne({"_id": event_id, "sent_at": None}, stamp) for event_id in event_ids],
            ordered=False,
        )
        return result.modified_count

    def stats(
        self, now: datetime | None = None, published_through: int | None = None
    ) -> OutboxStats:
        """Count unpublished rows (unmarked, seq above published_through) and the oldest's age.

        Approximate when rows were published through the change stream: ``seq`` comes from the
        writers' clocks, so a row of a long transaction (or a writer whose clock lags) can sit
        below ``published_through`` before it is published. Good enough for a gauge.
        """
        now = now or datetime.now(UTC)
        unsent = _unsent_filter(published_through)
        backlog = self.collection.count_documents(unsent)
        oldest = self.collection.find_one(unsent, {"created_at": 1}, sort=[("seq", ASCENDING)])
        age = (now - oldest["created_at"]).total_seconds() if oldest else 0.0
        return OutboxStats(backlog, max(age, 0.0))

    def purge_sent(self, older_than: datetime, published_through: int | None = None) -> int:
        """Delete published rows created or sent before older_than (kept for audits, replays).

        Rows published through the change stream carry no ``sent_at``; they go when their
        ``seq`` is at most published_through (the caller subtracts its safety margin).
        """
        purged = self.collection.delete_many(
            {"sent_at": {"$ne": None, "$lt": older_than}}
        ).deleted_count
        if published_through is not None:
            purged += self.collection.delete_many(
                {
                    "sent_at": None,
                    "seq": {"$lte": published_through},
                    "created_at": {"$lt": older_than},
                }
            ).deleted_count
        return purged


def _unsent_filter(after_seq: int | None) -> Doc:
    """Rows not marked sent, above after_seq when given (served by the UNSENT_BY_SEQ index)."""
    if after_seq is None:
        return {"sent_at": None}
    return {"sent_at": None, "seq": {"$gt": after_seq}}


def row_document(topic: str, envelope: envelope_pb2.Envelope) -> Doc:
    """The outbox row for one event; refuses incomplete or oversized envelopes."""
    if not envelope.event_id or not envelope.aggregate_id:
        raise ValueError("envelope needs event_id and aggregate_id")
    value = envelope.SerializeToString()
    if len(value) > MAX_OUTBOX_EVENT_BYTES:
        # Refused here, the command fails and nothing is written; accepted, it would sit at
        # the head of the outbox and stall every later event of the service at the broker.
        raise EventTooLarge(
            f"{envelope.event_type} for {envelope.aggregate_id} is {len(value)} bytes; "
            f"events are limited to {MAX_OUTBOX_EVENT_BYTES}"
        )
    return {
        "_id": envelope.event_id,
        "topic": topic,
        "key": envelope.aggregate_id,
        "value": Binary(value),
        "aggregate_version": envelope.aggregate_version,
        "event_type": envelope.event_type,
        "trace_id": envelope.trace_id,
        "seq": next_seq(),
        "created_at": datetime.now(UTC),
        "sent_at": None,
    }


def _insert_run(
    collection: MongoCollection[Doc], docs: Sequence[Doc], session: ClientSession
) -> None:
    """Insert docs into one collection in order, with one command; a taken _id or unique key
    raises DuplicateKeyError, as insert_one does (atomically reacts to it)."""
    if len(docs) == 1:
        collection.insert_one(docs[0], session=session)
    elif docs:
        try:
            collection.insert_many(docs, ordered=True, session=session)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if errors and errors[0].get("code") == 11000:
                raise DuplicateKeyError(errors[0].get("errmsg", "duplicate key")) from exc
            raise


def _writes_many_collections_at_once(client: MongoClient[Doc]) -> bool:
    """Whether every known server takes the bulkWrite command (MongoDB 8.0+). Read from the
    topology the client already holds: no round trip, and False while it knows no server."""
    servers = client.topology_description.known_servers
    return bool(servers) and all(
        s.max_wire_version >= CLIENT_BULK_WRITE_WIRE_VERSION for s in servers
    )


class UnitOfWork:
    """One transaction: state writes through ``session``, plus inserts (``insert``) and events
    (``add``) that wait in the unit until ``flush``.

    Waiting inserts go out together: with one bulkWrite command across collections where the
    server has it (MongoDB 8.0+), else one insert command per run of one collection. Each
    command in a transaction costs a round trip and the server's per-statement work (on
    SecantusDB five documents in one bulkWrite cost about what two inserts do, ADR 0015).
    ``write_with_events`` flushes before the commit; code that reads, in the same unit, what it
    inserted through ``insert`` calls ``flush`` first (the stores do it before every read)."""

    def __init__(self, session: ClientSession, db: Database[Doc], outbox: Outbox) -> None:
        self.session = session
        self.db = db
        self.outbox = outbox
        self._waiting: list[tuple[str, Doc]] = []

    def insert(self, collection: str, doc: Doc) -> None:
        """Insert doc into collection as part of this transaction, at the next flush."""
        self._waiting.append((collection, doc))

    def add(self, topic: str, envelope: envelope_pb2.Envelope) -> str:
        """Record an event to publish if (and only if) this transaction commits."""
        return self.add_many([(topic, envelope)])[0]

    def add_many(self, events: Sequence[tuple[str, envelope_pb2.Envelope]]) -> list[str]:
        """Record several events, in order (refused at once when too large or incomplete)."""
        docs = self.outbox.rows(self.session, events)
        self._waiting += [(self.outbox.collection.name, doc) for doc in docs]
        return [doc["_id"] for doc in docs]

    def flush(self) -> None:
        """Write the waiting inserts, in order; DuplicateKeyError if one takes a used key."""
        waiting, self._waiting = self._waiting, []
        if not waiting:
            return
        collections = {name for name, _ in waiting}
        if len(collections) > 1 and _writes_many_collections_at_once(self.db.client):
            self._bulk_write(waiting)
            return
        run: list[Doc] = []
        for i, (name, doc) in enumerate(waiting):
            run.append(doc)
            if i + 1 == len(waiting) or waiting[i + 1][0] != name:
                _insert_run(self.db[name], run, self.session)
                run = []

    def _bulk_write(self, waiting: list[tuple[str, Doc]]) -> None:
        prefix = f"{self.db.name}."
        try:
            self.db.client.bulk_write(
                [InsertOne(doc, namespace=prefix + name) for name, doc in waiting],
                session=self.session,
                ordered=True,
            )
        except ClientBulkWriteException as exc:
            # The command's own error (e.g. a write conflict) carries the labels that make
            # with_transaction retry the unit; a document's error is raised as insert_one would.
            if isinstance(exc.error, PyMongoError):
                raise exc.error from exc
            # Typed as WriteError, but pymongo 4.x hands over the server's documents.
            first: Doc = (cast("list[Doc]", exc.write_errors) or [{}])[0]
            if first.get("code") == 11000:
                raise DuplicateKeyError(first.get("errmsg", "duplicate key"), 11000) from exc
            raise OperationFailure(first.get("errmsg", str(exc)), first.get("code")) from exc


def write_with_events(
    client: MongoClient[Doc],
    db: Database[Doc],
    fn: Callable[[UnitOfWork], T],
    *,
    outbox_collection: str = OUTBOX_COLLECTION,
) -> T:
    """Run fn's state writes and outbox inserts in one transaction and return fn's result; the
    unit's waiting inserts and events (``UnitOfWork.insert``, ``add``) are flushed after fn.

    pymongo's ``with_transaction`` retries the whole of fn on TransientTransactionError (e.g. a
    write conflict) and the commit on UnknownTransactionCommitResult, for up to 120 s; so fn
    must not have side effects outside the session. It is a blocking call: from async code use
    ``await run_sync(write_with_events, client, db, fn)``.
    """
    outbox = Outbox(db, outbox_collection)

    def unit(session: ClientSession) -> T:
        uow = UnitOfWork(session, db, outbox)
        result = fn(uow)
        uow.flush()
        return result

    # Not causally consistent: a unit needs no more than the primary's latest snapshot, which a
    # transaction reads anyway, and a causal session adds afterClusterTime to the first
    # statement of a retried transaction, which SecantusDB refuses on bulkWrite.
    with client.start_session(causal_consistency=False) as session:
        return session.with_transaction(unit, write_concern=WriteConcern("majority"))


def atomically(
    client: MongoClient[Doc],
    db: Database[Doc],
    fn: Callable[[UnitOfWork], T],
    *,
    attempts: int = DUPLICATE_KEY_ATTEMPTS,
    outbox_collection: str = OUTBOX_COLLECTION,
) -> T:
    """``write_with_events``, run again (up to attempts in all) when the unit loses a
    unique-index race (DuplicateKeyError): the next run reads the winner's committed write and
    decides afresh (e.g. returns the first request's result). Blocking, like
    ``write_with_events``."""
    for attempt in range(attempts):
        try:
            return write_with_events(client, db, fn, outbox_collection=outbox_collection)
        except DuplicateKeyError:
            if attempt + 1 == attempts:
                raise
    raise ValueError(f"attempts must be at least 1, got {attempts}")
