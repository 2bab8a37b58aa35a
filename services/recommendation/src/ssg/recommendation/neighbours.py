"""Co-interaction neighbours of items, cached per API process for a short while.

An item's neighbour document holds one count per item ever used together with it, so a popular
item's document is large, and every Recommend needs those of the person's 20 strongest items.
Neighbour lists change slowly (one person's first use of an item moves each count by one), so
the strongest ``NEIGHBOURS_PER_ITEM`` of each item are kept in memory for ``ttl_seconds`` (the
snapshot's signals clock), at most ``max_items`` of them (least recently used go first).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping

from ssg.recommendation.store.mongo import MongoStore


class NeighbourCache:
    """Strongest co-interaction counts per item, read through to the store when missing."""

    def __init__(
        self,
        store: MongoStore,
        ttl_seconds: float,
        max_items: int = 5_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._ttl = ttl_seconds
        self._max = max_items
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[float, Mapping[str, int]]] = OrderedDict()

    def counts(self, item_ids: Iterable[str]) -> dict[str, Mapping[str, int]]:
        """Blocking: the neighbour counts of each item (items without neighbours are absent)."""
        wanted = list(dict.fromkeys(item_ids))
        now = self._clock()
        found: dict[str, Mapping[str, int]] = {}
        missing = []
        with self._lock:
            for item_id in wanted:
                entry = self._entries.get(item_id)
                if entry is not None and now - entry[0] < self._ttl:
                    self._entries.move_to_end(item_id)
                    found[item_id] = entry[1]
                else:
                    missing.append(item_id)
        if not missing:
            return {i: c for i, c in found.items() if c}
        read = self._store.neighbour_counts(missing)
        with self._lock:
            for item_id in missing:
                counts = read.get(item_id, {})
                found[item_id] = counts
                if self._ttl > 0:
                    self._entries[item_id] = (now, counts)
                    self._entries.move_to_end(item_id)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return {i: c for i, c in found.items() if c}
