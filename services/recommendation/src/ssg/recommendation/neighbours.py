"""Co-interaction neighbours of items, cached per API process for a short while.

An item's neighbour document holds one count per item ever used together with it, so a popular
item's document is large, and every Recommend needs those of the person's 20 strongest items.
Neighbour lists change slowly (one person's first use of an item moves each count by one), so
the strongest ``NEIGHBOURS_PER_ITEM`` of each item are kept in memory for ``ttl_seconds`` (the
snapshot's signals clock), at most ``max_items`` of them (least recently used go first).

Scoring wants them as index positions and cosines (``Signals.neighbour_positions``); each entry
also keeps that form for the index and people-per-item array it was made with, so a request
costs no per-neighbour Python work while neither changed.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping

import numpy as np

from ssg.recommendation.domain.index import ItemIndex, Positions, Vector
from ssg.recommendation.store.mongo import MongoStore

# Positions and cosines of one item's neighbours, with the index and people array they fit.
_Arrays = tuple[ItemIndex, Vector, Positions, Vector]


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
        # Per cached item, its neighbours in array form (dropped with the entry).
        self._arrays: dict[str, _Arrays] = {}

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
                self._arrays.pop(item_id, None)
            while len(self._entries) > self._max:
                evicted, _ = self._entries.popitem(last=False)
                self._arrays.pop(evicted, None)
        return {i: c for i, c in found.items() if c}

    def positioned(
        self,
        item_ids: Iterable[str],
        index: ItemIndex,
        people: Mapping[str, int],
        people_by_position: Vector,
    ) -> dict[str, tuple[Positions, Vector]]:
        """Blocking: each item's neighbours as (positions in index, cosines of their user
        sets), in the order ``counts`` gives; people per item by id and in index order."""
        found: dict[str, tuple[Positions, Vector]] = {}
        for item_id, counts in self.counts(item_ids).items():
            with self._lock:
                held = self._arrays.get(item_id)
            if held is not None and held[0] is index and held[1] is people_by_position:
                found[item_id] = (held[2], held[3])
                continue
            positions, cosines = _arrays(item_id, counts, index, people, people_by_position)
            with self._lock:
                if item_id in self._entries and self._entries[item_id][1] is counts:
                    self._arrays[item_id] = (index, people_by_position, positions, cosines)
            found[item_id] = (positions, cosines)
        return found


def _arrays(
    item_id: str,
    counts: Mapping[str, int],
    index: ItemIndex,
    people: Mapping[str, int],
    people_by_position: Vector,
) -> tuple[Positions, Vector]:
    """Neighbour counts as positions and cosines: both / sqrt(people of a * people of b), the
    arithmetic of ``store.mongo.cosines`` (items not in index left out)."""
    pairs = [
        (at, n) for other, n in counts.items() if (at := index.position.get(other)) is not None
    ]
    positions = np.array([at for at, _ in pairs], dtype=np.int64)
    both = np.array([n for _, n in pairs], dtype=np.float64)
    size = np.maximum(people_by_position[positions], 1.0)
    return positions, both / np.sqrt(max(people.get(item_id, 0), 1) * size)
