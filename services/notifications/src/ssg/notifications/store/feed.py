"""Keeps a ``SubscriptionIndex`` equal to the subscriptions collection: a full load, then the
collection's change stream. ``catch_up()`` applies every change committed so far, so the
matcher calls it before each event and sees every subscription stored before that moment.

If the stream breaks (a lost resume point, a failover), the index is rebuilt from a fresh
load; the stream is opened before the load, so nothing written in between is missed
(replaying a change is harmless: ``put`` ignores older versions).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from prometheus_client import Gauge
from pymongo.change_stream import CollectionChangeStream
from pymongo.errors import PyMongoError

from ssg.notifications.domain.index import SubscriptionIndex
from ssg.notifications.store.documents import subscription_from_doc
from ssg.notifications.store.mongo import ACTIVE, NotificationStore
from ssg.platform.watched import close_quietly

log = logging.getLogger(__name__)

INDEXED = Gauge("ssg_notifications_indexed_subscriptions", "Active subscriptions in the index.")


class IndexFeed:
    """The index and the change stream that keeps it current (thread-safe)."""

    def __init__(self, store: NotificationStore, await_ms: int = 5) -> None:
        self.store = store
        self.await_ms = await_ms
        self.index = SubscriptionIndex()
        self._stream: CollectionChangeStream[Any] | None = None
        self._lock = threading.Lock()

    def _load(self) -> None:
        self._close()
        stream = self.store.subscriptions.watch(
            full_document="updateLookup", max_await_time_ms=self.await_ms
        )
        index = SubscriptionIndex()
        for doc in self.store.subscriptions.find({"status": ACTIVE}):
            index.put(subscription_from_doc(doc))
        self.index, self._stream = index, stream
        INDEXED.set(len(index))
        log.info("subscription index loaded", extra={"subscriptions": len(index)})

    def _apply(self, change: dict[str, Any]) -> None:
        op = change.get("operationType")
        if op in ("insert", "update", "replace") and change.get("fullDocument"):
            self.index.put(subscription_from_doc(change["fullDocument"]))
        elif op == "delete":
            self.index.remove(change["documentKey"]["_id"])
        elif op in ("drop", "rename", "invalidate", "dropDatabase"):
            self._load()

    def catch_up(self) -> SubscriptionIndex:
        """Apply every change committed so far (loading first if needed); the index."""
        with self._lock:
            try:
                if self._stream is None or not self._stream.alive:
                    self._load()
                assert self._stream is not None
                while (change := self._stream.try_next()) is not None:
                    self._apply(change)
            except PyMongoError as exc:
                log.warning(
                    "subscription change stream failed; reloading", extra={"error": str(exc)}
                )
                self._load()
            INDEXED.set(len(self.index))
            return self.index

    def _close(self) -> None:
        close_quietly(self._stream)
        self._stream = None

    def close(self) -> None:
        """Close the change stream."""
        with self._lock:
            self._close()
