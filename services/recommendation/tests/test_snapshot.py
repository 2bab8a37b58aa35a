"""The API's snapshot on a real MongoDB: a signals reload reads only the item stats changed
since the previous one (ADR 0055) and gives the same signals a full load would; organizations,
track records and experts that did not change stay the same objects (so MatchNeed results
remembered on them survive the reload)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import numpy as np
import pytest

from ssg.recommendation.domain.model import InteractionKind, Organization
from ssg.recommendation.events.catalog import solution_item
from ssg.recommendation.snapshot import Snapshot, SnapshotCache
from ssg.recommendation.store.mongo import InteractionFacts, ItemSignals

from .builders import solution

pytestmark = pytest.mark.timeout(120)


class Clock:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def same_signals(a: Snapshot, b: Snapshot) -> None:
    """a holds the signals b holds, in maps and in index order."""
    assert a.raw_popularity == pytest.approx(b.raw_popularity)
    assert a.people == b.people
    np.testing.assert_allclose(a.raw_popularity_array, b.raw_popularity_array)
    np.testing.assert_array_equal(a.people_array, b.people_array)
    assert set(a.raw_regional) == set(b.raw_regional)
    for region, values in b.raw_regional.items():
        np.testing.assert_allclose(a.raw_regional[region], values)


def test_a_signals_reload_reads_only_what_changed_and_equals_a_full_load(served, monkeypatch):
    store = served.store
    tag = uuid.uuid4().hex[:6]
    items = [f"snap-{tag}-{n}" for n in range(4)]
    for n, item_id in enumerate(items):
        store.apply_item(solution_item(solution(item_id, f"Item {n}", "water pumps", [6]), 1))
    org = Organization(f"o-{tag}", "Regional org", verified=True, regions=("AFRICA",), version=1)
    store.apply_organization(org)

    def interact(user: str, item_id: str, organization_id: str = "") -> None:
        facts = InteractionFacts(
            user, organization_id, item_id, InteractionKind.SAVE, datetime.now(UTC)
        )
        store.record_interaction(facts, store.get_item(item_id))

    interact(f"a-{tag}", items[0])
    interact(f"a-{tag}", items[1])
    # Stats written long ago: an incremental reload must not read them again.
    store.item_stats.update_many({"_id": {"$in": items[:2]}}, {"$set": {"changed_at": 1}})

    reads: list[tuple[int | None, int]] = []
    real = store.item_signals

    def counted(changed_since: int | None = None) -> ItemSignals:
        found = real(changed_since)
        reads.append((changed_since, len(found.popularity)))
        return found

    monkeypatch.setattr(store, "item_signals", counted)
    clock = Clock()
    cache = SnapshotCache(store, 1.0, clock, background=False, signals_seconds=5.0)
    first = cache.current()
    assert reads[-1][0] is None  # the first load reads every item's stats

    interact(f"b-{tag}", items[1], org.id)  # a regional use, a second person
    interact(f"b-{tag}", items[2], org.id)  # an item with no stats before
    clock.now = 10.0
    second = cache.current()
    since, read = reads[-1]
    assert since is not None and read >= 2
    assert store.item_stats.count_documents({"changed_at": {"$gte": since}}) == read
    assert store.item_stats.count_documents({"_id": {"$in": items[:2]}, "changed_at": 1}) == 1
    full = SnapshotCache(store, 1.0, Clock(), background=False).current()
    same_signals(second, full)
    assert second.people[items[1]] == 2 and second.people[items[2]] == 1
    assert second.raw_popularity[items[0]] == first.raw_popularity[items[0]]
    # Nothing else changed: the same objects, so results remembered on them stay valid.
    assert second.index is first.index
    assert second.organizations is first.organizations
    assert second.track_record is first.track_record
    assert second.experts is first.experts

    store.apply_organization(
        Organization(org.id, "Renamed", verified=True, regions=("AFRICA",), version=2)
    )
    clock.now = 20.0
    third = cache.current()
    assert third.organizations is not first.organizations
    assert third.organizations[org.id].name == "Renamed"
    same_signals(third, SnapshotCache(store, 1.0, Clock(), background=False).current())
