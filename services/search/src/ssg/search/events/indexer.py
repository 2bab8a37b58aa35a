"""The indexer: a faust agent turning registration and catalog events into search documents.

The agent takes the source topics in batches (``bulk_batch_size`` events, or whatever came
within ``bulk_flush_seconds``), maps each event to an index action (``domain.documents``),
and writes the batch with one bulk request per step:

1. organizations first, so that content of the same batch sees its provider's new state;
2. then everything else, each document carrying its provider's verification (looked up in
   the organizations index with one mget per batch): ``store.writer.write_batch``.

A message that is not an envelope, an event search cannot use, and a document OpenSearch
rejects go to ``<topic>.dlq`` with the reason; the agent carries on. Offsets are acknowledged
after the batch is written, so a crash replays the batch: harmless, since every write is
versioned by aggregate_version. Replicas share the partitions of the consumer group (the app
id).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import faust
from faust.types import EventT, Message
from prometheus_client import Counter

from ssg.platform.events.envelope import EnvelopeError
from ssg.platform.events.faust_app import create_faust_app, dead_letter, decode_envelope
from ssg.search.domain.documents import IndexAction, UnindexableEvent, action_for
from ssg.search.events.topics import SOURCE_TOPICS
from ssg.search.settings import SearchSettings
from ssg.search.store.writer import BulkWriter, WriteResult, write_batch

log = logging.getLogger(__name__)

EVENTS_INDEXED = Counter(
    "ssg_search_indexer_events_total",
    "Events taken by the indexer, by topic and outcome (written, skipped, dead_lettered).",
    ["topic", "outcome"],
)


@dataclass
class BatchReport:
    """What one batch did (for tests and logs)."""

    written: int = 0
    stale: int = 0
    skipped: int = 0
    dead_lettered: list[str] = field(default_factory=list)


class Indexer:
    """Maps event batches to bulk writes; dead-letters what cannot be indexed."""

    def __init__(self, app: faust.App, writer: BulkWriter) -> None:
        self.app = app
        self.writer = writer

    async def index(self, events: Sequence[EventT]) -> BatchReport:
        """Index one batch of raw events."""
        report = BatchReport()
        actions: list[tuple[Message, IndexAction]] = []
        for event in events:
            message = event.message
            try:
                action = action_for(decode_envelope(event.value))
            except (EnvelopeError, UnindexableEvent) as exc:
                await self._dead_letter(message, str(exc), report)
                continue
            if action is None:
                report.skipped += 1
                EVENTS_INDEXED.labels(message.topic, "skipped").inc()
                continue
            actions.append((message, action))
        if actions:
            result: WriteResult[Message] = await write_batch(self.writer, actions)
            report.written += result.written
            report.stale += result.stale
            rejected = {id(r.key) for r in result.rejected}
            for message, _ in actions:
                if id(message) not in rejected:
                    # Written or stale (the writer counts those by entity type).
                    EVENTS_INDEXED.labels(message.topic, "written").inc()
            for r in result.rejected:
                await self._dead_letter(r.key, f"document rejected: {r.reason}", report)
        return report

    async def _dead_letter(self, message: Message, reason: str, report: BatchReport) -> None:
        await dead_letter(self.app, message, reason)
        report.dead_lettered.append(reason)
        EVENTS_INDEXED.labels(message.topic, "dead_lettered").inc()


def create_indexer_app(
    settings: SearchSettings, writer: BulkWriter, **overrides: object
) -> tuple[faust.App, Indexer]:
    """The faust app whose agent indexes every source topic (consumer group: the app id)."""
    app = create_faust_app(settings, id=settings.indexer_app_id, **overrides)
    indexer = Indexer(app, writer)
    topic = app.topic(*SOURCE_TOPICS)

    @app.agent(topic, name="index")
    async def index(stream: faust.StreamT[bytes]) -> None:
        async for events in stream.take_events(  # type: ignore[attr-defined]
            settings.bulk_batch_size, within=settings.bulk_flush_seconds
        ):
            report = await indexer.index(events)
            log.debug("indexed batch", extra={"events": len(events), **report.__dict__})

    return app, indexer
