"""Once-only data migrations, recorded by a marker document (real SecantusDB)."""

from __future__ import annotations

import uuid

import pytest

from ssg.platform.migrations import MIGRATIONS_COLLECTION, drop_retired_indexes, has_run, run_once


def test_a_migration_runs_once_and_leaves_its_marker(mongo_client):
    db = mongo_client[f"migrations-{uuid.uuid4().hex[:8]}"]
    runs: list[str] = []
    assert not has_run(db, "fill-x")
    assert run_once(db, "fill-x", lambda: runs.append("fill-x")) is True
    assert has_run(db, "fill-x")
    # A second start finds the marker and does not run it again; another name still runs.
    assert run_once(db, "fill-x", lambda: runs.append("fill-x")) is False
    assert run_once(db, "fill-y", lambda: runs.append("fill-y")) is True
    assert runs == ["fill-x", "fill-y"]
    assert {d["_id"] for d in db[MIGRATIONS_COLLECTION].find()} == {"fill-x", "fill-y"}


def test_a_failed_migration_is_not_recorded(mongo_client):
    db = mongo_client[f"migrations-{uuid.uuid4().hex[:8]}"]

    def broken() -> None:
        raise RuntimeError("half done")

    with pytest.raises(RuntimeError):
        run_once(db, "fill-z", broken)
    assert not has_run(db, "fill-z")  # the next start tries again


def test_replicas_starting_together_retire_an_index_without_failing(mongo_client):
    db = mongo_client[f"migrations-{uuid.uuid4().hex[:8]}"]
    things = db["things"]
    things.create_index("old", name="old_1")
    # Both replicas read the index list before either dropped it.
    seen_by_second = set(things.index_information())
    drop_retired_indexes(things, ("old_1",))
    assert "old_1" in seen_by_second
    things.index_information = lambda: {name: {} for name in seen_by_second}
    drop_retired_indexes(things, ("old_1",))  # finds it gone when dropping: no error
    assert "old_1" not in db["things"].index_information()
