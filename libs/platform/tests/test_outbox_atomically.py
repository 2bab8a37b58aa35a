"""atomically: write_with_events run again when the unit loses a unique-index race (real
MongoDB-protocol server)."""

from __future__ import annotations

import pytest
from pymongo.errors import DuplicateKeyError

from ssg.platform.events.outbox import DUPLICATE_KEY_ATTEMPTS, Outbox, UnitOfWork, atomically
from ssg.platform.mongo import make_client
from ssg.platform.settings import PlatformSettings


@pytest.fixture
def mongo(mongodb_server, unique_name):
    settings = PlatformSettings(service="outbox-test", mongodb_uri=mongodb_server.uri(unique_name))
    client = make_client(settings)
    db = client.get_default_database()
    Outbox(db).ensure_indexes()
    try:
        yield client, db
    finally:
        client.drop_database(db.name)
        client.close()


def test_a_unit_that_lost_a_race_runs_again_and_sees_the_winner(mongo):
    client, db = mongo
    db.requests.insert_one({"_id": "req-1", "result": "first"})
    runs: list[str] = []

    def insert_unless_present(uow: UnitOfWork) -> str:
        found = uow.db.requests.find_one({"_id": "req-1"}, session=uow.session)
        if found is not None and runs:
            runs.append("read")
            return str(found["result"])
        runs.append("insert")  # the first run misses the winner, as a racing request would
        uow.db.requests.insert_one({"_id": "req-1", "result": "second"}, session=uow.session)
        return "second"

    assert atomically(client, db, insert_unless_present) == "first"
    assert runs == ["insert", "read"]


def test_a_unit_that_always_collides_fails_after_the_attempts(mongo):
    client, db = mongo
    db.requests.insert_one({"_id": "req-1"})
    runs = 0

    def collide(uow: UnitOfWork) -> None:
        nonlocal runs
        runs += 1
        uow.db.requests.insert_one({"_id": "req-1"}, session=uow.session)

    with pytest.raises(DuplicateKeyError):
        atomically(client, db, collide)
    assert runs == DUPLICATE_KEY_ATTEMPTS


def test_a_unit_without_conflict_runs_once(mongo):
    client, db = mongo
    runs = 0

    def write(uow: UnitOfWork) -> int:
        nonlocal runs
        runs += 1
        uow.db.requests.insert_one({"_id": "req-2"}, session=uow.session)
        return runs

    assert atomically(client, db, write, attempts=1) == 1
    assert db.requests.count_documents({}) == 1
