"""Rebuild the search indices as a new version from the topics, then swap the aliases.

1. Create ``<prefix>-<type>-v<N+1>`` for every entity type (the current mapping), beside the
   live indices the aliases point at; searches and the live indexer go on using those.
2. Replay every source topic from the beginning up to the end offsets read at the start
   (organizations first, so that content finds its providers' state), writing the new indices
   directly with the same versioned bulk writes as the indexer.
3. Swap each alias to its new index in one atomic ``_aliases`` request.
4. Catch up: replay what arrived since step 2's end offsets into the new indices. The live
   indexer may have written those only into the old indices before the swap; after it, it
   writes into the new ones through the aliases. Versioned writes make the overlap harmless.
5. Delete the old indices (unless asked to keep them).

Events are read with a plain consumer that joins no group: the live indexer's offsets are not
touched. Nothing is dead-lettered here (the live indexer did that); rejections are counted.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from opensearchpy import AsyncOpenSearch

from ssg.platform.events.consumer import RetryPolicy
from ssg.platform.events.envelope import EnvelopeError, parse_envelope
from ssg.search.domain.documents import EntityType, IndexAction, UnindexableEvent, action_for
from ssg.search.domain.indices import MAPPING_VERSION, alias_name, index_name
from ssg.search.events.topics import ORGANIZATION_TOPIC, SOURCE_TOPICS
from ssg.search.settings import SearchSettings
from ssg.search.store.indices import create_index, ensure_indices, swap_alias
from ssg.search.store.writer import BulkWriter, write_batch

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
"""Called with (events read so far, events to read) as the replay goes."""

BATCH = 500
MAX_IDLE_POLLS = 10


@dataclass
class ReindexReport:
    """What a reindex did."""

    version: int
    indices: dict[EntityType, str] = field(default_factory=dict)
    replayed: int = 0
    caught_up: int = 0
    written: int = 0
    stale: int = 0
    skipped: int = 0
    unusable: int = 0
    rejected: int = 0
    deleted: list[str] = field(default_factory=list)


async def next_version(client: AsyncOpenSearch, prefix: str) -> int:
    """One above the highest version any entity type's index has (at least MAPPING_VERSION)."""
    found = await client.indices.get(index=f"{prefix}-*", params={"ignore_unavailable": "true"})
    versions = [MAPPING_VERSION - 1]
    for name in found:
        match = re.search(r"-v(\d+)$", name)
        if match:
            versions.append(int(match.group(1)))
    return max(versions) + 1


async def _end_offsets(
    consumer: AIOKafkaConsumer, topics: Sequence[str]
) -> dict[TopicPartition, int]:
    partitions = [
        TopicPartition(t, p) for t in topics for p in sorted(await _partitions(consumer, t))
    ]
    ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
    return ends


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    found = consumer.partitions_for_topic(topic)
    if found is None:
        await consumer.topics()  # fetches the cluster's metadata
        found = consumer.partitions_for_topic(topic)
    return set(found or ())


class _Replay:
    """Reads topic ranges and writes them through a writer into the new indices."""

    def __init__(
        self, consumer: AIOKafkaConsumer, writer: BulkWriter, report: ReindexReport
    ) -> None:
        self.consumer = consumer
        self.writer = writer
        self.report = report

    async def run(
        self,
        starts: dict[TopicPartition, int],
        ends: dict[TopicPartition, int],
        progress: Progress,
        done: int,
        total: int,
    ) -> int:
        """Replay [starts, ends) of the partitions (organizations first); events read."""
        read = 0
        order = sorted(
            ends, key=lambda tp: (tp.topic != ORGANIZATION_TOPIC, tp.topic, tp.partition)
        )
        for group in (
            [tp for tp in order if tp.topic == ORGANIZATION_TOPIC],
            [tp for tp in order if tp.topic != ORGANIZATION_TOPIC],
        ):
            pending = {tp for tp in group if starts.get(tp, 0) < ends[tp]}
            if not pending:
                continue
            self.consumer.assign(sorted(pending, key=lambda tp: (tp.topic, tp.partition)))
            for tp in pending:
                self.consumer.seek(tp, starts.get(tp, 0))
            idle = 0
            while pending:
                batches = await self.consumer.getmany(*pending, timeout_ms=1000, max_records=BATCH)
                items: list[tuple[int, IndexAction]] = []
                for tp, records in batches.items():
                    for record in records:
                        if record.offset >= ends[tp]:
                            continue
                        read += 1
                        items.extend(self._action(record.value, read))
                for tp in list(pending):
                    if await self.consumer.position(tp) >= ends[tp]:
                        pending.discard(tp)
                idle = 0 if batches else idle + 1
                if idle >= MAX_IDLE_POLLS:
                    # The broker reports an end it never delivers up to (a gap): stop there.
                    log.warning(
                        "replay stalled before the end offsets",
                        extra={"partitions": [str(tp) for tp in pending]},
                    )
                    break
                if items:
                    result = await write_batch(self.writer, items)
                    self.report.written += result.written
                    self.report.stale += result.stale
                    self.report.rejected += len(result.rejected)
                progress(done + read, total)
        return read

    def _action(self, value: bytes | None, n: int) -> list[tuple[int, IndexAction]]:
        try:
            action = action_for(parse_envelope(value))
        except (EnvelopeError, UnindexableEvent):
            self.report.unusable += 1
            return []
        if action is None:
            self.report.skipped += 1
            return []
        return [(n, action)]


async def reindex(
    settings: SearchSettings,
    client: AsyncOpenSearch,
    *,
    progress: Progress = lambda done, total: None,
    keep_old: bool = False,
    topics: Iterable[str] = SOURCE_TOPICS,
) -> ReindexReport:
    """Build new index versions from the topics and swap the aliases to them."""
    prefix = settings.index_prefix
    topics = list(topics)
    await ensure_indices(client, prefix)
    version = await next_version(client, prefix)
    report = ReindexReport(version)
    for entity_type in EntityType:
        index = index_name(prefix, entity_type, version)
        await create_index(client, index)
        report.indices[entity_type] = index
    writer = BulkWriter(
        client,
        prefix,
        RetryPolicy.from_settings(settings),
        refresh=settings.bulk_refresh,
        targets=report.indices,
    )
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=f"{settings.service}-reindex",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    old: list[str] = []
    await consumer.start()
    try:
        replay = _Replay(consumer, writer, report)
        ends = await _end_offsets(consumer, topics)
        begins: dict[TopicPartition, int] = await consumer.beginning_offsets(list(ends))
        total = sum(max(0, ends[tp] - begins[tp]) for tp in ends)
        progress(0, total)
        report.replayed = await replay.run(begins, ends, progress, 0, total)

        for entity_type, index in report.indices.items():
            old.extend(await swap_alias(client, alias_name(prefix, entity_type), index))
        log.info("aliases swapped", extra={"version": version, "previous": old})

        later = await _end_offsets(consumer, topics)
        extra = sum(max(0, later[tp] - ends.get(tp, 0)) for tp in later)
        report.caught_up = await replay.run(ends, later, progress, total, total + extra)
    finally:
        await consumer.stop()
    if not keep_old and old:
        await client.indices.delete(index=",".join(old))
        report.deleted = old
    return report


def summary(report: ReindexReport) -> dict[str, Any]:
    """The report as plain values (for the CLI's output)."""
    return {
        "version": report.version,
        "indices": {t.value: i for t, i in report.indices.items()},
        "replayed": report.replayed,
        "caught_up": report.caught_up,
        "written": report.written,
        "stale": report.stale,
        "skipped": report.skipped,
        "unusable": report.unusable,
        "rejected": report.rejected,
        "deleted": report.deleted,
    }
