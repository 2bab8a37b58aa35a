"""The items and popularity held in memory by each process, reloaded when the store changed.

Scoring needs every item's vector at once; reading them per request would be far too slow, so
each process keeps an ``ItemIndex`` and reloads it when the items' marker (count, latest
write) moved and the snapshot is older than the refresh interval. Popularity is reloaded on the
same clock. Safe to call from several threads (one rebuild at a time).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ssg.recommendation.domain.index import ItemIndex, Vector
from ssg.recommendation.store.mongo import MongoStore


@dataclass(frozen=True)
class Snapshot:
    """One consistent view: the index and the stored popularity sums."""

    index: ItemIndex
    raw_popularity: dict[str, float] = field(default_factory=dict)
    # raw_popularity in index order.
    raw_popularity_array: Vector = field(default_factory=lambda: np.zeros(0))


class SnapshotCache:
    """Keeps a Snapshot of a store no older than refresh_seconds."""

    def __init__(
        self,
        store: MongoStore,
        refresh_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._refresh = refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._marker: tuple[int, int] | None = None
        self._loaded_at = float("-inf")

    def current(self) -> Snapshot:
        """The snapshot, reloaded first when it is due (blocking: call via run_sync)."""
        with self._lock:
            now = self._clock()
            if self._snapshot is not None and now - self._loaded_at < self._refresh:
                return self._snapshot
            marker = self._store.items_marker()
            index = (
                self._snapshot.index
                if self._snapshot is not None and marker == self._marker
                else ItemIndex(self._store.all_items())
            )
            raw = self._store.raw_popularity()
            self._snapshot = Snapshot(index, raw, index.aligned(raw))
            self._marker, self._loaded_at = marker, now
            return self._snapshot
