"""Per-replica read caches for Get by id, kept current by the datastore's change stream (ADR 0014).

A ``ReadCache`` holds converted values (frozen domain objects) by key, bounded (least recently
used out first). It answers only while its ``CacheFeed`` has confirmed, within
``max_staleness`` seconds, that every change committed before then has been applied; otherwise
every call reads the datastore (``bypass``). The feed tails one change stream of the service's
database and drops the entry of every changed document; the store also drops an entry itself
right after its own transaction commits (read-your-writes on this replica).

A fill (a read that missed, putting what it read) takes a ticket before it reads; a change
of that key applied after the ticket makes the fill a no-op, so a slow read can never put back
a value older than a change the cache has already seen.

Thread-safe: Gets run on the event loop, the feed in a thread of its own, and local
invalidations in the database thread pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge
from pymongo.change_stream import ChangeStream
from pymongo.database import Database

from ssg.platform.metrics import once_per_registry
from ssg.platform.settings import PlatformSettings
from ssg.platform.watched import close_quietly

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
Doc = dict[str, Any]


class Miss(enum.Enum):
    """What ``ReadCache.get`` returns when the caller must read the datastore."""

    MISS = enum.auto()


MISS: Final = Miss.MISS

# Changes per getMore the feed asks for; a smaller answer is complete (MongoDB honours the
# count, and cuts by size only at 16 MB: the feed's projected changes are ~200 bytes each).
BATCH = 100


@dataclass(frozen=True)
class _Metrics:
    calls: Counter
    entries: Gauge
    feed_up: Gauge
    feed_opens: Counter


def _build_metrics(registry: CollectorRegistry) -> _Metrics:
    """The read caches' metrics in a registry."""
    return _Metrics(
        calls=Counter(
            "ssg_read_cache_requests_total",
            "Get reads by cache and outcome (hit, miss: read and filled, bypass: the cache "
            "was not current enough to answer).",
            ["cache", "outcome"],
            registry=registry,
        ),
        entries=Gauge(
            "ssg_read_cache_entries", "Entries held by a read cache.", ["cache"], registry=registry
        ),
        feed_up=Gauge(
            "ssg_read_cache_feed_up",
            "1 while the change stream feeding the read caches is current, else 0.",
            ["feed"],
            registry=registry,
        ),
        feed_opens=Counter(
            "ssg_read_cache_feed_opens_total",
            "Change streams a read cache feed opened (each empties and reloads its caches; "
            "more than one means the stream was lost).",
            ["feed"],
            registry=registry,
        ),
    )


class ReadCache(Generic[K, V]):
    """A bounded map of current values by key that answers only while its feed is current."""

    def __init__(self, name: str, capacity: int, *, registry: CollectorRegistry = REGISTRY) -> None:
        if capacity < 1:
            raise ValueError("a read cache holds at least one entry")
        self.name = name
        self.capacity = capacity
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()
        self._serve_until = 0.0  # monotonic; set by the feed
        self._seq = 0  # bumped by every invalidation
        self._cleared = 0  # seq of the last clear: older tickets fill nothing
        self._inflight: dict[K, int] = {}  # fills under way per key
        self._dirty: dict[K, int] = {}  # last invalidation seq of a key with fills under way
        metrics = once_per_registry(_build_metrics, registry)
        self._hit = metrics.calls.labels(name, "hit")
        self._miss = metrics.calls.labels(name, "miss")
        self._bypass = metrics.calls.labels(name, "bypass")
        metrics.entries.labels(name).set_function(lambda: len(self._entries))

    # -- reads -------------------------------------------------------------------------------

    @property
    def current(self) -> bool:
        """True while the feed has confirmed the entries within the staleness bound."""
        return time.monotonic() < self._serve_until

    def get(self, key: K) -> V | Miss:
        """The cached value, or MISS (the caller reads the datastore and may ``fill``)."""
        if time.monotonic() >= self._serve_until:
            self._bypass.inc()
            return MISS
        with self._lock:
            value = self._entries.get(key, MISS)
            if value is not MISS:
                self._entries.move_to_end(key)
        if value is MISS:
            self._miss.inc()
        else:
            self._hit.inc()
        return value

    def ticket(self, key: K) -> int:
        """Start a fill of key: take this before reading the datastore (-1: do not fill)."""
        if time.monotonic() >= self._serve_until:
            return -1
        with self._lock:
            self._inflight[key] = self._inflight.get(key, 0) + 1
            return self._seq

    def fill(self, key: K, ticket: int, value: V | None) -> None:
        """End a fill: keep value unless key changed (or the cache was cleared) since ticket.

        None (nothing stored under key) is never kept: ids nobody stored cannot push out
        the entries that are read. Call it also when the read failed, with None.
        """
        if ticket < 0:
            return
        with self._lock:
            left = self._inflight.pop(key, 1) - 1
            dirty = self._dirty.get(key, -1)
            if left:
                self._inflight[key] = left
            else:
                self._dirty.pop(key, None)
            if value is None or dirty > ticket or ticket < self._cleared:
                return
            self._put(key, value)

    def fill_unchanged(self, key: K, ticket: int, value: V | None) -> None:
        """Keep value only if nothing at all changed since ``ticket = seq()`` (for a key that
        was not known before the read, e.g. found in what was read); -1 keeps nothing."""
        if ticket < 0 or value is None:
            return
        with self._lock:
            if self._seq != ticket:
                return
            self._put(key, value)

    def _put(self, key: K, value: V) -> None:
        """Keep value as the most recently used entry, pushing out the least (lock held)."""
        self._entries[key] = value
        self._entries.move_to_end(key)
        if len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    async def read_through(self, key: K, load: Callable[[], Awaitable[V | None]]) -> V | None:
        """The cached value of key, or load() (filling the cache with what it returns)."""
        value = self.get(key)
        if value is not MISS:
            return value
        ticket = self.ticket(key)
        loaded: V | None = None
        try:
            loaded = await load()
        finally:
            self.fill(key, ticket, loaded)
        return loaded

    # -- changes -----------------------------------------------------------------------------

    def invalidate(self, key: K) -> None:
        """key changed: drop its entry, and make fills under way for it keep nothing."""
        with self._lock:
            self._seq += 1
            self._entries.pop(key, None)
            if key in self._inflight:
                self._dirty[key] = self._seq

    def invalidate_many(self, keys: Iterable[K]) -> None:
        """``invalidate`` each of keys."""
        for key in keys:
            self.invalidate(key)

    def clear(self) -> None:
        """Drop every entry; fills under way keep nothing."""
        with self._lock:
            self._seq += 1
            self._cleared = self._seq
            self._entries.clear()

    def preload(self, items: Iterable[tuple[K, V]]) -> int:
        """Put items (read after the feed opened its stream, before it applies any change);
        how many were put. Stops at capacity: never pushes out what calls have read.
        """
        put = 0
        for key, value in items:  # the lock per item: writers' invalidations do not wait
            with self._lock:
                if len(self._entries) >= self.capacity:
                    break
                if key not in self._entries:
                    self._entries[key] = value
                    put += 1
        return put

    def seq(self) -> int:
        """The current change sequence, a ticket for ``fill_unchanged`` (-1 while the cache
        is not current: such a fill keeps nothing)."""
        if time.monotonic() >= self._serve_until:
            return -1
        with self._lock:
            return self._seq

    # -- feed control ------------------------------------------------------------------------

    def confirm(self, until: float) -> None:
        """The feed vouches for the entries until this monotonic time."""
        self._serve_until = until

    def suspend(self) -> None:
        """Stop answering at once (the feed lost its stream); entries are kept for a resume."""
        self._serve_until = 0.0

    def held_keys(self) -> list[K]:
        """The keys held now (a copy)."""
        with self._lock:
            return list(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


@contextlib.contextmanager
def dropping_written(drop: Callable[[list[Any]], None] | None) -> Iterator[list[Any]]:
    """A list a unit of work appends the cache keys it writes to; ``drop(keys)`` runs when the
    block ends, committed or not (an error may follow a commit), before the command answers:
    the writer's next Get on this replica reads the datastore."""
    written: list[Any] = []
    try:
        yield written
    finally:
        if drop is not None:
            drop(written)


KeysOf = Callable[[Doc], "Iterable[Hashable] | None"]
"""The cache keys a change event touches; None when it cannot tell (the cache is cleared)."""


def by_document_id(change: Doc) -> Iterable[Hashable] | None:
    """The changed document's ``_id`` (caches keyed by id)."""
    key = change.get("documentKey", {}).get("_id")
    return None if key is None else (key,)


def by_field(field: str) -> KeysOf:
    """Keys from a field of the inserted or replaced document (caches of groups, e.g. the
    reviews of a solution); an update or delete does not say, so it clears the cache."""

    def keys(change: Doc) -> Iterable[Hashable] | None:
        full = change.get("fullDocument")
        if change.get("operationType") in ("insert", "replace") and isinstance(full, dict):
            return (full.get(field),)
        return None

    return keys


@dataclass(frozen=True)
class Route:
    """One cache fed by the changes of one collection."""

    collection: str
    cache: ReadCache[Any, Any]
    keys_of: KeysOf = by_document_id
    # Fields of the inserted or replaced document that keys_of reads (by_field).
    fields: tuple[str, ...] = ()
    # Optional: (key, value) pairs to load when the stream opens, read from the database.
    preload: Callable[[], Iterable[tuple[Any, Any]]] | None = None


class CacheFeed:
    """Tails one change stream of a database and keeps the routed caches current.

    The caches answer while the feed has applied, less than ``max_staleness`` seconds ago,
    every change of a batch whose getMore began then; the feed confirms that after each
    drained batch. On a stream error the caches stop answering at once; the feed then opens a
    new stream and empties (and preloads) the caches. It does not resume from a token: a
    server that restarted can accept an old token and skip what changed meanwhile (the local
    stand-in does), and a refill after a rare outage costs less than a stale answer.
    """

    def __init__(
        self,
        name: str,
        db: Database[Doc],
        routes: Sequence[Route],
        *,
        max_staleness: float = 2.0,
        retry_seconds: float = 1.0,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        if max_staleness <= 0:
            raise ValueError("max_staleness must be positive")
        self.name = name
        self.db = db
        self.routes = tuple(routes)
        self.max_staleness = max_staleness
        # A quiet stream answers each getMore after this: it bounds how old a confirmation is.
        self.max_await_ms = max(10, int(min(0.5, max_staleness / 4) * 1000))
        self.retry_seconds = retry_seconds
        self._by_collection: dict[str, list[Route]] = {}
        for route in self.routes:
            self._by_collection.setdefault(route.collection, []).append(route)
        self._caches = list({id(r.cache): r.cache for r in self.routes}.values())
        metrics = once_per_registry(_build_metrics, registry)
        self._up = metrics.feed_up.labels(name)
        self._opened = metrics.feed_opens.labels(name)
        self.applied = 0  # changes applied (for tests and logs)

    # -- the loop ----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the stream in a thread of its own until stop is set (a ``PeriodicTask``)."""
        halt = threading.Event()
        thread = threading.Thread(target=self.follow, args=(halt,), name=f"feed-{self.name}")
        thread.daemon = True
        thread.start()
        try:
            await stop.wait()
        finally:
            halt.set()
            # The thread notices within one getMore (max_await_ms).
            await asyncio.to_thread(thread.join, 5.0)

    def follow(self, halt: threading.Event) -> None:
        """The feed's thread: open, apply, confirm; reopen after errors until halt is set."""
        while not halt.is_set():
            stream: ChangeStream[Doc] | None = None
            try:
                opened = time.monotonic()
                stream = self._open()
                self._drain(stream, halt, opened)
            except Exception as exc:
                # Connection lost (and pymongo's own resume failed), or the server ended the
                # stream: every Get reads until a new stream and refilled caches are current.
                self._suspend()
                log.warning("read cache feed failed", extra={"feed": self.name, "error": repr(exc)})
                halt.wait(self.retry_seconds)
            finally:
                close_quietly(stream)
        self._suspend()

    def _open(self) -> ChangeStream[Doc]:
        """Open a new stream, then empty and preload the caches."""
        fields: dict[str, int] = {"operationType": 1, "ns": 1, "documentKey": 1}
        for route in self.routes:
            fields.update({f"fullDocument.{name}": 1 for name in route.fields})
        pipeline: list[Doc] = [
            {"$match": {"ns.coll": {"$in": sorted(self._by_collection)}}},
            # Small events: a batch is then never cut by size, only by BATCH (see _drain).
            {"$project": fields},
        ]
        options: Doc = {"max_await_time_ms": self.max_await_ms, "batch_size": BATCH}
        stream = self.db.watch(pipeline, **options)
        for cache in self._caches:
            cache.clear()
        self._opened.inc()
        self._preload()
        log.info("read cache feed open", extra={"feed": self.name})
        return stream

    def _preload(self) -> None:
        """Load the routes' preloads: read after the stream opened, so that every change
        they may miss is in the stream and applied before the caches answer."""
        for route in self.routes:
            if route.preload is None:
                continue
            started = time.monotonic()
            put = route.cache.preload(route.preload())
            log.info(
                "read cache preloaded",
                extra={
                    "cache": route.cache.name,
                    "entries": put,
                    "seconds": round(time.monotonic() - started, 3),
                },
            )

    def _drain(self, stream: ChangeStream[Doc], halt: threading.Event, opened: float) -> None:
        """Apply changes; confirm the caches once a getMore's whole answer is applied.

        A getMore that began at t and came back with fewer than BATCH changes (or none) held
        every change committed before t: once they are applied, the caches are current as of t.
        A full batch proves nothing (more may wait), so the feed asks again before confirming.
        """
        began = opened
        complete = False  # the batch being handed over was not cut
        while not halt.is_set():
            buffered = _buffered(stream)
            fetching = not buffered  # empty (or unknown): try_next may ask the server
            if fetching:
                began = time.monotonic()
            change = stream.try_next()
            left = _buffered(stream)
            if fetching:
                complete = change is None or (left is not None and left + 1 < BATCH)
            if change is not None:
                self._apply(change)
            if complete and (change is None or left == 0):
                until = began + self.max_staleness
                for cache in self._caches:
                    cache.confirm(until)
                self._up.set(1)

    def _apply(self, change: Doc) -> None:
        """Drop what one change makes stale."""
        self.applied += 1
        op = change.get("operationType")
        if op in ("drop", "rename", "dropDatabase", "invalidate"):
            for cache in self._caches:
                cache.clear()
            return
        collection = change.get("ns", {}).get("coll", "")
        for route in self._by_collection.get(collection, ()):
            keys = route.keys_of(change)
            if keys is None:
                route.cache.clear()
            else:
                route.cache.invalidate_many(keys)

    def _suspend(self) -> None:
        for cache in self._caches:
            cache.suspend()
        self._up.set(0)


def _buffered(stream: ChangeStream[Doc]) -> int | None:
    """Changes the stream holds from its last getMore and has not handed over yet.

    pymongo has no public accessor; when its cursor's buffer cannot be seen this is None, and
    the feed confirms only after an empty getMore (never too early).
    """
    data = getattr(getattr(stream, "_cursor", None), "_data", None)
    return len(data) if data is not None else None


def cache_from_settings(settings: PlatformSettings, name: str) -> ReadCache[Any, Any] | None:
    """A read cache of SSG_READ_CACHE_ENTRIES entries, or None when that is 0 (off)."""
    if settings.read_cache_entries <= 0:
        return None
    return ReadCache(name, settings.read_cache_entries)


def feed_from_settings(
    settings: PlatformSettings, name: str, db: Database[Doc], routes: Sequence[Route]
) -> CacheFeed:
    """The feed of routes with SSG_READ_CACHE_MAX_STALENESS_SECONDS."""
    return CacheFeed(name, db, routes, max_staleness=settings.read_cache_max_staleness_seconds)
