"""SearchPerformed activity events, published straight to Kafka (no outbox; see ADR 0010).

The search API owns no database to hold an outbox, and a lost analytics event is tolerable,
so the producer sends without waiting: a query never waits for Kafka, and a failed send is
counted and logged, never an error for the caller. The producer connects in the background
(``run``); until it has, events are counted as dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import uuid
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaProducer
from prometheus_client import Counter

from ssg.contracts.common.v1 import geography_pb2, organization_type_pb2
from ssg.contracts.search.v1 import events_pb2, search_service_pb2
from ssg.platform.events.envelope import Origin, build_envelope
from ssg.platform.events.kafka import producer_options
from ssg.platform.settings import PlatformSettings
from ssg.search.domain.queries import SearchQuery
from ssg.search.events.topics import SEARCH_EVENTS_TOPIC

log = logging.getLogger(__name__)

ACTIVITY_EVENTS = Counter(
    "ssg_search_activity_events_total",
    "SearchPerformed events by outcome (sent, failed, dropped).",
    ["outcome"],
)
EVENT_TYPE = "search.SearchPerformed"
RECONNECT_SECONDS = 5.0


def user_hash(key: bytes, subject: str) -> str:
    """A keyed, one-way hash of a user's subject ('' for anonymous callers)."""
    if not subject:
        return ""
    return hmac.new(key, subject.encode(), hashlib.sha256).hexdigest()[:32]


class ActivityPublisher:
    """Sends SearchPerformed events without holding up the query."""

    def __init__(self, settings: PlatformSettings, topic: str = SEARCH_EVENTS_TOPIC) -> None:
        self.settings = settings
        self.topic = topic
        self.origin = Origin(settings.service, settings.instance, settings.instance_id)
        self._producer: AIOKafkaProducer | None = None
        self._pending: set[asyncio.Task[None]] = set()

    @property
    def connected(self) -> bool:
        """True once the producer has started."""
        return self._producer is not None

    async def run(self, stop: asyncio.Event) -> None:
        """Connect (retrying while Kafka is down), then stay until stop; flush at the end."""
        while not stop.is_set():
            producer = AIOKafkaProducer(**producer_options(self.settings))
            try:
                await producer.start()
            except Exception as exc:
                await producer.stop()
                log.warning("activity producer not connected", extra={"error": str(exc)})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), RECONNECT_SECONDS)
                continue
            self._producer = producer
            break
        await stop.wait()
        producer_now, self._producer = self._producer, None
        if producer_now is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer_now.flush(), 5)
            await producer_now.stop()

    def publish(self, event: events_pb2.SearchPerformed) -> None:
        """Send event in the background; the caller never waits for Kafka."""
        if self._producer is None:
            ACTIVITY_EVENTS.labels("dropped").inc()
            return
        task = asyncio.create_task(self._send(self._producer, event))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _send(self, producer: AIOKafkaProducer, event: events_pb2.SearchPerformed) -> None:
        search_id = uuid.uuid4().hex
        envelope = build_envelope(self.origin, EVENT_TYPE, search_id, 1, event)
        try:
            await producer.send_and_wait(
                self.topic, value=envelope.SerializeToString(), key=search_id.encode()
            )
        except Exception as exc:
            ACTIVITY_EVENTS.labels("failed").inc()
            log.warning("activity event not sent", extra={"error": str(exc)})
            return
        ACTIVITY_EVENTS.labels("sent").inc()


def _values(enum_type: Any, prefix: str, names: Iterable[str]) -> list[Any]:
    return [enum_type.Value(prefix + n) for n in names]


def performed(q: SearchQuery, result_count: int, user: str) -> events_pb2.SearchPerformed:
    """The SearchPerformed event of an answered query (user: the hashed subject)."""
    f = q.filters
    filters = search_service_pb2.SearchFilters(
        entity_types=_values(
            search_service_pb2.EntityType, "ENTITY_TYPE_", (t.name for t in f.entity_types)
        ),
        sdgs=[int(s) for s in f.sdgs],  # type: ignore[misc]
        sdg_targets=list(f.sdg_targets),
        regions=_values(geography_pb2.Region, "REGION_", f.regions),
        countries=list(f.countries),
        organization_types=_values(
            organization_type_pb2.OrganizationType, "ORGANIZATION_TYPE_", f.organization_types
        ),
        modalities=_values(search_service_pb2.Modality, "MODALITY_", f.modalities),
        year_from=f.year_from or 0,
        year_to=f.year_to or 0,
        verified_only=f.verified_only,
        languages=list(f.languages),
    )
    return events_pb2.SearchPerformed(
        query=q.text,
        filters=filters,
        sort=search_service_pb2.SortOrder.Value(f"SORT_ORDER_{q.sort.name}"),
        result_count=result_count,
        user_hash=user,
        first_page=q.cursor is None,
    )
