"""MatchNeed results remembered while the snapshot's objects stay current (no servers)."""

from __future__ import annotations

from functools import partial

from ssg.recommendation.memo import SnapshotMemo


def test_a_result_is_reused_only_on_the_very_objects_it_was_computed_on():
    memo: SnapshotMemo[str] = SnapshotMemo()
    calls: list[str] = []

    def compute(value: str):
        def run() -> str:
            calls.append(value)
            return value

        return run

    index, orgs = object(), {"o": 1}
    assert memo.get("need", (index, orgs), compute("first")) == "first"
    assert memo.get("need", (index, orgs), compute("second")) == "first"
    assert calls == ["first"]
    # An equal but new organizations map (a reload) is a different snapshot.
    assert memo.get("need", (index, {"o": 1}), compute("third")) == "third"
    assert memo.get("other", (index, {"o": 1}), compute("fourth")) == "fourth"
    assert calls == ["first", "third", "fourth"]


def test_a_new_snapshot_drops_every_entry_and_the_oldest_go_past_the_limit():
    memo: SnapshotMemo[int] = SnapshotMemo(max_entries=2)
    basis = (object(),)
    for n in range(3):
        memo.get(n, basis, partial(int, n))
    assert len(memo) == 2
    assert memo.get(0, basis, lambda: -1) == -1  # evicted, computed again
    assert memo.get(2, basis, lambda: -2) == 2
    memo.get("x", (object(),), lambda: 7)
    assert len(memo) == 1  # only entries of the current objects are held
