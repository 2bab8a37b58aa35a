"""A person's or organization's recommendations: computed from their profile, or stored by the
worker when the profile changes and served with one read by _id (ADR 0054).

Computing a list costs ~10 ms of CPU and up to 20 neighbour reads at 20,000 items, so the API
can serve only tens per second that way. The worker already applies every interaction to the
profile; in the same transaction it computes the profile's unfiltered list of ``STORED_K`` and
stores it with the items' marker of the index it used. The API serves a stored list to an
unfiltered request for at most ``STORED_K`` items while it is current enough (the items changed
at most ``tolerance_seconds`` after it, and it is at most ``max_age_seconds`` old) and each of
its first k items is still active; otherwise, and for filters, it computes the list inline as
before. A profile changes only through the worker's transaction, which rewrites its list, so a
stored list never lags the person's own interactions.

The API holds every stored list in memory, kept current from the collection's change stream
(``ssg.platform.watched``, ADR 0055), so serving one reads nothing; while that copy is not
known to be at most ``held_lag_seconds`` behind (starting, the stream broken) or does not hold
the key (more lists than it keeps), the list is read by _id as before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pymongo.client_session import ClientSession

from ssg.platform.watched import WatchedCollection
from ssg.recommendation.domain.decay import value_at
from ssg.recommendation.domain.model import Scored
from ssg.recommendation.domain.profile import Profile
from ssg.recommendation.domain.regional import home_regions
from ssg.recommendation.domain.scoring import Filter, Recommender, Signals, Weights
from ssg.recommendation.neighbours import NeighbourCache
from ssg.recommendation.snapshot import Snapshot, SnapshotCache
from ssg.recommendation.store.mongo import MongoStore, StaleList, StoredList

log = logging.getLogger(__name__)

# Stored lists hold this many items (the default page): MMR picks greedily from a pool of
# max(5k, 50), so the first k of a list of 10 are exactly the list of k for any k <= 10.
STORED_K = 10
# History items whose co-interaction neighbours are read per list.
NEIGHBOUR_SOURCES = 20
# Profiles computed per bulk write in a backfill.
BACKFILL_BATCH = 500


def organization_of(key: str) -> str:
    """The organization id of an ``org:`` profile key ("" for a person's)."""
    return key.removeprefix("org:") if key.startswith("org:") else ""


@dataclass(frozen=True)
class Inputs:
    """Everything one list is computed from."""

    snapshot: Snapshot
    recommender: Recommender
    profile: Profile
    signals: Signals


class PersonalLists:
    """Computes, stores and serves profiles' recommendation lists."""

    def __init__(
        self,
        store: MongoStore,
        cache: SnapshotCache,
        neighbours: NeighbourCache,
        weights: Weights | None = None,
        *,
        tolerance_seconds: float = 600.0,
        max_age_seconds: float = 3600.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        held: WatchedCollection[StoredList] | None = None,
        held_lag_seconds: float = 1.0,
    ) -> None:
        self.store = store
        self.cache = cache
        self.neighbours = neighbours
        self.weights = weights or Weights()
        self.tolerance_ns = int(tolerance_seconds * 1e9)
        self.max_age_seconds = max_age_seconds
        self.clock = clock
        # The stored lists in memory (the API's; None: read by _id per call).
        self.held = held
        self.held_lag_seconds = held_lag_seconds

    def inputs(
        self, key: str, organization_id: str, now: datetime, session: ClientSession | None = None
    ) -> Inputs:
        """Blocking: the snapshot, the profile (read in session when given) and the behaviour
        signals around it; organization_id is the subject's organization ("" for a person)."""
        snapshot = self.cache.current()
        profile = self.store.read_profile(key, now, session)
        strongest = sorted(profile.items, key=lambda i: -profile.items[i])[:NEIGHBOUR_SOURCES]
        # One decay factor for every item: value_at is linear in the stored sum.
        decay = value_at(1.0, now, self.store.popularity_half_life)
        organization = organization_id or profile.organization_id
        regions = home_regions(snapshot.organizations.get(organization))
        signals = Signals(
            neighbour_positions=self.neighbours.positioned(
                strongest, snapshot.index, snapshot.people, snapshot.people_array
            ),
            popularity_by_position=snapshot.raw_popularity_array * decay,
            regional={
                r: snapshot.raw_regional[r] * decay for r in regions if r in snapshot.raw_regional
            },
        )
        return Inputs(snapshot, Recommender(snapshot.index, self.weights), profile, signals)

    def compute(
        self,
        key: str,
        organization_id: str,
        now: datetime,
        k: int,
        item_filter: Filter,
        session: ClientSession | None = None,
    ) -> tuple[list[Scored], bool]:
        """Blocking: the list computed inline, and whether it was a cold start."""
        found = self.inputs(key, organization_id, now, session)
        results = found.recommender.recommend(found.profile, found.signals, now, k, item_filter)
        return results, found.profile.cold

    def refresh(
        self, subjects: Sequence[tuple[str, str]], session: ClientSession | None = None
    ) -> None:
        """Blocking: compute and store the lists of (key, organization id) subjects, in the
        caller's transaction (the worker's, after it changed their profiles). A list that cannot
        be computed is dropped, so readers compute it rather than serve an older one."""
        now = self.clock()
        for key, organization_id in subjects:
            try:
                found = self.inputs(key, organization_id, now, session)
                scored = found.recommender.recommend(found.profile, found.signals, now, STORED_K)
            except Exception:
                log.exception("computing a stored recommendation list failed", extra={"key": key})
                self.store.drop_recommendations(key, session)
                continue
            if found.profile.cold:
                self.store.drop_recommendations(key, session)
            else:
                self.store.save_recommendations(key, scored, found.snapshot.marker, now, session)

    def served(self, key: str, k: int, now: datetime) -> list[Scored] | None:
        """Blocking: the first k of the profile's stored list when it is current enough and
        every one of them is still active; None when the list must be computed."""
        if k > STORED_K:
            return None
        known, stored = (
            self.held.lookup(key, self.held_lag_seconds) if self.held is not None else (False, None)
        )
        if not known:
            stored = self.store.stored_recommendations(key)
        if stored is None:
            return None
        return self._usable(stored, self.cache.current(), k, now)

    def held_list(self, key: str, k: int, now: datetime) -> list[Scored] | None:
        """Non-blocking (for the event loop): the first k of the profile's list when the copy in
        memory and the snapshot serve it without any I/O; None when ``served`` must decide."""
        if self.held is None or k > STORED_K:
            return None
        snapshot = self.cache.ready()
        if snapshot is None:
            return None
        known, stored = self.held.lookup(key, self.held_lag_seconds)
        if not known or stored is None:
            return None
        return self._usable(stored, snapshot, k, now)

    def _usable(
        self, stored: StoredList, snapshot: Snapshot, k: int, now: datetime
    ) -> list[Scored] | None:
        """The first k of stored when it is current enough on snapshot and each of them is
        still in the index and active; None when the list must be computed."""
        if snapshot.marker - stored.marker > self.tolerance_ns:
            return None
        if (now - stored.computed_at).total_seconds() > self.max_age_seconds:
            return None
        index = snapshot.index
        results: list[Scored] = []
        for n, (item_id, score, _) in enumerate(stored.entries[:k]):
            at = index.position.get(item_id)
            if at is None or not index.active[at]:
                return None
            results.append(Scored(index.items[at], score, stored.reasons(n)))
        return results

    def backfill(self, keys: Sequence[str] | None = None) -> int:
        """Blocking: compute and store the lists of every stored profile (or of keys), e.g.
        after a bulk load or a restore; the number stored."""
        wanted = self.store.profile_keys() if keys is None else list(keys)
        stored = 0
        for start in range(0, len(wanted), BACKFILL_BATCH):
            now = self.clock()
            batch: list[tuple[str, list[Scored]]] = []
            marker: int | None = None
            for key in wanted[start : start + BACKFILL_BATCH]:
                found = self.inputs(key, organization_of(key), now)
                if found.profile.cold:
                    continue
                # The oldest index of the batch: a reload meanwhile must not make one look newer.
                marker = min(found.snapshot.marker, marker or found.snapshot.marker)
                batch.append(
                    (key, found.recommender.recommend(found.profile, found.signals, now, STORED_K))
                )
            self.store.save_many_recommendations(batch, marker or 0, now)
            stored += len(batch)
        return stored

    def recompute(self, stale: Sequence[StaleList]) -> int:
        """Blocking: compute the lists read as stale again on the current snapshot and store
        each one only if it is still the list read (the interaction path may have stored a
        newer profile's list meanwhile); one that cannot be computed, or whose profile is now
        cold, is dropped on the same condition. The number rewritten or dropped."""
        now = self.clock()
        results: list[tuple[StaleList, Sequence[Scored] | None]] = []
        marker: int | None = None
        for read in stale:
            try:
                found = self.inputs(read.key, organization_of(read.key), now)
                scored = found.recommender.recommend(found.profile, found.signals, now, STORED_K)
            except Exception:
                log.exception("recomputing a stored list failed", extra={"key": read.key})
                results.append((read, None))
                continue
            # The oldest index of the batch: a reload meanwhile must not make one look newer.
            marker = min(found.snapshot.marker, marker or found.snapshot.marker)
            results.append((read, None if found.profile.cold else scored))
        return self.store.rewrite_unchanged_recommendations(results, marker or 0, now)
