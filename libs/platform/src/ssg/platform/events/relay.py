"""The outbox relay: publishes a service's outbox rows to Kafka, then marks them sent.

Delivery is **at least once**. A row is marked sent only after Kafka acknowledged it, so a
crash (or a lost lease) between the acknowledgement and the mark publishes that row again
later; consumers are idempotent (DESIGN §3), so a redelivery changes nothing twice. A row is
never dropped: a failed send leaves it unsent and the relay retries with exponential backoff.

Per-aggregate order: every batch holds, for each aggregate, a prefix of its unsent rows in
version order (``Outbox.unsent_batch``), and within a batch each aggregate's rows go out one at
a time, the next only after Kafka acknowledged the previous. So a row is never published before
all earlier rows of its key were acknowledged, across batches and restarts, whatever the
producer's retries do. Aggregates are published concurrently.

One publisher per service: replicas compete for a lease document (``outbox_lease``); only the
holder publishes and it renews the lease every cycle. A cycle stops sending new rows after a
third of the lease, and each send fails within ``outbox_publish_timeout_seconds``, so the holder
has finished before its lease can expire and another replica take over. Lease expiry uses the
replicas' clocks: they must agree to well within the lease length.

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
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Self

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import Counter, Gauge, start_http_server
from pydantic import model_validator
from pymongo import MongoClient, ReturnDocument
from pymongo.collection import Collection as MongoCollection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError

from ssg.platform.events.kafka import producer_options
from ssg.platform.events.outbox import Outbox, OutboxRow, chains_by_key
from ssg.platform.logging import configure_logging
from ssg.platform.mongo import Doc, default_database, make_client, run_sync
from ssg.platform.settings import ConfigError, PlatformSettings, load_settings

log = logging.getLogger(__name__)

LEASE_COLLECTION = "outbox_lease"

BACKLOG = Gauge("ssg_outbox_backlog", "Outbox rows not yet published", ["service"])
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
    outbox_poll_seconds: float = 0.2
    outbox_lease_seconds: float = 15.0
    outbox_publish_timeout_seconds: float = 5.0
    outbox_backoff_initial_seconds: float = 0.2
    outbox_backoff_max_seconds: float = 30.0
    outbox_metrics_interval_seconds: float = 5.0
    outbox_retention_hours: float = 72.0

    @model_validator(mode="after")
    def _timeouts_fit_the_lease(self) -> Self:
        # A cycle may run a third of the lease plus one send timeout; it must end in time.
        if self.outbox_publish_timeout_seconds > self.outbox_lease_seconds / 3:
            raise ValueError("outbox_publish_timeout_seconds must be <= outbox_lease_seconds / 3")
        if self.outbox_batch_size < 1:
            raise ValueError("outbox_batch_size must be >= 1")
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


class Lease:
    """A lock with expiry in one Mongo document, so one relay of a service publishes at a time."""

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

    def release(self) -> None:
        """Give the lease up now so another replica need not wait for it to expire."""
        self.collection.update_one(
            {"_id": self.name, "holder": self.holder},
            {"$set": {"holder": None, "expires_at": datetime.fromtimestamp(0, UTC)}},
        )

    def current_holder(self) -> str | None:
        """Who holds the lease (even if expired), for tests and operators."""
        doc = self.collection.find_one({"_id": self.name})
        return doc.get("holder") if doc else None


ProducerFactory = Callable[[], AIOKafkaProducer]


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
        poll_seconds: float = 0.2,
        backoff_initial: float = 0.2,
        backoff_max: float = 30.0,
        metrics_interval: float = 5.0,
        retention: timedelta = timedelta(hours=72),
    ) -> None:
        self.service = service
        self.outbox = outbox
        self.lease = lease
        self._producer_factory = producer_factory
        self._producer: AIOKafkaProducer | None = None
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.metrics_interval = metrics_interval
        self.retention = retention
        self.is_leader = False
        self.published = 0
        self.failures = 0
        # Acknowledged by Kafka, not yet marked sent: skipped when selecting the next batch,
        # so marking (slow on some servers) overlaps with publishing the next batch.
        self._unmarked: set[str] = set()
        self._mark_task: asyncio.Task[None] | None = None
        self._next_metrics = 0.0
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
            poll_seconds=settings.outbox_poll_seconds,
            backoff_initial=settings.outbox_backoff_initial_seconds,
            backoff_max=settings.outbox_backoff_max_seconds,
            metrics_interval=settings.outbox_metrics_interval_seconds,
            retention=timedelta(hours=settings.outbox_retention_hours),
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until stop is set; then finish marking, stop the producer, release the lease."""
        await self._with_retry(stop, lambda: run_sync(self.outbox.ensure_indexes))
        attempt = 0
        try:
            while not stop.is_set():
                try:
                    await self._refresh_metrics()
                    if not await run_sync(self.lease.acquire):
                        if self.is_leader:
                            log.warning("outbox lease lost", extra={"holder": self.lease.holder})
                        self.is_leader = False
                        await _wait(stop, min(self.lease.seconds / 3, 1.0))
                        continue
                    if not self.is_leader:
                        log.info("outbox lease acquired", extra={"holder": self.lease.holder})
                    self.is_leader = True
                    await self.publish_batch()
                    attempt = 0
                    if not self._had_rows:
                        await self._purge_if_due()
                        await _wait(stop, self.poll_seconds)
                except (KafkaError, PyMongoError, OSError, TimeoutError) as exc:
                    delay = backoff_delay(attempt, self.backoff_initial, self.backoff_max)
                    attempt += 1
                    log.warning(
                        "outbox relay cycle failed; retrying",
                        extra={"error": repr(exc), "attempt": attempt, "retry_in_s": delay},
                    )
                    await _wait(stop, delay)
        finally:
            await self._shutdown()

    async def publish_batch(self) -> int:
        """Publish one batch in per-aggregate order; return how many rows Kafka acknowledged.

        Raises the first broker error after recording what was acknowledged before it.
        """
        producer = await self._ensure_producer()
        rows = await run_sync(self.outbox.unsent_batch, self.batch_size, frozenset(self._unmarked))
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
            headers = [
                ("event_type", row.event_type.encode()),
                ("trace_id", row.trace_id.encode()),
                ("event_id", row.event_id.encode()),
            ]
            try:
                await producer.send_and_wait(
                    row.topic, row.value, key=row.key.encode(), headers=headers
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

    async def _refresh_metrics(self) -> None:
        if time.monotonic() < self._next_metrics:
            return
        self._next_metrics = time.monotonic() + self.metrics_interval
        try:
            stats = await run_sync(self.outbox.stats)
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
        purged = await run_sync(self.outbox.purge_sent, cutoff)
        if purged:
            log.info("purged sent outbox rows", extra={"rows": purged})

    async def _with_retry(self, stop: asyncio.Event, step: Callable[[], Any]) -> None:
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
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._producer.stop(), timeout=10)
            self._producer = None
        if self.is_leader:
            with contextlib.suppress(PyMongoError):
                await run_sync(self.lease.release)
            self.is_leader = False


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
