"""The outbox: one transaction for state and events, and the relay's batch selection (real SecantusDB);
plus the relay's pure logic (no servers)."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import mongoengine
import pymongo
import pytest
from pymongo.errors import DuplicateKeyError

from ssg.contracts.diagnostics.v1.diagnostics_pb2 import EchoRequest
from ssg.platform.events.envelope import Origin, build_envelope, parse_envelope
from ssg.platform.events.outbox import (
    MAX_OUTBOX_EVENT_BYTES,
    EventTooLarge,
    Outbox,
    OutboxRow,
    UnitOfWork,
    chains_by_key,
    next_seq,
    write_with_events,
)
from ssg.platform.events.relay import RelaySettings, backoff_delay
from ssg.platform.mongo import connect_mongoengine, make_client, run_sync
from ssg.platform.settings import ConfigError, PlatformSettings, load_settings

ORIGIN = Origin("outbox-test", "global", "test-1")
TOPIC = "diagnostics.echo-events.v1"


def event(aggregate: str, version: int):
    return build_envelope(
        ORIGIN, "diagnostics.EchoRequested", aggregate, version, EchoRequest(message=f"{aggregate}")
    )


def row(key: str, version: int, seq: int) -> OutboxRow:
    return OutboxRow(
        event_id=f"{key}-{version}-{seq}",
        topic=TOPIC,
        key=key,
        value=b"",
        aggregate_version=version,
        seq=seq,
        event_type="diagnostics.EchoRequested",
        trace_id="t",
        created_at=datetime.now(UTC),
    )


@pytest.fixture
def mongo(mongodb_server, unique_name):
    settings = PlatformSettings(service="outbox-test", mongodb_uri=mongodb_server.uri(unique_name))
    client = make_client(settings)
    db = client.get_default_database()
    Outbox(db).ensure_indexes()
    yield client, db
    client.drop_database(unique_name)
    client.close()


# --- pure logic -------------------------------------------------------------------------------


def test_chains_are_per_key_in_version_order_whatever_the_insert_order():
    rows = [row("a", 3, 1), row("b", 1, 2), row("a", 1, 5), row("a", 2, 9), row("b", 2, 3)]
    random.Random(7).shuffle(rows)
    chains = chains_by_key(rows)
    assert [r.aggregate_version for r in chains["a"]] == [1, 2, 3]
    assert [r.aggregate_version for r in chains["b"]] == [1, 2]
    # The aggregate holding the oldest row comes first (fairness).
    assert list(chains) == ["a", "b"]


def test_events_of_one_version_keep_their_insert_order():
    chains = chains_by_key([row("a", 4, 20), row("a", 4, 10), row("a", 3, 30)])
    assert [(r.aggregate_version, r.seq) for r in chains["a"]] == [(3, 30), (4, 10), (4, 20)]


def test_seq_is_strictly_increasing():
    seqs = [next_seq() for _ in range(10_000)]
    assert all(b > a for a, b in itertools.pairwise(seqs))


def test_backoff_doubles_up_to_the_cap_with_bounded_jitter():
    low = [backoff_delay(n, 0.1, 5.0, rand=lambda: 0.0) for n in range(10)]
    high = [backoff_delay(n, 0.1, 5.0, rand=lambda: 1.0) for n in range(10)]
    assert low[:4] == pytest.approx([0.05, 0.1, 0.2, 0.4])
    assert high[:4] == pytest.approx([0.1, 0.2, 0.4, 0.8])
    assert max(high) == pytest.approx(5.0)
    assert min(low[6:]) == pytest.approx(2.5)  # capped: at least half the cap
    assert backoff_delay(10_000, 0.1, 5.0) <= 5.0  # no overflow on long outages


def test_relay_settings_refuse_a_send_timeout_longer_than_a_third_of_the_lease():
    with pytest.raises(ConfigError, match="outbox_publish_timeout_seconds"):
        load_settings(
            RelaySettings,
            service="x",
            outbox_lease_seconds=6,
            outbox_publish_timeout_seconds=3,
        )
    assert load_settings(RelaySettings, service="x").outbox_lease_seconds == 15


# --- against SecantusDB -----------------------------------------------------------------------


def test_state_and_event_commit_together(mongo):
    client, db = mongo
    env = event("sol-1", 1)

    def publish(uow: UnitOfWork) -> str:
        db.solutions.insert_one({"_id": "sol-1", "version": 1}, session=uow.session)
        return uow.add(TOPIC, env)

    assert write_with_events(client, db, publish) == env.event_id
    assert db.solutions.find_one({"_id": "sol-1"})["version"] == 1
    stored = db.outbox.find_one({"_id": env.event_id})
    assert stored["topic"] == TOPIC
    assert stored["key"] == "sol-1"
    assert stored["aggregate_version"] == 1
    assert stored["sent_at"] is None
    assert parse_envelope(bytes(stored["value"])).event_id == env.event_id


def test_an_aborted_transaction_leaves_neither_state_nor_event(mongo):
    client, db = mongo
    env = event("sol-2", 1)

    class Refused(Exception):
        pass

    def publish(uow: UnitOfWork) -> None:
        db.solutions.insert_one({"_id": "sol-2", "version": 1}, session=uow.session)
        uow.add(TOPIC, env)
        raise Refused

    with pytest.raises(Refused):
        write_with_events(client, db, publish)
    assert db.solutions.find_one({"_id": "sol-2"}) is None
    assert db.outbox.find_one({"_id": env.event_id}) is None


def test_a_duplicate_event_id_aborts_its_transaction(mongo):
    client, db = mongo
    env = event("sol-3", 1)
    write_with_events(client, db, lambda uow: uow.add(TOPIC, env))

    def again(uow: UnitOfWork) -> None:
        db.solutions.insert_one({"_id": "sol-3"}, session=uow.session)
        uow.add(TOPIC, env)

    with pytest.raises(DuplicateKeyError):
        write_with_events(client, db, again)
    assert db.outbox.count_documents({"_id": env.event_id}) == 1
    assert db.solutions.find_one({"_id": "sol-3"}) is None


def test_an_event_too_large_for_kafka_fails_the_command_and_writes_nothing(mongo):
    client, db = mongo
    huge = build_envelope(
        ORIGIN,
        "diagnostics.EchoRequested",
        "sol-5",
        1,
        EchoRequest(message="x" * MAX_OUTBOX_EVENT_BYTES),
    )

    def publish(uow: UnitOfWork) -> None:
        db.solutions.insert_one({"_id": "sol-5"}, session=uow.session)
        uow.add(TOPIC, huge)

    with pytest.raises(EventTooLarge, match="limited to"):
        write_with_events(client, db, publish)
    assert db.solutions.find_one({"_id": "sol-5"}) is None
    assert db.outbox.count_documents({}) == 0


def test_add_outside_a_transaction_is_refused(mongo):
    client, db = mongo
    with client.start_session() as session, pytest.raises(RuntimeError, match="transaction"):
        Outbox(db).add(session, TOPIC, event("sol-4", 1))
    assert db.outbox.count_documents({}) == 0


def test_write_conflicts_are_retried_until_both_writers_commit(mongo, mongodb_server, unique_name):
    client, db = mongo
    db.counters.insert_one({"_id": "c", "n": 0})
    other: pymongo.MongoClient = pymongo.MongoClient(mongodb_server.uri(unique_name))
    calls = {"n": 0}

    def bump(uow: UnitOfWork) -> None:
        calls["n"] += 1
        db.counters.find_one({"_id": "c"}, session=uow.session)  # the snapshot starts here
        if calls["n"] == 1:
            # Another writer commits to the same document while our transaction is open.
            other[db.name].counters.update_one({"_id": "c"}, {"$inc": {"n": 100}})
        db.counters.update_one({"_id": "c"}, {"$inc": {"n": 1}}, session=uow.session)
        uow.add(TOPIC, event("c", calls["n"]))

    try:
        write_with_events(client, db, bump)
    finally:
        other.close()
    assert calls["n"] >= 2  # the first attempt hit a write conflict and was run again
    assert db.counters.find_one({"_id": "c"})["n"] == 101
    assert db.outbox.count_documents({}) == 1


async def test_run_sync_runs_the_write_off_the_event_loop(mongo):
    client, db = mongo
    env = event("sol-5", 1)
    await run_sync(write_with_events, client, db, lambda uow: uow.add(TOPIC, env))
    assert await run_sync(db.outbox.count_documents, {"_id": env.event_id}) == 1


class Solution(mongoengine.Document):
    meta = {"db_alias": "outbox-test", "collection": "solutions"}
    title = mongoengine.StringField(required=True)
    version = mongoengine.IntField(required=True)


def test_mongoengine_documents_share_the_transaction(mongodb_server, unique_name):
    settings = PlatformSettings(service="outbox-test", mongodb_uri=mongodb_server.uri(unique_name))
    client, db = connect_mongoengine(settings, alias="outbox-test")
    try:
        env = event("sol-6", 1)

        def publish(uow: UnitOfWork) -> None:
            doc = Solution(title="rainwater harvesting", version=1)
            doc.validate()
            Solution._get_collection().insert_one(doc.to_mongo().to_dict(), session=uow.session)
            uow.add(TOPIC, env)

        write_with_events(client, db, publish)
        assert Solution.objects(title="rainwater harvesting").count() == 1
        assert db.outbox.count_documents({"_id": env.event_id}) == 1

        def refused(uow: UnitOfWork) -> None:
            publish(uow)
            raise ValueError("no")

        with pytest.raises((ValueError, DuplicateKeyError)):
            write_with_events(client, db, refused)
        assert Solution.objects.count() == 1
    finally:
        client.drop_database(unique_name)
        mongoengine.disconnect(alias="outbox-test")


def test_batches_are_per_key_prefixes_in_version_order(mongo):
    client, db = mongo
    outbox = Outbox(db)
    # Versions of "a" inserted newest first, so seq order and version order disagree.
    envs = [event("a", v) for v in (5, 4, 3, 2, 1)] + [event("b", v) for v in (1, 2, 3)]

    def insert(uow: UnitOfWork) -> None:
        for env in envs:
            uow.add(TOPIC, env)

    write_with_events(client, db, insert)
    batch = outbox.unsent_batch(4)
    assert [(r.key, r.aggregate_version) for r in batch] == [("a", 1), ("a", 2), ("a", 3), ("a", 4)]

    # Rows acknowledged but not yet marked are skipped; what follows is still the next prefix.
    batch = outbox.unsent_batch(3, exclude={batch[0].event_id, batch[1].event_id})
    assert [(r.key, r.aggregate_version) for r in batch] == [("a", 3), ("a", 4), ("a", 5)]

    assert outbox.mark_sent([r.event_id for r in outbox.unsent_batch(5)]) == 5
    assert [(r.key, r.aggregate_version) for r in outbox.unsent_batch(10)] == [
        ("b", 1),
        ("b", 2),
        ("b", 3),
    ]
    stats = outbox.stats()
    assert stats.backlog == 3
    assert stats.oldest_unsent_age_seconds >= 0
    # Marking twice changes nothing; purging removes only rows sent before the cutoff.
    assert outbox.mark_sent([envs[0].event_id]) == 0
    assert outbox.purge_sent(datetime.now(UTC) - timedelta(hours=1)) == 0
    assert outbox.purge_sent(datetime.now(UTC) + timedelta(seconds=1)) == 5
    assert db.outbox.count_documents({}) == 3


def test_rows_at_or_below_the_checkpoint_seq_count_as_published(mongo):
    client, db = mongo
    outbox = Outbox(db)
    envs = [event("c", v) for v in (1, 2, 3, 4)]
    write_with_events(client, db, lambda uow: [uow.add(TOPIC, env) for env in envs])
    seqs = [doc["seq"] for doc in db.outbox.find().sort("seq", 1)]
    # The stream path published the first two (checkpoint last_seq); nothing is marked.
    through = seqs[1]
    assert [r.aggregate_version for r in outbox.unsent_batch(10, after_seq=through)] == [3, 4]
    assert outbox.stats(published_through=through).backlog == 2
    assert outbox.stats().backlog == 4
    # Purge drops unmarked rows only at or below the given seq, and only past the retention.
    assert outbox.purge_sent(datetime.now(UTC) - timedelta(hours=1), published_through=through) == 0
    assert (
        outbox.purge_sent(datetime.now(UTC) + timedelta(seconds=1), published_through=through) == 2
    )
    assert db.outbox.count_documents({}) == 2


def test_add_many_writes_every_event_in_order_in_the_transaction(mongo):
    client, db = mongo
    envs = [event("sol-6", v) for v in (1, 2, 3)]
    write_with_events(client, db, lambda uow: uow.add_many([(TOPIC, e) for e in envs]))
    rows = list(db.outbox.find().sort("seq", 1))
    assert [r["_id"] for r in rows] == [e.event_id for e in envs]
    assert [r["aggregate_version"] for r in rows] == [1, 2, 3]
    assert parse_envelope(rows[2]["value"]).event_id == envs[2].event_id


class Commands(pymongo.monitoring.CommandListener):
    """The names of the commands a client sends (the test's own client only)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: pymongo.monitoring.CommandStartedEvent) -> None:
        self.names.append(event.command_name)

    def succeeded(self, event: pymongo.monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: pymongo.monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
def listened(mongodb_server, unique_name):
    commands = Commands()
    client: pymongo.MongoClient = pymongo.MongoClient(
        mongodb_server.uri(unique_name), event_listeners=[commands]
    )
    db = client.get_default_database()
    Outbox(db).ensure_indexes()
    client.admin.command("ping")  # the topology knows the server (and its wire version)
    commands.names.clear()
    yield client, db, commands
    client.drop_database(db.name)
    client.close()


def entity_with_audit_and_event(name: str, env):
    def unit(uow: UnitOfWork) -> None:
        uow.insert("entities", {"_id": name, "n": 1})
        uow.insert("audit", {"_id": f"{name}-audit", "entity": name})
        uow.add(TOPIC, env)

    return unit


def test_inserts_and_events_of_a_unit_go_out_in_one_command(listened):
    client, db, commands = listened
    env = event("ent-1", 1)
    write_with_events(client, db, entity_with_audit_and_event("ent-1", env))
    assert commands.names == ["bulkWrite", "commitTransaction"]
    assert db.entities.find_one({"_id": "ent-1"})["n"] == 1
    assert db.audit.find_one({"_id": "ent-1-audit"})["entity"] == "ent-1"
    assert db.outbox.find_one({"_id": env.event_id})["key"] == "ent-1"


def test_a_taken_key_among_the_waiting_inserts_writes_nothing_and_raises_duplicate_key(listened):
    client, db, _ = listened
    db.audit.insert_one({"_id": "ent-2-audit"})
    env = event("ent-2", 1)
    with pytest.raises(DuplicateKeyError):
        write_with_events(client, db, entity_with_audit_and_event("ent-2", env))
    assert db.entities.find_one({"_id": "ent-2"}) is None
    assert db.outbox.find_one({"_id": env.event_id}) is None


def test_without_the_bulk_write_command_each_collection_gets_one_insert(listened, monkeypatch):
    client, db, commands = listened
    # A server older than MongoDB 8.0 (no bulkWrite command).
    monkeypatch.setattr("ssg.platform.events.outbox.CLIENT_BULK_WRITE_WIRE_VERSION", 10_000)
    env = event("ent-3", 1)
    write_with_events(client, db, entity_with_audit_and_event("ent-3", env))
    assert commands.names == ["insert", "insert", "insert", "commitTransaction"]
    assert db.entities.count_documents({"_id": "ent-3"}) == 1
    assert db.outbox.count_documents({"_id": env.event_id}) == 1
    db.audit.delete_many({})
    db.audit.insert_one({"_id": "ent-4-audit"})
    with pytest.raises(DuplicateKeyError):
        write_with_events(client, db, entity_with_audit_and_event("ent-4", event("ent-4", 1)))
    assert db.entities.find_one({"_id": "ent-4"}) is None


def test_a_read_in_the_unit_sees_what_it_inserted_after_a_flush(listened):
    client, db, _ = listened

    def unit(uow: UnitOfWork) -> int:
        uow.insert("entities", {"_id": "ent-5", "n": 5})
        uow.insert("audit", {"_id": "ent-5-audit"})
        uow.flush()
        return db.entities.find_one({"_id": "ent-5"}, session=uow.session)["n"]

    assert write_with_events(client, db, unit) == 5


def test_a_unit_retried_after_a_transient_error_writes_once(listened):
    client, db, _ = listened
    runs = {"n": 0}

    def unit(uow: UnitOfWork) -> None:
        runs["n"] += 1
        # The retry's first statement is the bulk write, in a session that has spoken before.
        uow.insert("entities", {"_id": "ent-6"})
        uow.insert("audit", {"_id": "ent-6-audit"})
        uow.flush()
        if runs["n"] == 1:
            error = pymongo.errors.OperationFailure("simulated write conflict", 112)
            error._add_error_label("TransientTransactionError")
            raise error

    write_with_events(client, db, unit)
    assert runs["n"] == 2
    assert db.entities.count_documents({"_id": "ent-6"}) == 1
    assert db.audit.count_documents({"_id": "ent-6-audit"}) == 1
