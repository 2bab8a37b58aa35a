"""Bulk writes of index actions, versioned externally by aggregate_version, with retries.

One ``_bulk`` request per batch. Every action is an ``index`` with ``version_type=external``
and the event's aggregate_version (a hidden entity gets a tombstone, not a delete: a delete's
version is forgotten after a while, a tombstone's never is), so:

* a 409 version conflict means a newer (or the same) version is stored: the event is stale,
  nothing to do;
* 429 and 5xx items, and a request that fails as a whole (connection refused, timeout,
  429/5xx), are retried with capped exponential backoff. An unreachable OpenSearch is waited
  out (never dead-lettered: the events are fine); item errors that persist past the retry
  policy's attempts are rejected;
* any other item error (a document the mapping refuses) is rejected at once, with
  OpenSearch's reason, for the dead-letter topic.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Generic, TypeVar

from opensearchpy import AsyncOpenSearch
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import TransportError
from prometheus_client import Counter, Histogram

from ssg.platform.events.consumer import RetryPolicy
from ssg.search.domain.documents import (
    EntityType,
    Hide,
    IndexAction,
    Provider,
    Upsert,
    provider_ids,
    tombstone,
    with_provider,
)
from ssg.search.domain.indices import alias_name

log = logging.getLogger(__name__)

K = TypeVar("K")

DOCUMENTS_WRITTEN = Counter(
    "ssg_search_documents_total",
    "Index actions by entity type and outcome (indexed, hidden, stale, rejected).",
    ["entity_type", "outcome"],
)
BULK_SECONDS = Histogram(
    "ssg_search_bulk_seconds",
    "Time to write one batch, retries included.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
BULK_RETRIES = Counter(
    "ssg_search_bulk_retries_total", "Bulk requests or items retried, by cause.", ["cause"]
)

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
REFLAG_CHUNK = 200
REFLAG_PAGE = 500
MAX_OUTAGE_RETRY = 30


@dataclass(frozen=True)
class Rejected(Generic[K]):
    """An action OpenSearch refused, the caller's key for it, and why."""

    key: K
    action: IndexAction
    reason: str


@dataclass
class WriteResult(Generic[K]):
    """What became of a batch."""

    written: int = 0
    stale: int = 0
    rejected: list[Rejected[K]] = field(default_factory=list)
    # The actions that were written (neither stale nor rejected).
    applied: list[IndexAction] = field(default_factory=list)

    def add(self, other: WriteResult[K]) -> None:
        """Count other's outcomes in this result too."""
        self.written += other.written
        self.stale += other.stale
        self.rejected.extend(other.rejected)
        self.applied.extend(other.applied)


def bulk_body(
    prefix: str, actions: Sequence[IndexAction], targets: Mapping[EntityType, str] | None = None
) -> list[dict[str, Any]]:
    """The ``_bulk`` lines of actions: meta line and document for each (into the alias of
    each entity type, or the index targets names for it)."""
    lines: list[dict[str, Any]] = []
    for action in actions:
        meta = {
            "_index": _target(prefix, action.entity_type, targets),
            "_id": action.id,
            "version": action.version,
            "version_type": "external",
        }
        doc = (
            action.document
            if isinstance(action, Upsert)
            else tombstone(action.entity_type, action.id)
        )
        lines.append({"index": meta})
        lines.append(doc)
    return lines


class BulkWriter:
    """Writes batches of index actions to the aliases of one prefix."""

    def __init__(
        self,
        client: AsyncOpenSearch,
        prefix: str,
        retry: RetryPolicy,
        *,
        refresh: bool = False,
        stop: asyncio.Event | None = None,
        targets: Mapping[EntityType, str] | None = None,
    ) -> None:
        self.client = client
        self.prefix = prefix
        # Concrete indices to write instead of the aliases (a reindex fills new versions).
        self.targets = dict(targets or {})
        self.retry = retry
        self.refresh = refresh
        self._stop = stop or asyncio.Event()

    async def write(self, items: Sequence[tuple[K, IndexAction]]) -> WriteResult[K]:
        """Write every action; the result counts written and stale ones and lists rejections."""
        result: WriteResult[K] = WriteResult()
        pending = list(items)
        attempt = 0
        with BULK_SECONDS.time():
            while pending:
                response = await self._bulk([a for _, a in pending])
                attempt += 1
                retry: list[tuple[K, IndexAction]] = []
                for (key, action), entry in zip(pending, response["items"], strict=True):
                    outcome = entry.get("index") or next(iter(entry.values()))
                    status = int(outcome.get("status", 500))
                    if status < 300:
                        result.written += 1
                        result.applied.append(action)
                        _count(action, "hidden" if isinstance(action, Hide) else "indexed")
                    elif status == 409:
                        result.stale += 1
                        _count(action, "stale")
                    elif status in RETRYABLE_STATUS and (
                        status == 429 or attempt < self.retry.attempts
                    ):
                        retry.append((key, action))
                    else:
                        reason = _reason(outcome.get("error"), status)
                        result.rejected.append(Rejected(key, action, reason))
                        _count(action, "rejected")
                if retry:
                    BULK_RETRIES.labels("item").inc(len(retry))
                    await self._wait(self.retry.delay(min(attempt, MAX_OUTAGE_RETRY)))
                pending = retry
        return result

    async def _bulk(self, actions: Sequence[IndexAction]) -> dict[str, Any]:
        """One _bulk request, retried until OpenSearch takes it (an outage is waited out)."""
        body = bulk_body(self.prefix, actions, self.targets)
        return await self._call(lambda: self.client.bulk(body=body, params=self._params()))

    def _params(self) -> dict[str, str] | None:
        return {"refresh": "true"} if self.refresh else None

    async def _call(self, request: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        """request() retried while OpenSearch is unreachable or overloaded (429/5xx)."""
        outages = 0
        while True:
            try:
                return await request()
            except (OSConnectionError, TransportError) as exc:
                status = exc.status_code if isinstance(exc.status_code, int) else 0
                if not isinstance(exc, OSConnectionError) and status not in RETRYABLE_STATUS:
                    raise
                outages += 1
                BULK_RETRIES.labels("request").inc()
                delay = self.retry.delay(min(outages, MAX_OUTAGE_RETRY))
                log.warning(
                    "opensearch request failed; retrying",
                    extra={"error": str(exc), "retry_in": round(delay, 3), "attempt": outages},
                )
                await self._wait(delay)

    async def _wait(self, delay: float) -> None:
        """Sleep delay, or raise CancelledError at once when a stop is requested."""
        try:
            await asyncio.wait_for(self._stop.wait(), delay)
        except TimeoutError:
            return
        raise asyncio.CancelledError("stop requested while retrying a bulk write")

    async def reflag(self, verified: Mapping[str, bool]) -> int:
        """Set verified_provider on the indexed content of organizations whose verification
        is now verified[id]; the documents rewritten.

        Each is rewritten at its own version (``external_gte``): a newer event written
        meanwhile wins, and a replay of the content's event later recomputes the flag.
        """
        if not verified:
            return 0
        indices = ",".join(
            _target(self.prefix, t, self.targets)
            for t in EntityType
            if t is not EntityType.ORGANIZATION
        )
        rewritten = 0
        ids = sorted(verified)
        for start in range(0, len(ids), REFLAG_CHUNK):
            chunk = ids[start : start + REFLAG_CHUNK]
            should = [
                {
                    "bool": {
                        "filter": [{"term": {"organization_id": org_id}}],
                        "must_not": [{"term": {"verified_provider": verified[org_id]}}],
                    }
                }
                for org_id in chunk
            ]
            query = {
                "bool": {
                    "filter": [{"term": {"hidden": False}}],
                    "should": should,
                    "minimum_should_match": 1,
                }
            }
            after: list[Any] | None = None
            while True:
                body: dict[str, Any] = {
                    "query": query,
                    "size": REFLAG_PAGE,
                    "sort": [{"id": "asc"}],
                    "version": True,
                }
                if after is not None:
                    body["search_after"] = after
                found = await self._call(partial(self.client.search, index=indices, body=body))
                hits = found["hits"]["hits"]
                if not hits:
                    break
                lines: list[dict[str, Any]] = []
                for hit in hits:
                    source = dict(hit["_source"])
                    source["verified_provider"] = verified[source["organization_id"]]
                    meta = {
                        "_index": hit["_index"],
                        "_id": hit["_id"],
                        "version": hit["_version"],
                        "version_type": "external_gte",
                    }
                    lines.extend([{"index": meta}, source])
                response = await self._call(
                    partial(self.client.bulk, body=lines, params=self._params())
                )
                rewritten += sum(
                    1 for item in response["items"] if int(item["index"].get("status", 500)) < 300
                )
                after = hits[-1]["sort"]
        return rewritten

    async def providers(self, ids: set[str]) -> dict[str, Provider]:
        """The indexed state of organizations ids (absent or hidden: not verified)."""
        if not ids:
            return {}
        response = await self._call(
            lambda: self.client.mget(
                index=_target(self.prefix, EntityType.ORGANIZATION, self.targets),
                body={"ids": sorted(ids)},
                params={"_source_includes": "hidden,organization_types,regions"},
            )
        )
        found: dict[str, Provider] = {}
        for doc in response["docs"]:
            source = doc.get("_source") if doc.get("found") else None
            if not source or source.get("hidden"):
                found[doc["_id"]] = Provider(verified=False)
                continue
            types = source.get("organization_types") or [""]
            found[doc["_id"]] = Provider(
                verified=True, type=types[0], regions=tuple(source.get("regions") or ())
            )
        return found


async def write_batch(writer: BulkWriter, items: Sequence[tuple[K, IndexAction]]) -> WriteResult[K]:
    """Write a batch: its organizations first, then everything else with its provider's
    verification (so content of the batch sees its provider's new state)."""
    organizations = [p for p in items if p[1].entity_type is EntityType.ORGANIZATION]
    content = [p for p in items if p[1].entity_type is not EntityType.ORGANIZATION]
    result: WriteResult[K] = WriteResult()
    if organizations:
        written = await writer.write(organizations)
        result.add(written)
        # Only organizations whose new state was written: a stale event must not flip flags.
        await writer.reflag({a.id: isinstance(a, Upsert) for a in written.applied})
    if content:
        providers = await writer.providers(provider_ids(a for _, a in content))
        result.add(await writer.write([(k, with_provider(a, providers)) for k, a in content]))
    return result


def _target(prefix: str, entity_type: EntityType, targets: Mapping[EntityType, str] | None) -> str:
    if targets and entity_type in targets:
        return targets[entity_type]
    return alias_name(prefix, entity_type)


def _count(action: IndexAction, outcome: str) -> None:
    DOCUMENTS_WRITTEN.labels(action.entity_type.value, outcome).inc()


def _reason(error: Any, status: int) -> str:
    if isinstance(error, dict):
        return f"HTTP {status} {error.get('type', 'error')}: {error.get('reason', '')}"[:1000]
    return f"HTTP {status}: {error}"[:1000]
