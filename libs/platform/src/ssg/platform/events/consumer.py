"""The idempotent event consumer: at-least-once delivery made effectively-once.

For each message of its topics an ``EventConsumer``
1. parses the envelope; a message that is not a valid envelope goes straight to ``<topic>.dlq``;
2. looks up the handler registered for the envelope's ``event_type``; types it has no handler
   for are skipped and counted (a topic carries many event types);
3. skips the event if its ``event_id`` is already in the ``processed_events`` collection;
4. otherwise runs the handler and records the ``event_id`` in ONE MongoDB transaction, so the
   read-model write and the mark commit together (the handler gets the session on the event);
5. retries a failing handler with exponential backoff, then dead-letters it with the reason;
   an outage of a dependency (``TRANSIENT_ERRORS``) is waited out instead, never dead-lettered;
   an event naming something not known here yet (``NotKnownYet``: its own event, on another
   topic, may still be on its way) holds its partition only: the partition is paused and the
   event fetched again with backoff, other partitions carry on, and after
   ``SSG_EVENT_WAIT_SECONDS`` it is dead-lettered with the reason;
6. commits the offset and continues: it never stops on a poison message, and never drops one
   without a trace (every message is handled, a duplicate, skipped or dead-lettered).

Handlers are synchronous functions run in a worker thread: the MongoDB driver (pymongo,
mongoengine) is synchronous and must not block the event loop that keeps the group alive.

A consumer without a ``ProcessedEvents`` store relies on its handler being idempotent on its
own, e.g. through ``apply_if_newer`` (a conditional upsert on ``aggregate_version``): that is
the second mechanism, for read models that only keep the latest state of each aggregate.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from google.protobuf.message import Message
from prometheus_client import Counter as PromCounter
from prometheus_client import Gauge, Histogram
from pymongo import ASCENDING
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import ConnectionFailure, DuplicateKeyError

from ssg.platform.events.envelope import (
    Envelope,
    EnvelopeError,
    dlq_topic,
    parse_envelope,
    unpack_payload,
)
from ssg.platform.events.kafka import consumer_options, producer_options
from ssg.platform.mongo import run_sync
from ssg.platform.settings import PlatformSettings
from ssg.platform.tracing import accept_trace_id, bound_trace_id

log = logging.getLogger(__name__)

P = TypeVar("P", bound=Message)

MAX_REASON_CHARS = 1000
# event_type comes from message content: label values outside the registry are collapsed so a
# producer cannot blow up metric cardinality.
OTHER_TYPE = "other"
INVALID_TYPE = "invalid"

EVENTS_CONSUMED = PromCounter(
    "ssg_events_consumed_total",
    "Events taken from Kafka by outcome (handled, duplicate, skipped, dead_lettered).",
    ["service", "topic", "event_type", "outcome"],
)
EVENTS_DEAD_LETTERED = PromCounter(
    "ssg_events_dead_lettered_total",
    "Messages sent to the dead-letter topic, by reason category.",
    ["service", "topic", "reason"],
)
PROCESSING_SECONDS = Histogram(
    "ssg_event_processing_seconds",
    "Time to handle one event, retries included.",
    ["service", "topic", "event_type"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
EVENT_LAG_SECONDS = Histogram(
    "ssg_event_lag_seconds",
    "End-to-end lag from the envelope's occurred_at to the event being handled.",
    ["service", "topic", "event_type"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600),
)


EVENTS_WAITING = Gauge(
    "ssg_events_waiting",
    "Partitions held by an event naming something not known yet (retried until "
    "SSG_EVENT_WAIT_SECONDS, then dead-lettered).",
    ["service", "topic"],
)


class Outcome(enum.StrEnum):
    """What became of one message."""

    HANDLED = "handled"
    DUPLICATE = "duplicate"
    SKIPPED = "skipped"
    DEAD_LETTERED = "dead_lettered"
    # Stop was requested while the handler was backing off: not committed, so redelivered.
    ABANDONED = "abandoned"
    # It names something not known yet: its partition is paused and it is fetched again later.
    WAITING = "waiting"


class TransientError(Exception):
    """Raised by a handler when a dependency is unavailable: the event is retried until it
    is back, never dead-lettered."""


# Infrastructure outages rather than bad events (pymongo's ConnectionFailure covers
# AutoReconnect, NetworkTimeout and ServerSelectionTimeoutError).
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (TransientError, ConnectionFailure)


class NonRetryableError(Exception):
    """Raised by a handler for a failure that retrying cannot fix: dead-lettered at once."""


class NotKnownYet(Exception):
    """Raised by a handler when the event names something this service has not heard of yet,
    whose own event may still be on its way (e.g. a proposal naming an organization registered
    moments ago): retried with backoff, holding only its partition, for up to
    ``SSG_EVENT_WAIT_SECONDS``, then dead-lettered with the reason."""


class AlreadyProcessed(Exception):
    """The event id is already recorded for this consumer."""


@dataclass(frozen=True)
class Event(Generic[P]):
    """What a handler receives: the envelope, its unpacked payload and where it came from."""

    envelope: Envelope
    payload: P
    topic: str
    partition: int
    offset: int
    # The open transaction's session when the consumer has a ProcessedEvents store:
    # pass it to every write so the read model and the processed mark commit together.
    session: ClientSession | None = None


Handler = Callable[[Event[Any]], None]


@dataclass(frozen=True)
class Registration:
    """One event type's payload type and handler."""

    event_type: str
    payload_type: type[Message]
    handler: Handler


class HandlerRegistry:
    """Handlers by event_type, one per type: ``@handlers.on("catalog.SolutionPublished", T)``."""

    def __init__(self) -> None:
        self._by_type: dict[str, Registration] = {}

    def on(
        self, event_type: str, payload_type: type[P]
    ) -> Callable[[Callable[[Event[P]], None]], Callable[[Event[P]], None]]:
        """Decorator registering a handler for event_type whose payload is payload_type."""

        def register(handler: Callable[[Event[P]], None]) -> Callable[[Event[P]], None]:
            self.add(event_type, payload_type, handler)
            return handler

        return register

    def add(
        self, event_type: str, payload_type: type[P], handler: Callable[[Event[P]], None]
    ) -> None:
        """Register handler for event_type; a second handler for the same type is a bug."""
        if event_type in self._by_type:
            raise ValueError(f"a handler for {event_type!r} is already registered")
        self._by_type[event_type] = Registration(event_type, payload_type, handler)

    def get(self, event_type: str) -> Registration | None:
        """The registration for event_type, or None when this consumer does not handle it."""
        return self._by_type.get(event_type)

    @property
    def event_types(self) -> frozenset[str]:
        """Every event type with a handler."""
        return frozenset(self._by_type)

    def __len__(self) -> int:
        return len(self._by_type)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a failing handler is retried before dead-lettering."""

    attempts: int = 5
    base_seconds: float = 0.5
    multiplier: float = 2.0
    max_seconds: float = 30.0
    # Spread retries of many consumers failing on the same dependency (0 = deterministic).
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.base_seconds < 0 or self.max_seconds < 0 or self.multiplier < 1:
            raise ValueError("delays must be non-negative and the multiplier at least 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter is a fraction in [0, 1)")

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number retry (1 = the first retry)."""
        if retry < 1:
            raise ValueError("retries are numbered from 1")
        raw = min(self.max_seconds, self.base_seconds * self.multiplier ** (retry - 1))
        if self.jitter:
            raw *= 1 - (rng or random).random() * self.jitter
        return raw

    def delays(self) -> list[float]:
        """The waits between all attempts (one fewer than attempts)."""
        return [self.delay(n) for n in range(1, self.attempts)]

    @classmethod
    def from_settings(cls, settings: PlatformSettings) -> RetryPolicy:
        """The policy configured by the ``SSG_EVENT_RETRY_*`` settings."""
        return cls(
            attempts=settings.event_retry_attempts,
            base_seconds=settings.event_retry_base_seconds,
            max_seconds=settings.event_retry_max_seconds,
        )


class ProcessedEvents:
    """Event ids a consumer has handled, under a unique index in the service's own database."""

    def __init__(
        self, db: Database[Any], consumer: str, collection: str = "processed_events"
    ) -> None:
        self._db = db
        # Keyed by consumer as well: two consumers of one service may handle the same event
        # for different purposes, and each must do so once.
        self.consumer = consumer
        self.collection: Collection[Any] = db[collection]

    def ensure_indexes(self) -> None:
        """Create the unique (consumer, event_id) index; safe to call at every start."""
        self.collection.create_index(
            [("consumer", ASCENDING), ("event_id", ASCENDING)],
            unique=True,
            name="consumer_event_id_unique",
        )

    def already(self, event_id: str, session: ClientSession | None = None) -> bool:
        """True when event_id was handled by this consumer."""
        found = self.collection.find_one(
            {"consumer": self.consumer, "event_id": event_id}, {"_id": 1}, session=session
        )
        return found is not None

    def mark(
        self,
        event_id: str,
        session: ClientSession | None,
        *,
        event_type: str = "",
        topic: str = "",
    ) -> None:
        """Record event_id as handled (inside the handler's transaction); AlreadyProcessed if it was."""
        try:
            self.collection.insert_one(
                {
                    "consumer": self.consumer,
                    "event_id": event_id,
                    "event_type": event_type,
                    "topic": topic,
                    "handled_at": datetime.now(UTC),
                },
                session=session,
            )
        except DuplicateKeyError:
            raise AlreadyProcessed(event_id) from None

    def start_session(self) -> ClientSession:
        """A session on this store's client, for a transaction spanning mark and handler."""
        return self._db.client.start_session()


@dataclass(frozen=True)
class Waiting:
    """A partition held by the event at offset, waiting since (monotonic) until resume_at."""

    offset: int
    since: float
    retries: int
    resume_at: float


def next_wait(
    previous: Waiting | None,
    offset: int,
    now: float,
    bound_seconds: float,
    retry: RetryPolicy,
) -> Waiting | None:
    """When to fetch the event at offset again after it named something not known yet; None
    once it has waited bound_seconds (it is dead-lettered then). The last retry falls on the
    bound itself, so the event is given the whole bound."""
    since = previous.since if previous is not None and previous.offset == offset else now
    if now - since >= bound_seconds:
        return None
    retries = previous.retries + 1 if previous is not None and previous.offset == offset else 1
    resume_at = min(now + retry.delay(min(retries, 30)), since + bound_seconds)
    return Waiting(offset, since, retries, resume_at)


def dead_letter_headers(
    reason: str, topic: str, partition: int, offset: int, group: str
) -> list[tuple[str, bytes]]:
    """The ``dlq-*`` headers saying why and from where a message was dead-lettered."""
    return [
        ("dlq-reason", reason[:MAX_REASON_CHARS].encode()),
        ("dlq-source-topic", topic.encode()),
        ("dlq-source-partition", str(partition).encode()),
        ("dlq-source-offset", str(offset).encode()),
        ("dlq-consumer-group", group.encode()),
        ("dlq-failed-at", datetime.now(UTC).isoformat().encode()),
    ]


def apply_if_newer(
    collection: Collection[Any],
    id: str,
    version: int,
    doc: Mapping[str, Any],
    *,
    session: ClientSession | None = None,
) -> bool:
    """Upsert doc as _id=id unless a stored version is >= version; True when it was written."""
    fields = {k: v for k, v in doc.items() if k != "_id"}
    fields["aggregate_version"] = version
    try:
        result = collection.update_one(
            {"_id": id, "aggregate_version": {"$lt": version}},
            {"$set": fields},
            upsert=True,
            session=session,
        )
    except DuplicateKeyError:
        # The filter missed because the stored version is not older; the upsert then collided
        # with the existing _id: a stale or repeated event, nothing to do.
        return False
    return result.matched_count == 1 or result.upserted_id is not None


class EventConsumer:
    """A consumer-group member that handles each event once and dead-letters what it cannot."""

    def __init__(
        self,
        settings: PlatformSettings,
        *,
        group_id: str,
        topics: Iterable[str],
        handlers: HandlerRegistry,
        processed: ProcessedEvents | None = None,
        retry: RetryPolicy | None = None,
        poll_timeout_ms: int = 500,
        max_records: int = 100,
    ) -> None:
        self.settings = settings
        self.group_id = group_id
        self.topics = list(topics)
        if not self.topics:
            raise ValueError("a consumer needs at least one topic")
        self.handlers = handlers
        self.processed = processed
        self.retry = retry or RetryPolicy.from_settings(settings)
        self.stats: Counter[str] = Counter()
        self._poll_timeout_ms = poll_timeout_ms
        self._max_records = max_records
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()
        self._running = False
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self.wait_seconds = settings.event_wait_seconds
        # Partitions paused on an event that names something not known yet.
        self._waiting: dict[TopicPartition, Waiting] = {}

    async def start(self) -> None:
        """Connect the DLQ producer, ensure the processed index, and join the group."""
        if self._consumer is not None:
            return
        if self.processed is not None:
            await run_sync(self.processed.ensure_indexes)
        producer = AIOKafkaProducer(**producer_options(self.settings))
        await producer.start()
        consumer = AIOKafkaConsumer(*self.topics, **consumer_options(self.settings, self.group_id))
        try:
            await consumer.start()
        except BaseException:
            await producer.stop()
            raise
        self._producer, self._consumer = producer, consumer

    def assignment(self) -> set[TopicPartition]:
        """Partitions this member owns right now (empty before it has joined)."""
        return set(self._consumer.assignment()) if self._consumer is not None else set()

    async def run(self) -> None:
        """Consume until stop() is called; commit after each message; leave the group at the end."""
        self._running = True
        try:
            await self.start()
            assert self._consumer is not None
            while not self._stopping.is_set():
                self._resume_due()
                batches = await self._consumer.getmany(
                    timeout_ms=self._poll_timeout_ms, max_records=self._max_records
                )
                for tp, records in batches.items():
                    if not await self._drain(tp, records):
                        break
        finally:
            await self._close()

    async def _drain(self, tp: TopicPartition, records: list[ConsumerRecord[Any, Any]]) -> bool:
        """Process one partition's batch in order; False when the consumer should stop polling."""
        assert self._consumer is not None
        for record in records:
            if self._stopping.is_set():
                return False
            if tp not in self._consumer.assignment():
                # Revoked by a rebalance: the new owner resumes from our last commit.
                return True
            outcome = await self._process(record)
            if outcome is Outcome.ABANDONED:
                return False
            if outcome is Outcome.WAITING:
                if tp not in self._consumer.assignment():
                    # Revoked meanwhile: its new owner fetches the event from our last commit.
                    self._waiting.pop(tp, None)
                    return True
                # Fetched again from this offset once resumed; the rest of the batch with it.
                self._consumer.pause(tp)
                self._consumer.seek(tp, record.offset)
                self._report_waiting()
                return True
            if self._waiting.pop(tp, None) is not None:
                self._report_waiting()
            await self._commit(tp, record.offset + 1)
        return True

    def _resume_due(self) -> None:
        """Resume the held partitions whose event is due for another try; forget the ones a
        rebalance took away (their new owner starts its own wait)."""
        assert self._consumer is not None
        assigned = self._consumer.assignment()
        now = time.monotonic()
        for tp, waiting in list(self._waiting.items()):
            if tp not in assigned:
                del self._waiting[tp]
                self._report_waiting()
            elif waiting.resume_at <= now:
                self._consumer.resume(tp)

    def _report_waiting(self) -> None:
        held = Counter(tp.topic for tp in self._waiting)
        for topic in self.topics:
            EVENTS_WAITING.labels(self.settings.service, topic).set(held[topic])

    async def _commit(self, tp: TopicPartition, offset: int) -> None:
        assert self._consumer is not None
        try:
            await self._consumer.commit({tp: offset})
        except (CommitFailedError, IllegalStateError) as exc:
            # The partition moved to another member; it will redeliver from the previous commit
            # and the processed-events store makes that harmless.
            log.warning(
                "offset commit failed after a rebalance",
                extra={"topic": tp.topic, "partition": tp.partition, "error": str(exc)},
            )

    async def _process(self, record: ConsumerRecord[Any, Any]) -> Outcome:
        started = time.monotonic()
        try:
            env = parse_envelope(record.value)
        except EnvelopeError as exc:
            await self._dead_letter(record, str(exc), "invalid_message")
            return self._count(record, INVALID_TYPE, Outcome.DEAD_LETTERED)
        registration = self.handlers.get(env.event_type)
        if registration is None:
            return self._count(record, OTHER_TYPE, Outcome.SKIPPED)
        with bound_trace_id(accept_trace_id(env.trace_id)):
            outcome = await self._handle(record, env, registration)
        if outcome not in (Outcome.ABANDONED, Outcome.WAITING):
            PROCESSING_SECONDS.labels(self.settings.service, record.topic, env.event_type).observe(
                time.monotonic() - started
            )
        if outcome is Outcome.HANDLED and env.HasField("occurred_at"):
            lag = time.time() - env.occurred_at.ToDatetime(tzinfo=UTC).timestamp()
            EVENT_LAG_SECONDS.labels(self.settings.service, record.topic, env.event_type).observe(
                max(0.0, lag)
            )
        return self._count(record, env.event_type, outcome)

    async def _handle(
        self, record: ConsumerRecord[Any, Any], env: Envelope, registration: Registration
    ) -> Outcome:
        try:
            payload = unpack_payload(env, registration.payload_type)
        except EnvelopeError as exc:
            await self._dead_letter(record, str(exc), "invalid_message")
            return Outcome.DEAD_LETTERED
        event: Event[Any] = Event(env, payload, record.topic, record.partition, record.offset)
        attempt = 0
        outages = 0
        while True:
            try:
                # Inside the loop: a database outage here is waited out like one in the handler.
                if self.processed is not None and await run_sync(
                    self.processed.already, env.event_id
                ):
                    return Outcome.DUPLICATE
                done = await run_sync(self._apply, registration, event)
                return Outcome.HANDLED if done else Outcome.DUPLICATE
            except NonRetryableError as exc:
                await self._dead_letter(record, _reason(exc), "non_retryable", env)
                return Outcome.DEAD_LETTERED
            except NotKnownYet as exc:
                return await self._not_known_yet(record, env, exc)
            except TRANSIENT_ERRORS as exc:
                # The event is fine, a dependency is down: dead-lettering would only lose order
                # and force a replay. Wait for it (health reports the outage meanwhile).
                outages += 1
                delay = self.retry.delay(min(outages, 30))
                what, error = "dependency unavailable; waiting", _reason(exc)
            except Exception as exc:
                attempt += 1
                if attempt >= self.retry.attempts:
                    await self._dead_letter(record, _reason(exc), "handler_failed", env)
                    return Outcome.DEAD_LETTERED
                delay = self.retry.delay(attempt)
                what, error = "event handler failed; retrying", _reason(exc)
            log.warning(
                what,
                extra={
                    "event_id": env.event_id,
                    "event_type": env.event_type,
                    "attempt": attempt,
                    "retry_in": round(delay, 3),
                    "error": error,
                },
            )
            # A stop during the wait abandons the message uncommitted (it is redelivered)
            # rather than holding shutdown for the whole backoff.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
                return Outcome.ABANDONED

    async def _not_known_yet(
        self, record: ConsumerRecord[Any, Any], env: Envelope, exc: NotKnownYet
    ) -> Outcome:
        """Hold the record's partition for another try later, or dead-letter the record once it
        has waited the bound."""
        tp = TopicPartition(record.topic, record.partition)
        previous = self._waiting.get(tp)
        waiting = next_wait(
            previous, record.offset, time.monotonic(), self.wait_seconds, self.retry
        )
        if waiting is None:
            reason = _reason(exc)
            if previous is not None and previous.offset == record.offset:
                reason += f" (still so after {time.monotonic() - previous.since:.0f} s)"
            await self._dead_letter(record, reason, "not_known_yet", env)
            return Outcome.DEAD_LETTERED
        self._waiting[tp] = waiting
        log.warning(
            "event names something not known yet; retrying",
            extra={
                "event_id": env.event_id,
                "event_type": env.event_type,
                "attempt": waiting.retries,
                "waited": round(time.monotonic() - waiting.since, 3),
                "retry_in": round(waiting.resume_at - time.monotonic(), 3),
                "error": _reason(exc),
            },
        )
        return Outcome.WAITING

    def _apply(self, registration: Registration, event: Event[Any]) -> bool:
        """Run the handler (in a worker thread); False when another delivery already did."""
        if self.processed is None:
            registration.handler(event)
            return True
        processed = self.processed
        env = event.envelope

        def transaction(session: ClientSession) -> None:
            # Mark first: a concurrent delivery of the same event conflicts here, before any
            # read-model write; a handler error aborts the mark with everything else.
            processed.mark(env.event_id, session, event_type=env.event_type, topic=event.topic)
            registration.handler(replace(event, session=session))

        with processed.start_session() as session:
            try:
                session.with_transaction(transaction)
            except AlreadyProcessed:
                return False
        return True

    async def _dead_letter(
        self,
        record: ConsumerRecord[Any, Any],
        reason: str,
        category: str,
        env: Envelope | None = None,
    ) -> None:
        assert self._producer is not None
        headers = [
            *(record.headers or ()),
            *dead_letter_headers(
                reason, record.topic, record.partition, record.offset, self.group_id
            ),
        ]
        # If the DLQ itself cannot be written, this raises and the offset stays uncommitted:
        # the process fails loudly instead of losing the message.
        await self._producer.send_and_wait(
            dlq_topic(record.topic), value=record.value, key=record.key, headers=headers
        )
        EVENTS_DEAD_LETTERED.labels(self.settings.service, record.topic, category).inc()
        log.warning(
            "message dead-lettered",
            extra={
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "reason": reason[:MAX_REASON_CHARS],
                "event_id": env.event_id if env is not None else None,
            },
        )

    def _count(
        self, record: ConsumerRecord[Any, Any], event_type: str, outcome: Outcome
    ) -> Outcome:
        self.stats[outcome.value] += 1
        if outcome not in (Outcome.ABANDONED, Outcome.WAITING):
            EVENTS_CONSUMED.labels(
                self.settings.service, record.topic, event_type, outcome.value
            ).inc()
        return outcome

    def request_stop(self) -> None:
        """Ask run() to finish the current message, commit and leave the group."""
        self._stopping.set()

    async def stop(self) -> None:
        """Request a stop and wait for run() to have left the group (bound it with a timeout)."""
        self.request_stop()
        if self._running:
            await self._stopped.wait()

    async def _close(self) -> None:
        try:
            if self._consumer is not None:
                # Stopping the consumer sends LeaveGroup, so the others rebalance at once.
                await self._consumer.stop()
        finally:
            if self._producer is not None:
                await self._producer.stop()
            self._consumer = self._producer = None
            self._stopped.set()


def _reason(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
