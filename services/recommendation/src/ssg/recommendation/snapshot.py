"""The items, popularity and organizations held in memory by each process, reloaded in the
background when they may have changed.

Scoring needs every item's vector at once; reading them per request would be far too slow, so
each process keeps an ``ItemIndex`` and rebuilds it when the items' marker (latest
write) moved, checked every ``refresh_seconds``. Popularity, distinct people per item,
organizations, experts and provider track records change slowly, so they are reloaded every
``signals_seconds``: the item stats incrementally (only those changed since the previous reload,
by their ``changed_at``; ADR 0055), the rest whole, kept as the same objects when unchanged.
Once a snapshot exists a request never waits for a reload: the first request after
``refresh_seconds`` starts one reload in a background thread and is served from the current
snapshot (a refit of 20,000 items takes seconds). With ``background`` off (the worker, whose
proposals must see the items it just stored) or ``refresh_seconds`` 0 a due call reloads in
line.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from ssg.recommendation.domain.experts import Expert
from ssg.recommendation.domain.index import ItemIndex, Vector
from ssg.recommendation.domain.model import Organization
from ssg.recommendation.store.mongo import ItemSignals, MongoStore

log = logging.getLogger(__name__)

# A signals reload reads the item stats changed since the previous one began, less this margin:
# a worker's transaction commits a little after it stamped ``changed_at``, and the worker's and
# the API's clocks may differ. Everything is read again every FULL_SECONDS regardless.
MARGIN_NS = 60 * 10**9
FULL_SECONDS = 3600.0


@dataclass(frozen=True)
class Snapshot:
    """One consistent view: the index, the stored popularity sums and the organizations."""

    index: ItemIndex
    raw_popularity: dict[str, float] = field(default_factory=dict)
    # raw_popularity in index order.
    raw_popularity_array: Vector = field(default_factory=lambda: np.zeros(0))
    organizations: Mapping[str, Organization] = field(default_factory=dict)
    # Implemented matches per provider organization.
    track_record: Mapping[str, int] = field(default_factory=dict)
    # Distinct people per item (the co-interaction cosines' denominators).
    people: Mapping[str, int] = field(default_factory=dict)
    # Per region name, the stored popularity among its organizations in index order.
    raw_regional: Mapping[str, Vector] = field(default_factory=dict)
    # Experts by the organization they are affiliated with.
    experts: Mapping[str, list[Expert]] = field(default_factory=dict)
    # people in index order (the same object until the index or the signals are reloaded).
    people_array: Vector = field(default_factory=lambda: np.zeros(0))
    # The items' marker (latest stored_at, wall-clock ns) the index was built at.
    marker: int = 0


class SnapshotCache:
    """Keeps a Snapshot of a store no older than refresh_seconds (plus one reload)."""

    def __init__(
        self,
        store: MongoStore,
        refresh_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        background: bool = True,
        signals_seconds: float = 30.0,
    ) -> None:
        self._store = store
        self._signals_seconds = signals_seconds
        self._signals_at = float("-inf")
        self._full_at = float("-inf")
        self._signals_read_ns = 0
        self._regional: Mapping[str, dict[str, float]] = {}
        self._background = background
        self._refresh = refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._marker: int | None = None
        self._loaded_at = float("-inf")
        self._reloading = False

    def current(self) -> Snapshot:
        """The snapshot; the first call loads it (blocking: call via run_sync)."""
        with self._lock:
            snapshot = self._snapshot
            if snapshot is None or self._refresh <= 0 or not self._background:
                if snapshot is not None and self._clock() - self._loaded_at < self._refresh:
                    return snapshot
                return self._reload()
            start = self._due()
        if start:
            self._start_reload()
        return snapshot

    def ready(self) -> Snapshot | None:
        """Non-blocking: the snapshot when ``current()`` would answer without loading in line
        (a due reload then starts in the background); None when it would load, or while
        another thread holds the lock (the caller then takes the blocking path)."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            snapshot = self._snapshot
            if snapshot is None or self._refresh <= 0 or not self._background:
                return None
            start = self._due()
        finally:
            self._lock.release()
        if start:
            self._start_reload()
        return snapshot

    def _due(self) -> bool:
        """Whether a background reload is to start now (the caller holds the lock)."""
        if self._reloading or self._clock() - self._loaded_at < self._refresh:
            return False
        self._reloading = True
        return True

    def _start_reload(self) -> None:
        # Started outside the lock: a thread's start waits for it to run, which under load
        # held every other caller (the event loop's too) for milliseconds.
        threading.Thread(target=self._reload_in_background, daemon=True).start()

    def _reload_in_background(self) -> None:
        try:
            with self._lock:
                previous, marker = self._snapshot, self._marker
            loaded = self._load(previous, marker)
            with self._lock:
                self._snapshot, self._marker, self._loaded_at = loaded
        except Exception:
            # The current snapshot keeps serving; the next due request tries again.
            log.exception("reloading the recommendation snapshot failed")
        finally:
            with self._lock:
                self._reloading = False

    def _reload(self) -> Snapshot:
        """Reload in line (the caller holds the lock)."""
        self._snapshot, self._marker, self._loaded_at = self._load(self._snapshot, self._marker)
        return self._snapshot

    def _load(self, previous: Snapshot | None, marker: int | None) -> tuple[Snapshot, int, float]:
        started = self._clock()
        began = time.perf_counter()
        found = self._store.items_marker()
        index = (
            previous.index
            if previous is not None and found == marker
            else ItemIndex(self._store.all_items())
        )
        raw: dict[str, float]
        people: Mapping[str, int]
        organizations: Mapping[str, Organization]
        track_record: Mapping[str, int]
        regional: Mapping[str, dict[str, float]]
        experts: Mapping[str, list[Expert]]
        # Item ids whose stats were read again (None: all of them).
        changed: ItemSignals | None = None
        if (
            previous is None
            or self._refresh <= 0
            or started - self._signals_at >= self._signals_seconds
        ):
            read_at = time.time_ns()
            if previous is None or self._refresh <= 0 or started - self._full_at >= FULL_SECONDS:
                signals = self._store.item_signals()
                raw, people, regional = signals.popularity, signals.people, signals.regional
                self._full_at = started
            else:
                changed = self._store.item_signals(self._signals_read_ns - MARGIN_NS)
                raw, people, regional = _merged(previous, self._regional, changed)
            self._signals_read_ns = read_at
            # Kept as the same objects when equal, so what is remembered per snapshot
            # (MatchNeed results) survives a reload that found nothing new.
            organizations = _same(
                previous.organizations if previous else None, self._store.organizations_by_id()
            )
            track_record = _same(
                previous.track_record if previous else None, self._store.track_record()
            )
            experts = _same(
                previous.experts if previous else None, self._store.experts_by_organization()
            )
            self._signals_at = started
            log.info(
                "recommendation signals reloaded",
                extra={
                    "items": len(raw),
                    "read": len(raw) if changed is None else len(changed.popularity),
                    "seconds": round(time.perf_counter() - began, 3),
                },
            )
        else:
            raw, people = previous.raw_popularity, previous.people
            regional = self._regional
            organizations, track_record = previous.organizations, previous.track_record
            experts = previous.experts
        self._regional = regional
        if previous is not None and index is previous.index and raw is previous.raw_popularity:
            aligned, by_region = previous.raw_popularity_array, previous.raw_regional
            people_array = previous.people_array
        elif previous is not None and index is previous.index and changed is not None:
            # Only the items read again move: patch copies of the previous arrays.
            aligned = _patched(previous.raw_popularity_array, index, changed.popularity)
            people_array = _patched(previous.people_array, index, changed.people)
            by_region = dict(previous.raw_regional)
            for region, values in changed.regional.items():
                before = by_region.get(region)
                by_region[region] = (
                    _patched(before, index, values)
                    if before is not None
                    else index.aligned(regional[region])
                )
        else:
            aligned = index.aligned(raw)
            by_region = {r: index.aligned(values) for r, values in regional.items()}
            people_array = index.aligned(people)
        snapshot = Snapshot(
            index,
            raw,
            aligned,
            organizations,
            track_record,
            people,
            by_region,
            experts,
            people_array,
            found,
        )
        return snapshot, found, started


T = TypeVar("T")


def _same(previous: T | None, loaded: T) -> T:
    """previous when it equals loaded (keeping its identity), else loaded."""
    return previous if previous is not None and previous == loaded else loaded


def _merged(
    previous: Snapshot, regional: Mapping[str, dict[str, float]], changed: ItemSignals
) -> tuple[dict[str, float], Mapping[str, int], Mapping[str, dict[str, float]]]:
    """The previous signals with the items read again replaced (the same objects when none
    was read)."""
    if not changed.popularity:
        return previous.raw_popularity, previous.people, regional
    merged = dict(regional)
    for region, values in changed.regional.items():
        merged[region] = {**regional.get(region, {}), **values}
    return (
        {**previous.raw_popularity, **changed.popularity},
        {**previous.people, **changed.people},
        merged,
    )


def _patched(array: Vector, index: ItemIndex, values: Mapping[str, float]) -> Vector:
    """A copy of array (index order) with values by item id written in."""
    copy = array.copy()
    for item_id, value in values.items():
        at = index.position.get(item_id)
        if at is not None:
            copy[at] = value
    return copy
