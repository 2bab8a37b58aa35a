"""The outbox relay: publishes a service's outbox rows to Kafka, in commit order, at least once.

Two ways to read the outbox
---------------------------
**Change stream (the fast path).** The relay tails the outbox collection with a MongoDB change
stream of inserts. The stream yields committed inserts in commit order, which is the order we
need per aggregate: version n+1 of an aggregate is written by a transaction that read version
n, so it commits after it (``ssg.platform.events.outbox``). Rows published this way are *not*
marked one by one (a bulk update per 500 rows costs 0.3-1.3 s on SecantusDB, more than reading
and publishing them); instead a **checkpoint** records how far the relay got:

    outbox_lease/{_id: "relay:<collection>", holder, expires_at,
                  checkpoint: {resume_token, last_seq, last_event_id, updated_at}}

It lives in the lease document rather than a collection of its own, so one conditional write
(``holder`` = us) per acknowledged batch both stores the position and renews the lease, and a
relay that lost its lease can never move the checkpoint (the write matches nothing; it stops).

**Scan (bootstrap and fallback only).** The old query-and-mark path (``Outbox.unsent_batch``,
``mark_sent``) runs when there is no usable stream position:

* No checkpoint (first start, rows written before any relay ran): open the stream *first* and
  keep its start position T0, so nothing committed from then on is missed; then scan and publish
  every row with ``sent_at: None`` (marking them); then consume the stream from T0, skipping the
  rows the scan published (their ids are kept in memory until the stream has caught up to the
  present, which is after the scan ended). Only then is a checkpoint written: a crash during the
  scan starts the bootstrap again (marked rows are not rescanned).
* The checkpoint's token cannot be resumed (history rolled off the oplog: ChangeStreamHistoryLost
  286, InvalidResumeToken 260, a garbage token, or SecantusDB's own code for a token of another
  namespace). Codes differ between servers, so the relay does not trust a list: when resuming
  fails with a non-transient OperationFailure *and* a fresh stream opens, the token was the
  problem. It logs a warning and bootstraps as above, restricted to rows with
  ``seq > last_seq - outbox_resume_margin_seconds``: older unmarked rows went out through the
  stream. ``seq`` comes from the writers' clocks and is taken at insert, not at commit, so the
  margin must exceed the longest transaction plus the writers' clock skew (default 10 min).
  Rows that the stream had already published inside the margin come again (at least once).

"Published" therefore means: ``sent_at`` set, or ``seq <= checkpoint.last_seq`` (Option A of
the design). The backlog gauge counts unmarked rows above ``last_seq``: approximate (see
``Outbox.stats``) but cheap. Purge deletes marked rows sent before the retention and unmarked rows
created before it with ``seq <= last_seq - margin``. The alternative, marking stream-published
rows in a background bulk task, was rejected: it keeps the database as busy as the old relay
(marking alone runs at ~400-1,600 rows/s here, below the stream's rate, so it would fall further
behind under load) for a field nobody needs once the checkpoint exists.

Publishing a stream batch
-------------------------
Up to ``outbox_batch_size`` changes or ``outbox_batch_wait_seconds`` after the first one,
whichever comes first, but never ending inside a transaction (so a transaction that inserted
versions out of order can still be sorted: within a batch each aggregate's rows are sent in
``(aggregate_version, seq)`` order, which across transactions is commit order). All rows are
handed to the producer without awaiting each one, then every acknowledgement is awaited (within
``outbox_publish_timeout_seconds``). The next batch is read from the stream meanwhile.

Then the checkpoint moves to the end of the longest prefix, in stream order, whose rows were all
acknowledged. On any failure nothing past that prefix is checkpointed: the relay closes the
stream and the producer (closing waits until the producer has delivered or failed everything it
held, so no old message can land after the resends start), backs off, and resumes from the
checkpoint, resending everything after it in order.

Delivery and order guarantees, precisely:

* **At least once.** A row is never checkpointed before Kafka acknowledged it and every row before
  it in commit order; a crash or failure resends from the checkpoint. Duplicates after a crash:
  at most the rows acknowledged after the last checkpoint (about one batch); after a fallback
  scan, the rows inside the margin. Consumers are idempotent (DESIGN §3).
* **Per-aggregate order of first deliveries.** Rows are handed to the producer in per-aggregate
  order, one aggregate always maps to one partition, and aiokafka keeps one request in flight per
  partition and puts a failed batch back at the head of its queue, so within one producer
  session a partition receives rows in hand-over order. After a failure, everything after the
  checkpoint is resent in order, so a row's *first* delivery follows the first deliveries of all
  rows before it. The one gap: without the idempotent producer, aiokafka *expires* a batch that
  waited longer than the request timeout while a younger batch of the same partition may still
  get through (a broker outage ending within that window); that younger row is then first
  delivered before the expired one, and the resend brings both again in order (the last
  delivery is in order, so state-carrying consumers converge). In production the profile enables
  the idempotent producer: aiokafka then never expires batches and Kafka keeps their order within
  a partition across retries, so the gap does not exist there. Locally (Tansu has no idempotent
  producer) the profile sends one message per batch (``max_batch_size=1``), which narrows the
  window to single messages but does not close it.

One publisher per service: replicas compete for the lease; only the holder publishes. It renews
the lease with every checkpoint, and when a third of the lease has passed without one; a batch
starts sending within a third of the lease after a renewal and each send fails within
``outbox_publish_timeout_seconds`` (<= a third), so the holder is done before its lease can
expire. Lease expiry uses the replicas' clocks: they must agree to well within the lease length.
A holder that finds the lease lost stops publishing and closes its stream.

SIGTERM/SIGINT: finish the batch in flight, checkpoint it, close the stream and producer, release
the lease, exit 0.

Run it as a process of its own: ``python -m ssg.platform.events.relay`` (SSG_SERVICE,
SSG_MONGODB_URI with the service's database, SSG_KAFKA_BOOTSTRAP, SSG_KAFKA_LOCAL_PROFILE).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Self

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import Counter, Gauge, start_http_server
from pydantic import model_validator
from pymongo import MongoClient, ReturnDocument
from pymongo.change_stream import ChangeStream
from pymongo.collection import Collection as MongoCollection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, OperationFailure, PyMongoError

from ssg.platform.events.kafka import producer_options
from ssg.platform.events.outbox import Outbox, OutboxRow, chains_by_key
from ssg.platform.logging import configure_logging
from ssg.platform.mongo import Doc, default_database, make_client, run_sync
from ssg.platform.settings import ConfigError, PlatformSettings, load_settings

log = logging.getLogger(__name__)

LEASE_COLLECTION = "outbox_lease"
# A change stream resume token, as the server returns it (opaque).
ResumeToken = Mapping[str, Any]
# Only inserts are events; updates (the scan's marks) and deletes (purges) are not.
INSERTS_ONLY: list[Doc] = [{"$match": {"operationType": "insert"}}]
# A transaction larger than this many batches is cut (logged): memory must stay bounded.
MAX_TXN_BATCHES = 20

BACKLOG = Gauge("ssg_outbox_backlog", "Outbox rows not yet published (approximate)", ["service"])
OLDEST_AGE = Gauge(
    "ssg_outbox_oldest_unsent_age_seconds", "Age of the oldest unpublished outbox row", ["service"]
)
PUBLISHED = Counter("ssg_outbox_published", "Outbox rows acknowledged by Kafka", ["service"])
FAILURES = Counter(
    "ssg_outbox_publish_failures",
    "Failed publish attempts (a row's send, or connecting the producer)",
    ["service"],
)


class RelaySettings(PlatformSettings):
    """Settings of a relay process (``SSG_OUTBOX_*`` on top of the platform's)."""

    outbox_collection: str = "outbox"
    outbox_batch_size: int = 500
    outbox_batch_wait_seconds: float = 0.05
    outbox_poll_seconds: float = 0.2
    outbox_lease_seconds: float = 15.0
    outbox_publish_timeout_seconds: float = 5.0
    outbox_backoff_initial_seconds: float = 0.2
    outbox_backoff_max_seconds: float = 30.0
    outbox_metrics_interval_seconds: float = 5.0
    outbox_retention_hours: float = 72.0
    outbox_resume_margin_seconds: float = 600.0

    @model_validator(mode="after")
    def _timeouts_fit_the_lease(self) -> Self:
        # A cycle may run a third of the lease plus one send timeout; it must end in time.
        if self.outbox_publish_timeout_seconds > self.outbox_lease_seconds / 3:
            raise ValueError("outbox_publish_timeout_seconds must be <= outbox_lease_seconds / 3")
        if self.outbox_batch_size < 1:
            raise ValueError("outbox_batch_size must be >= 1")
        if self.outbox_batch_wait_seconds <= 0 or self.outbox_poll_seconds <= 0:
            raise ValueError("outbox_batch_wait_seconds and outbox_poll_seconds must be > 0")
        return self


def backoff_delay(
    attempt: int, initial: float, cap: float, rand: Callable[[], float] = random.random
) -> float:
    """Delay before retry number attempt (0-based): doubling from initial up to cap, jittered.

    "Equal jitter": half the delay is fixed, half random, so replicas that failed together do
    not retry in lockstep yet each still waits at least half the nominal delay.
    """
    nominal = min(cap, initial * (2 ** min(attempt, 32)))
    return nominal / 2 + rand() * nominal / 2


@dataclass(frozen=True)
class Checkpoint:
    """How far the change-stream path got: every row up to resume_token was acknowledged."""

    resume_token: ResumeToken | None
    last_seq: int
    last_event_id: str
    updated_at: datetime | None

    @classmethod
    def from_doc(cls, doc: Doc | None) -> Checkpoint | None:
        """The checkpoint stored in a lease document, if it has one."""
        if not doc:
            return None
        return cls(
            resume_token=doc.get("resume_token"),
            last_seq=int(doc.get("last_seq") or 0),
            last_event_id=str(doc.get("last_event_id") or ""),
            updated_at=doc.get("updated_at"),
        )


class Lease:
    """A lock with expiry in one Mongo document, so one relay of a service publishes at a time.

    The same document carries the relay's checkpoint, written only by the holder.
    """

    def __init__(self, db: Database[Doc], name: str, holder: str, seconds: float) -> None:
        self.collection: MongoCollection[Doc] = db[LEASE_COLLECTION]
        self.name = name
        self.holder = holder
        self.seconds = seconds
        self.renewed_at = 0.0

    def acquire(self) -> bool:
        """Take or renew the lease; False while another holder's lease is unexpired."""
        started = time.monotonic()
        now = datetime.now(UTC)
        try:
            doc = self.collection.find_one_and_update(
                {"_id": self.name, "$or": [{"holder": self.holder}, {"expires_at": {"$lte": now}}]},
                {
                    "$set": {
                        "holder": self.holder,
                        "expires_at": now + timedelta(seconds=self.seconds),
                    }
                },
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            # The filter missed an existing document (held by someone else) and the upsert's
            # insert then collided with it: the standard "not yours" answer.
            return False
        held = doc is not None and doc.get("holder") == self.holder
        if held:
            # Measured from before the request, so our view of the expiry errs early.
            self.renewed_at = started
        return held

    def save_checkpoint(
        self, resume_token: ResumeToken | None, last_seq: int | None, last_event_id: str
    ) -> bool:
        """Store the checkpoint and renew the lease in one write; False if the lease is lost."""
        started = time.monotonic()
        now = datetime.now(UTC)
        update: Doc = {
            "$set": {
                "checkpoint.resume_token": resume_token,
                "checkpoint.last_event_id": last_event_id,
                "checkpoint.updated_at": now,
                "expires_at": now + timedelta(seconds=self.seconds),
            }
        }
        if last_seq is not None:
            # $max: seq is not commit order, and last_seq must never move backwards.
            update["$max"] = {"checkpoint.last_seq": last_seq}
        result = self.collection.update_one({"_id": self.name, "holder": self.holder}, update)
        if result.matched_count:
            self.renewed_at = started
        return bool(result.matched_count)

    def checkpoint(self) -> Checkpoint | None:
        """The stored checkpoint (whoever holds the lease)."""
        doc = self.collection.find_one({"_id": self.name}, {"checkpoint": 1})
        return Checkpoint.from_doc(doc.get("checkpoint") if doc else None)

    def release(self) -> None:
        """Give the lease up now so another replica need not wait for it to expire."""
        self.collection.update_one(
            {"_id": self.name, "holder": self.holder},
            {"$set": {"holder": None, "expires_at": datetime.fromtimestamp(0, UTC)}},
        )


def _txn_of(change: Doc) -> Any:
    """The transaction a change belongs to, or None outside a transaction."""
    if change.get("txnNumber") is None:
        return None
    lsid = change.get("lsid") or {}
    return (repr(lsid.get("id")), change["txnNumber"])


class ChangeReader:
    """Reads batches of insert changes from a change stream (blocking; one caller at a time)."""

    def __init__(self, stream: ChangeStream[Doc], limit: int, fill_seconds: float) -> None:
        self.stream = stream
        self.limit = limit
        self.fill_seconds = fill_seconds
        # A change read past the end of a batch (it opened the next transaction).
        self._carry: Doc | None = None

    def read(self, idle_seconds: float) -> list[Doc]:
        """Up to limit changes, never ending inside a transaction; [] after idle_seconds idle.

        A batch closes when it is full or ``fill_seconds`` after its first change, but only at a
        transaction boundary, or when the stream has nothing more (a committed transaction is
        visible at once, so that is a boundary too).
        """
        batch: list[Doc] = []
        if self._carry is not None:
            batch.append(self._carry)
            self._carry = None
        started = time.monotonic()
        fill_until = started + self.fill_seconds
        while True:
            change = self.stream.try_next()  # waits up to the stream's max_await_time_ms
            now = time.monotonic()
            if change is None:
                if batch and (now >= fill_until or len(batch) >= self.limit):
                    return batch
                if not batch and now - started >= idle_seconds:
                    return batch
                continue
            if not batch:
                fill_until = now + self.fill_seconds
            elif len(batch) >= self.limit or now >= fill_until:
                txn = _txn_of(change)
                same_txn = txn is not None and txn == _txn_of(batch[-1])
                if not same_txn or len(batch) >= self.limit * MAX_TXN_BATCHES:
                    if same_txn:
                        log.warning("outbox transaction too large for one batch; cutting it")
                    self._carry = change
                    return batch
            batch.append(change)


ProducerFactory = Callable[[], AIOKafkaProducer]


class _LeaseLost(Exception):
    """The lease passed to another relay while this one was leading."""


class OutboxRelay:
    """Publishes one outbox to Kafka in per-aggregate order while it holds the service's lease."""

    def __init__(
        self,
        *,
        service: str,
        outbox: Outbox,
        lease: Lease,
        producer_factory: ProducerFactory,
        batch_size: int = 500,
        batch_wait: float = 0.05,
        poll_seconds: float = 0.2,
        publish_timeout: float = 5.0,
        backoff_initial: float = 0.2,
        backoff_max: float = 30.0,
        metrics_interval: float = 5.0,
        retention: timedelta = timedelta(hours=72),
        resume_margin: timedelta = timedelta(minutes=10),
    ) -> None:
        self.service = service
        self.outbox = outbox
        self.lease = lease
        self._producer_factory = producer_factory
        self._producer: AIOKafkaProducer | None = None
        self.batch_size = batch_size
        self.batch_wait = batch_wait
        self.poll_seconds = poll_seconds
        self.publish_timeout = publish_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.metrics_interval = metrics_interval
        self.retention = retention
        self.resume_margin_ns = int(resume_margin.total_seconds() * 1e9)
        self.is_leader = False
        self.published = 0
        self.failures = 0
        # Times a stored resume token could not be used and the relay rescanned (for operators).
        self.fallbacks = 0
        self.checkpoints = 0
        self._stream: ChangeStream[Doc] | None = None
        self._checkpoint: Checkpoint | None = None
        # Rows the bootstrap scan published: the stream skips them until it has caught up.
        self._scanned: set[str] = set()
        # Scan path: acknowledged by Kafka, not yet marked sent (skipped by the next selection).
        self._unmarked: set[str] = set()
        self._mark_task: asyncio.Task[None] | None = None
        self._had_rows = False
        self._next_purge = 0.0
        self._published_metric = PUBLISHED.labels(service)
        self._failures_metric = FAILURES.labels(service)

    @classmethod
    def from_settings(cls, settings: RelaySettings, client: MongoClient[Doc]) -> OutboxRelay:
        """A relay for the service's database (named in SSG_MONGODB_URI) and Kafka."""
        db = default_database(client)
        options = producer_options(settings)
        # Sends must fail (and be retried by us) well within the lease; see the module docstring.
        options["request_timeout_ms"] = int(settings.outbox_publish_timeout_seconds * 1000)
        holder = f"{settings.instance_id}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        return cls(
            service=settings.service,
            outbox=Outbox(db, settings.outbox_collection),
            lease=Lease(
                db, f"relay:{settings.outbox_collection}", holder, settings.outbox_lease_seconds
            ),
            producer_factory=lambda: AIOKafkaProducer(**options),
            batch_size=settings.outbox_batch_size,
            batch_wait=settings.outbox_batch_wait_seconds,
            poll_seconds=settings.outbox_poll_seconds,
            publish_timeout=settings.outbox_publish_timeout_seconds,
            backoff_initial=settings.outbox_backoff_initial_seconds,
            backoff_max=settings.outbox_backoff_max_seconds,
            metrics_interval=settings.outbox_metrics_interval_seconds,
            retention=timedelta(hours=settings.outbox_retention_hours),
            resume_margin=timedelta(seconds=settings.outbox_resume_margin_seconds),
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until stop is set; then checkpoint, close stream and producer, release lease."""
        await self._with_retry(stop, lambda: run_sync(self.outbox.ensure_indexes))
        metrics = asyncio.create_task(self._metrics_loop(stop))
        attempt = 0
        try:
            while not stop.is_set():
                try:
                    if not await self._take_lease():
                        await _wait(stop, min(self.lease.seconds / 3, 1.0))
                        continue
                    await self._lead(stop)
                    attempt = 0
                except _LeaseLost:
                    log.warning("outbox lease lost", extra={"holder": self.lease.holder})
                    self.is_leader = False
                    await self._close_stream()
                except (KafkaError, PyMongoError, OSError, TimeoutError) as exc:
                    # Resume from the checkpoint with a fresh stream and producer: closing the
                    # producer first lets nothing it still held land after the resends.
                    await self._close_stream()
                    await self._close_producer()
                    delay = backoff_delay(attempt, self.backoff_initial, self.backoff_max)
                    attempt += 1
                    log.warning(
                        "outbox relay cycle failed; resuming from the checkpoint",
                        extra={"error": repr(exc), "attempt": attempt, "retry_in_s": delay},
                    )
                    await _wait(stop, delay)
        finally:
            metrics.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await metrics
            await self._shutdown()

    async def _take_lease(self) -> bool:
        held = await run_sync(self.lease.acquire)
        if held and not self.is_leader:
            log.info("outbox lease acquired", extra={"holder": self.lease.holder})
        elif not held and self.is_leader:
            log.warning("outbox lease lost", extra={"holder": self.lease.holder})
        self.is_leader = held
        return held

    async def _renew_if_due(self) -> None:
        """Renew the lease when a third of it passed since the last renewal; raise if lost."""
        if time.monotonic() - self.lease.renewed_at < self.lease.seconds / 3:
            return
        if not await run_sync(self.lease.acquire):
            raise _LeaseLost

    async def _lead(self, stop: asyncio.Event) -> None:
        """While holding the lease: open the stream (bootstrapping if needed), then tail it."""
        producer = await self._ensure_producer()
        self._checkpoint = await run_sync(self.lease.checkpoint)
        needs_scan, scan_after = await self._open_stream(self._checkpoint)
        if needs_scan:
            if not await self._scan(stop, scan_after):
                return  # stopped mid-scan: no checkpoint, the next start scans again
            # The scan is done: from now on the stream position alone tells what is left.
            assert self._stream is not None
            await self._save_checkpoint(self._stream.resume_token, None, "")
        await self._tail(stop, producer)

    async def _open_stream(self, checkpoint: Checkpoint | None) -> tuple[bool, int | None]:
        """Open the change stream; return whether to scan first, and above which seq (or all)."""
        if checkpoint is None or checkpoint.resume_token is None:
            self._stream = await run_sync(self._watch, None)
            return True, None
        try:
            self._stream = await run_sync(self._watch, checkpoint.resume_token)
            return False, None
        except OperationFailure as exc:
            if _transient(exc):
                raise
            # Opening from now succeeding proves the stored position was the problem; if this
            # fails too, the error is general and we retry with backoff, checkpoint untouched.
            self._stream = await run_sync(self._watch, None)
            self.fallbacks += 1
            after = checkpoint.last_seq - self.resume_margin_ns if checkpoint.last_seq else None
            log.warning(
                "outbox change stream cannot resume from the checkpoint; rescanning unsent rows",
                extra={
                    "code": exc.code,
                    "error": str(exc)[:300],
                    "last_event_id": checkpoint.last_event_id,
                    "scan_after_seq": after,
                },
            )
            return True, after

    def _watch(self, resume_token: ResumeToken | None) -> ChangeStream[Doc]:
        # A short server-side wait lets a batch fill for batch_wait without overshooting it.
        return self.outbox.collection.watch(
            INSERTS_ONLY,
            resume_after=resume_token,
            max_await_time_ms=max(1, int(min(self.batch_wait, self.poll_seconds) * 1000)),
            batch_size=self.batch_size,
        )

    async def _scan(self, stop: asyncio.Event, after_seq: int | None) -> bool:
        """Publish (and mark) rows the stream will not deliver; False if stopped before the end."""
        self._scanned.clear()
        while not stop.is_set():
            await self._renew_if_due()
            await self.publish_batch(after_seq)
            if not self._had_rows:
                await self._flush_marks()
                log.info("outbox scan done", extra={"rows": len(self._scanned)})
                return True
        return False

    async def _tail(self, stop: asyncio.Event, producer: AIOKafkaProducer) -> None:
        """Publish the stream batch by batch until stop, reading each next batch meanwhile."""
        assert self._stream is not None
        reader = ChangeReader(self._stream, self.batch_size, self.batch_wait)
        reading: asyncio.Future[list[Doc]] = asyncio.ensure_future(
            run_sync(reader.read, self.poll_seconds)
        )
        try:
            while not stop.is_set():
                changes = await reading
                if stop.is_set():
                    break  # read but not sent: the next holder gets them from the checkpoint
                reading = asyncio.ensure_future(run_sync(reader.read, self.poll_seconds))
                await self._renew_if_due()
                if not changes:
                    # Caught up with the present, so past every row the bootstrap scan saw.
                    self._scanned.clear()
                    await self._purge_if_due()
                    continue
                await self.publish_changes(producer, changes)
        finally:
            # The cursor is not thread-safe: let the read in flight end before anyone closes it.
            with contextlib.suppress(Exception):
                await reading

    async def publish_changes(self, producer: AIOKafkaProducer, changes: list[Doc]) -> int:
        """Publish one stream batch, checkpoint its acknowledged prefix; return rows acknowledged.

        Raises the first failure (a send error, or TimeoutError when acknowledgements did not all
        arrive within the publish timeout) after checkpointing what came before it.
        """
        rows: dict[str, OutboxRow] = {}
        for change in changes:
            event_id = change["documentKey"]["_id"]
            if event_id in self._scanned:
                continue
            try:
                rows[event_id] = OutboxRow.from_doc(change["fullDocument"])
            except (KeyError, TypeError, ValueError) as exc:
                # Outbox.add never writes such a row; blocking the outbox on it would be worse.
                log.error(
                    "malformed outbox row skipped",
                    extra={"event_id": str(event_id), "error": repr(exc)},
                )
        sends: dict[str, asyncio.Future[Any]] = {}
        for chain in chains_by_key(rows.values()).values():
            for row in chain:
                sends[row.event_id] = await producer.send(
                    row.topic, row.value, key=row.key.encode(), headers=_headers(row)
                )
        error: BaseException | None = None
        if sends:
            _, pending = await asyncio.wait(sends.values(), timeout=self.publish_timeout)
            if pending:
                error = TimeoutError(f"{len(pending)} outbox sends unacknowledged")
        acked = {
            event_id
            for event_id, future in sends.items()
            if future.done() and not future.cancelled() and future.exception() is None
        }
        if error is None:
            error = next(
                (f.exception() for f in sends.values() if f.done() and f.exception()), None
            )
        # The checkpoint may cover only a prefix (in stream order) of rows that are all done.
        prefix = 0
        last_seq: int | None = None
        for change in changes:
            event_id = change["documentKey"]["_id"]
            if event_id in sends and event_id not in acked:
                break
            prefix += 1
            if event_id in acked:
                seq = rows[event_id].seq
                last_seq = seq if last_seq is None else max(last_seq, seq)
        self.published += len(acked)
        self._published_metric.inc(len(acked))
        if prefix:
            last = changes[prefix - 1]
            await self._save_checkpoint(last["_id"], last_seq, str(last["documentKey"]["_id"]))
        if error is not None:
            failed = len(sends) - len(acked)
            self.failures += failed
            self._failures_metric.inc(failed)
            raise error
        return len(acked)

    async def _save_checkpoint(
        self, token: ResumeToken | None, last_seq: int | None, last_event_id: str
    ) -> None:
        if not await run_sync(self.lease.save_checkpoint, token, last_seq, last_event_id):
            raise _LeaseLost
        self.checkpoints += 1
        previous = self._checkpoint.last_seq if self._checkpoint else 0
        self._checkpoint = Checkpoint(
            token, max(previous, last_seq or 0), last_event_id, datetime.now(UTC)
        )

    async def publish_batch(self, after_seq: int | None = None) -> int:
        """Scan path: publish one batch of unmarked rows in per-aggregate order (each row after
        its predecessor's acknowledgement) and mark them; return how many Kafka acknowledged.

        Raises the first broker error after recording what was acknowledged before it.
        """
        producer = await self._ensure_producer()
        rows = await run_sync(
            self.outbox.unsent_batch, self.batch_size, frozenset(self._unmarked), after_seq
        )
        self._had_rows = bool(rows)
        if not rows:
            await self._flush_marks()
            return 0
        # No send starts later than a third of the lease after its renewal (a slow database
        # query counts too), and a send fails within the publish timeout (<= a third), so this
        # relay is done before the lease can pass to another replica.
        deadline = self.lease.renewed_at + self.lease.seconds / 3
        outcomes = await asyncio.gather(
            *(
                self._publish_chain(producer, chain, deadline)
                for chain in chains_by_key(rows).values()
            )
        )
        acked = [event_id for ids, _ in outcomes for event_id in ids]
        self._record_acked(acked)
        errors = [error for _, error in outcomes if error is not None]
        if errors:
            self.failures += len(errors)
            self._failures_metric.inc(len(errors))
            raise errors[0]
        return len(acked)

    async def _publish_chain(
        self, producer: AIOKafkaProducer, chain: list[OutboxRow], deadline: float
    ) -> tuple[list[str], KafkaError | None]:
        acked: list[str] = []
        for row in chain:
            if time.monotonic() > deadline:
                break  # the rest waits for the next cycle, after the lease is renewed
            try:
                await producer.send_and_wait(
                    row.topic, row.value, key=row.key.encode(), headers=_headers(row)
                )
            except KafkaError as exc:
                # Later rows of this aggregate must not overtake this one: stop the chain.
                return acked, exc
            acked.append(row.event_id)
        return acked, None

    def _record_acked(self, acked: list[str]) -> None:
        if not acked:
            return
        self.published += len(acked)
        self._published_metric.inc(len(acked))
        self._scanned.update(acked)
        self._unmarked.update(acked)
        if self._mark_task is None or self._mark_task.done():
            self._mark_task = asyncio.create_task(self._mark_pending())

    async def _mark_pending(self) -> None:
        # Marks whatever is pending, repeatedly, until nothing is; ids leave _unmarked only after
        # the database has them as sent, so the next selection never sees them as unsent.
        while self._unmarked:
            ids = frozenset(self._unmarked)
            try:
                await run_sync(self.outbox.mark_sent, ids)
            except PyMongoError as exc:
                log.warning("marking outbox rows sent failed", extra={"error": repr(exc)})
                return  # kept in _unmarked; the next acknowledged batch tries again
            self._unmarked.difference_update(ids)

    async def _flush_marks(self) -> None:
        if self._mark_task is not None:
            await self._mark_task
        if self._unmarked:
            self._mark_task = asyncio.create_task(self._mark_pending())
            await self._mark_task

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        producer = self._producer_factory()
        try:
            await producer.start()
        except (KafkaError, OSError):
            self.failures += 1
            self._failures_metric.inc()
            # A producer whose start failed is not reused: stop it and build a new one next time.
            with contextlib.suppress(Exception):
                await producer.stop()
            raise
        self._producer = producer
        return producer

    async def _close_producer(self) -> None:
        if self._producer is not None:
            # stop() waits until every message it holds was delivered or failed (bounded by the
            # request timeout); only then may resends start. The cap guards against a hang.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._producer.stop(), timeout=10)
            self._producer = None

    async def _close_stream(self) -> None:
        if self._stream is not None:
            with contextlib.suppress(PyMongoError):
                await run_sync(self._stream.close)
            self._stream = None

    def _published_through(self) -> int | None:
        return self._checkpoint.last_seq if self._checkpoint else None

    async def _metrics_loop(self, stop: asyncio.Event) -> None:
        # Its own task: counting the backlog must never hold up publishing.
        while not stop.is_set():
            await self._refresh_metrics()
            await _wait(stop, self.metrics_interval)

    async def _refresh_metrics(self) -> None:
        try:
            checkpoint = (
                self._checkpoint if self.is_leader else await run_sync(self.lease.checkpoint)
            )
            through = checkpoint.last_seq if checkpoint else None
            stats = await run_sync(self.outbox.stats, None, through)
        except PyMongoError as exc:
            log.warning("outbox stats unavailable", extra={"error": repr(exc)})
            return
        BACKLOG.labels(self.service).set(stats.backlog)
        OLDEST_AGE.labels(self.service).set(stats.oldest_unsent_age_seconds)

    async def _purge_if_due(self) -> None:
        if time.monotonic() < self._next_purge:
            return
        self._next_purge = time.monotonic() + 600
        cutoff = datetime.now(UTC) - self.retention
        through = self._published_through()
        purged = await run_sync(
            self.outbox.purge_sent,
            cutoff,
            through - self.resume_margin_ns if through else None,
        )
        if purged:
            log.info("purged published outbox rows", extra={"rows": purged})

    async def _with_retry(self, stop: asyncio.Event, step: Callable[[], Awaitable[Any]]) -> None:
        attempt = 0
        while not stop.is_set():
            try:
                await step()
                return
            except PyMongoError as exc:
                delay = backoff_delay(attempt, self.backoff_initial, self.backoff_max)
                attempt += 1
                log.warning("outbox set-up failed", extra={"error": repr(exc), "retry_in_s": delay})
                await _wait(stop, delay)

    async def _shutdown(self) -> None:
        try:
            await self._flush_marks()
        except Exception:
            log.exception("final outbox marks failed; those rows will be published again")
        await self._close_stream()
        await self._close_producer()
        if self.is_leader:
            with contextlib.suppress(PyMongoError):
                await run_sync(self.lease.release)
            self.is_leader = False


def _headers(row: OutboxRow) -> list[tuple[str, bytes]]:
    return [
        ("event_type", row.event_type.encode()),
        ("trace_id", row.trace_id.encode()),
        ("event_id", row.event_id.encode()),
    ]


def _transient(exc: OperationFailure) -> bool:
    """Whether a failed watch is worth retrying as is (not a sign of a lost resume position)."""
    labels = ("ResumableChangeStreamError", "RetryableWriteError", "TransientTransactionError")
    return any(exc.has_error_label(label) for label in labels)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    """Sleep up to seconds, waking at once when stop is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def serve(settings: RelaySettings) -> None:
    """Run one relay process until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    client = make_client(settings)
    try:
        relay = OutboxRelay.from_settings(settings, client)
        log.info("outbox relay starting", extra={"holder": relay.lease.holder})
        await relay.run(stop)
        log.info("outbox relay stopped", extra={"published": relay.published})
    finally:
        client.close()


def main() -> int:
    """Entry point of ``python -m ssg.platform.events.relay``; the exit code."""
    try:
        settings = load_settings(RelaySettings)
    except ConfigError as exc:
        configure_logging("outbox-relay")
        log.error(str(exc))
        return 2
    configure_logging(settings.service, settings.instance, settings.log_level)
    try:
        start_http_server(settings.metrics_port, settings.metrics_host)
    except OSError as exc:
        # Telemetry never blocks start-up (STYLE habit 9).
        log.warning("metrics server not started", extra={"error": repr(exc)})
    try:
        asyncio.run(serve(settings))
    except ConfigError as exc:
        log.error(str(exc))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
