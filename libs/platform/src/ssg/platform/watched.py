"""A MongoDB collection held in memory per process, kept current by its change stream.

A reader that would otherwise read one document by _id per call (a hot path waiting on the
datastore) keeps the decoded documents in a dict instead. One daemon thread opens the change
stream, loads the collection, then applies every change as it arrives:

- insert, replace and update (with the document looked up after the change): decoded and kept;
  delete, or an update whose document is already gone: removed; drop, rename, invalidate: the
  whole collection is loaded again.
- The stream is opened before the load, so a change written during the load is replayed after
  it (a replay is harmless: each change carries the whole document).
- A broken stream (the server restarted, a failover, the network) is opened again from the last
  applied change's resume token; a token the server cannot resume from (history lost, or not a
  token) makes a full load, stream first.
- ``lookup(key, max_lag)`` answers only while a poll that found nothing new started at most
  max_lag seconds ago, i.e. every change committed before then is applied; otherwise (not
  loaded yet, the stream broken or the thread behind) it says "unknown" and the caller reads
  the datastore. A copy is never served for longer than max_lag behind the collection.
- Every ``reload_seconds`` the collection is loaded again from scratch: a stream resumed on a
  server that lost the history behind its token may not say so (SecantusDB then skips every
  change up to the token's position, measured here), and this bounds how long such a copy can
  miss changes. During a load the copy is not answered from (callers read the datastore).
- At most ``max_entries`` documents are held: beyond that the mirror is partial and a key it
  does not hold is "unknown" too (memory stays bounded, misses cost the read they cost before).

The first ``lookup`` starts the thread, so building the object does no I/O.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from prometheus_client import Counter, Gauge
from pymongo.change_stream import ChangeStream, CollectionChangeStream
from pymongo.collection import Collection
from pymongo.errors import OperationFailure, PyMongoError

log = logging.getLogger(__name__)

T = TypeVar("T")

HELD = Gauge(
    "ssg_watched_documents", "Documents held in memory from a watched collection", ["collection"]
)
LOADS = Counter(
    "ssg_watched_loads", "Full loads of a watched collection (start, lost stream)", ["collection"]
)
RESUMES = Counter(
    "ssg_watched_resumes", "Change streams of a watched collection resumed", ["collection"]
)

# Changes that leave the stream unusable or the whole collection changed: load again.
RELOAD_ON = frozenset({"drop", "rename", "dropDatabase", "invalidate"})


class WatchedCollection(Generic[T]):
    """Decoded documents of one collection by _id, kept current from its change stream."""

    def __init__(
        self,
        collection: Collection[Any],
        decode: Callable[[Mapping[str, Any]], T],
        *,
        max_entries: int = 100_000,
        await_ms: int = 100,
        retry_seconds: float = 0.5,
        reload_seconds: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.collection = collection
        self._decode = decode
        self._max = max_entries
        self._await_ms = await_ms
        self._retry = retry_seconds
        self._reload = reload_seconds
        self._loaded_at = float("-inf")
        self._clock = clock
        self._entries: dict[Any, T] = {}
        self._partial = False
        self._current_at = float("-inf")
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stream: CollectionChangeStream[Any] | None = None
        self._token: Mapping[str, Any] | None = None
        self.loads = 0
        self.resumes = 0
        self._name = collection.name

    # -- readers ----------------------------------------------------------------------------------

    def lookup(self, key: Any, max_lag: float) -> tuple[bool, T | None]:
        """(True, the document or None when there is none) while every change older than
        max_lag seconds is applied; (False, None) when the caller must read the datastore."""
        if self._thread is None:
            self.start()
        with self._changed:
            if self._clock() - self._current_at > max_lag:
                return False, None
            found = self._entries.get(key)
            if found is None and self._partial:
                return False, None
            return True, found

    def __len__(self) -> int:
        """How many documents are held."""
        return len(self._entries)

    def wait_current(self, timeout: float) -> bool:
        """Blocking: wait until every change committed before this call is applied; False if
        that did not happen within timeout."""
        if self._thread is None:
            self.start()
        asked = self._clock()
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._current_at < asked:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    # -- life cycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the thread that loads and follows the collection (once)."""
        with self._changed:
            if self._thread is not None:
                return
            self._thread = threading.Thread(
                target=self._run, name=f"watch-{self._name}", daemon=True
            )
            self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop following the collection (the thread closes its stream as it ends)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # -- the thread -------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._follow()
                except _Reload as why:
                    log.info(
                        "watched collection to be loaded again",
                        extra={"collection": self._name, "reason": str(why)},
                    )
                    self._close_stream()
                    self._token = None
                except PyMongoError as exc:
                    # The stream is reopened from the last token (or loaded) after a pause.
                    log.warning(
                        "watched collection stream failed; reopening",
                        extra={"collection": self._name, "error": str(exc)[:300]},
                    )
                    self._close_stream()
                    self._stop.wait(self._retry)
                except Exception:
                    log.exception("watched collection failed; loading it again")
                    self._close_stream()
                    self._token = None
                    self._stop.wait(self._retry)
        finally:
            self._close_stream()

    def _follow(self) -> None:
        """Open the stream (resume or load), then apply changes until stopped or broken."""
        if self._stream is None:
            self._open()
        stream = self._stream
        assert stream is not None
        while not self._stop.is_set():
            polled = self._clock()
            if polled - self._loaded_at >= self._reload:
                raise _Reload("periodic load")
            change = stream.try_next()
            if change is None:
                if not stream.alive:
                    raise _Reload("the change stream ended")
                with self._changed:
                    self._current_at = polled
                    self._changed.notify_all()
                continue
            if change.get("operationType") in RELOAD_ON:
                raise _Reload(str(change.get("operationType")))
            self._apply(change)
            self._token = stream.resume_token

    def _open(self) -> None:
        if self._token is not None:
            try:
                self._stream = self._watch(self._token)
                self.resumes += 1
                RESUMES.labels(self._name).inc()
                log.info("watched collection stream resumed", extra={"collection": self._name})
                return
            except OperationFailure as exc:
                # The server answered and refused the token (history lost, not a token): a
                # network failure would raise another error and be retried from the token.
                log.warning(
                    "watched collection cannot resume; loading it again",
                    extra={"collection": self._name, "error": str(exc)[:300]},
                )
        self._load()

    def _load(self) -> None:
        stream = self._watch(None)
        try:
            entries: dict[Any, T] = {}
            partial = False
            for doc in self.collection.find():
                if len(entries) >= self._max:
                    partial = True
                    break
                held = self._decoded(doc)
                if held is not None:
                    entries[doc["_id"]] = held
        except BaseException:
            stream.close()
            raise
        with self._changed:
            self._entries, self._partial = entries, partial
        self._stream, self._token = stream, stream.resume_token
        self._loaded_at = self._clock()
        self.loads += 1
        LOADS.labels(self._name).inc()
        HELD.labels(self._name).set(len(entries))
        log.info(
            "watched collection loaded",
            extra={"collection": self._name, "documents": len(entries), "partial": partial},
        )

    def _watch(self, token: Mapping[str, Any] | None) -> CollectionChangeStream[Any]:
        return self.collection.watch(
            full_document="updateLookup", resume_after=token, max_await_time_ms=self._await_ms
        )

    def _apply(self, change: Mapping[str, Any]) -> None:
        key = change["documentKey"]["_id"]
        doc = change.get("fullDocument") if change.get("operationType") != "delete" else None
        held = self._decoded(doc) if doc is not None else None
        with self._changed:
            if held is None:
                self._entries.pop(key, None)
            elif key in self._entries or len(self._entries) < self._max:
                self._entries[key] = held
            else:
                self._entries.pop(key, None)
                self._partial = True
        HELD.labels(self._name).set(len(self._entries))

    def _decoded(self, doc: Mapping[str, Any]) -> T | None:
        """The decoded document; None (not held: readers find no document) if it is bad."""
        try:
            return self._decode(doc)
        except Exception:
            log.exception(
                "a watched document could not be decoded",
                extra={"collection": self._name, "id": str(doc.get("_id"))},
            )
            return None

    def _close_stream(self) -> None:
        close_quietly(self._stream)
        self._stream = None


def close_quietly(stream: ChangeStream[Any] | None) -> None:
    """Close a change stream (if any) whose server may be gone: a failure is only logged."""
    if stream is not None:
        try:
            stream.close()
        except PyMongoError:
            log.debug("closing the change stream failed", exc_info=True)


class _Reload(PyMongoError):
    """The stream cannot go on: load the collection again."""
