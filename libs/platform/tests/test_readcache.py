"""Read caches (ADR 0014): the rules of a fill, and the feed on a real MongoDB-protocol server
(changes by other writers, preload, a server that goes away and comes back)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from prometheus_client import CollectorRegistry
from pymongo import MongoClient
from pymongo.database import Database

from ssg.platform.mongo import Doc, client_options
from ssg.platform.readcache import MISS, CacheFeed, ReadCache, Route, by_field
from ssg.platform.settings import PlatformSettings
from ssg.testing import servers


def cache(capacity: int = 10) -> ReadCache[str, str]:
    """A cache of its own registry, current for the next minute."""
    made: ReadCache[str, str] = ReadCache("test", capacity, registry=CollectorRegistry())
    made.confirm(time.monotonic() + 60)
    return made


# -- the rules, without a server ------------------------------------------------------------


def test_a_cache_its_feed_has_not_confirmed_answers_nothing_and_keeps_nothing():
    c: ReadCache[str, str] = ReadCache("test", 10, registry=CollectorRegistry())
    c.fill("a", c.ticket("a"), "A")
    assert c.get("a") is MISS
    c.confirm(time.monotonic() + 60)
    assert c.get("a") is MISS  # the fill before was not kept
    c.fill("a", c.ticket("a"), "A")
    assert c.get("a") == "A"


def test_an_expired_confirmation_sends_reads_to_the_datastore():
    c = cache()
    c.fill("a", c.ticket("a"), "A")
    c.confirm(time.monotonic() - 0.001)
    assert not c.current
    assert c.get("a") is MISS
    c.confirm(time.monotonic() + 60)
    assert c.get("a") == "A"  # kept for a feed that resumes


def test_a_fill_that_raced_a_change_keeps_nothing():
    c = cache()
    ticket = c.ticket("a")  # the read starts
    c.invalidate("a")  # the key changes while it is under way
    c.fill("a", ticket, "old")
    assert c.get("a") is MISS
    c.fill("a", c.ticket("a"), "new")
    assert c.get("a") == "new"


def test_a_change_of_another_key_does_not_spoil_a_fill():
    c = cache()
    ticket = c.ticket("a")
    c.invalidate("b")
    c.fill("a", ticket, "A")
    assert c.get("a") == "A"


def test_of_two_fills_under_way_only_the_one_that_started_after_the_change_is_kept():
    c = cache()
    early = c.ticket("a")
    c.invalidate("a")
    late = c.ticket("a")
    c.fill("a", late, "new")
    c.fill("a", early, "old")
    assert c.get("a") == "new"


def test_a_clear_spoils_every_fill_under_way():
    c = cache()
    ticket = c.ticket("a")
    c.clear()
    c.fill("a", ticket, "A")
    assert c.get("a") is MISS


def test_a_fill_of_a_key_found_in_the_read_needs_no_change_at_all_since():
    c = cache()
    ticket = c.seq()
    c.invalidate("unrelated")
    c.fill_unchanged("org", ticket, "O")
    assert c.get("org") is MISS
    ticket = c.seq()
    c.fill_unchanged("org", ticket, "O")
    assert c.get("org") == "O"


def test_nothing_stored_is_not_cached():
    c = cache()
    c.fill("missing", c.ticket("missing"), None)
    assert c.get("missing") is MISS
    assert len(c) == 0


def test_the_least_recently_read_entry_goes_first():
    c = cache(capacity=2)
    c.fill("a", c.ticket("a"), "A")
    c.fill("b", c.ticket("b"), "B")
    assert c.get("a") == "A"  # b is now the least recently used
    c.fill("c", c.ticket("c"), "C")
    assert c.get("b") is MISS
    assert (c.get("a"), c.get("c")) == ("A", "C")


async def test_read_through_loads_once_then_answers_from_memory():
    c = cache()
    loads: list[str] = []

    async def load() -> str:
        loads.append("a")
        return "A"

    assert await c.read_through("a", load) == "A"
    assert await c.read_through("a", load) == "A"
    assert loads == ["a"]


async def test_a_failed_load_leaves_no_fill_under_way():
    c = cache()

    async def fail() -> str:
        raise RuntimeError("database down")

    with pytest.raises(RuntimeError):
        await c.read_through("a", fail)
    c.invalidate("a")
    c.fill("a", c.ticket("a"), "A")
    assert c.get("a") == "A"


# -- the feed on a real server --------------------------------------------------------------

BOUND = 1.0  # max staleness of the feeds below


def _people(db: Database[Doc]) -> Iterator[tuple[str, str]]:
    for doc in db.people.find():
        yield doc["_id"], doc["name"]


class Following:
    """A feed running in its thread, and the caches it keeps."""

    def __init__(self, db: Database[Doc], preload: bool = False) -> None:
        registry = CollectorRegistry()
        self.db = db
        self.people: ReadCache[str, str] = ReadCache("people", 100, registry=registry)
        self.pets: ReadCache[str, tuple[str, ...]] = ReadCache("pets", 100, registry=registry)
        self.feed = CacheFeed(
            "test",
            db,
            [
                Route("people", self.people, preload=(lambda: _people(db)) if preload else None),
                Route("pets", self.pets, by_field("owner"), ("owner",)),
            ],
            max_staleness=BOUND,
            retry_seconds=0.1,
            registry=registry,
        )
        self.halt = threading.Event()
        self.thread = threading.Thread(target=self.feed.follow, args=(self.halt,), daemon=True)
        self.loads = 0

    def __enter__(self) -> Following:
        self.thread.start()
        wait_for(lambda: self.people.current, 10, "the feed to confirm the caches")
        return self

    def __exit__(self, *exc: object) -> None:
        self.halt.set()
        self.thread.join(10)

    async def name(self, person: str) -> str | None:
        """The person's name through the cache, counting datastore reads."""

        async def load() -> str | None:
            self.loads += 1
            doc = self.db.people.find_one({"_id": person})
            return None if doc is None else str(doc["name"])

        return await self.people.read_through(person, load)


def wait_for(predicate: Callable[[], bool], within: float, what: str) -> float:
    """Seconds until predicate held; fails after within."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > within:
            raise AssertionError(f"waited {within} s for {what}")
        time.sleep(0.01)
    return time.monotonic() - started


@pytest.fixture
def db(mongodb_server, unique_name) -> Iterator[Database[Doc]]:
    client: MongoClient[Doc] = MongoClient(
        mongodb_server.uri(unique_name), **client_options(PlatformSettings(service="tests"))
    )
    database = client.get_default_database()
    database.people.insert_one({"_id": "p0", "name": "zero"})
    try:
        yield database
    finally:
        client.drop_database(database.name)
        client.close()


async def eventually(
    following: Following, person: str, expected: str | None, within: float
) -> float:
    """Seconds until a Get through the cache answers expected; fails after within."""
    started = time.monotonic()
    while (await following.name(person)) != expected:
        assert time.monotonic() - started < within, f"{person} still not {expected!r}"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


async def test_another_writers_update_and_delete_are_seen_within_the_staleness_bound(db):
    with Following(db) as f:
        assert await f.name("p0") == "zero"
        assert await f.name("p0") == "zero"
        assert f.loads == 1  # the second Get came from memory
        db.people.update_one({"_id": "p0"}, {"$set": {"name": "changed"}})
        assert await eventually(f, "p0", "changed", BOUND + 0.5) <= BOUND + 0.5
        db.people.delete_one({"_id": "p0"})  # erased: never answered from memory again
        await eventually(f, "p0", None, BOUND + 0.5)
        loads = f.loads
        assert await f.name("p0") is None
        assert f.loads == loads + 1


async def test_a_preloaded_cache_answers_without_reads_and_drops_what_changed_while_loading(db):
    db.people.insert_many([{"_id": f"p{i}", "name": f"n{i}"} for i in range(1, 50)])
    with Following(db, preload=True) as f:
        assert [await f.name(f"p{i}") for i in range(50)] == ["zero"] + [
            f"n{i}" for i in range(1, 50)
        ]
        assert f.loads == 0
        db.people.update_one({"_id": "p7"}, {"$set": {"name": "seven"}})
        await eventually(f, "p7", "seven", BOUND + 0.5)


async def test_a_group_keyed_by_a_field_is_dropped_on_insert_and_cleared_on_a_delete(db):
    with Following(db) as f:
        f.pets.fill("ann", f.pets.ticket("ann"), ("rex",))
        f.pets.fill("bob", f.pets.ticket("bob"), ())
        db.pets.insert_one({"_id": "cat", "owner": "ann"})
        wait_for(lambda: f.pets.get("ann") is MISS, BOUND + 0.5, "ann's pets to be dropped")
        assert f.pets.get("bob") == ()
        db.pets.delete_one({"_id": "cat"})  # the delete does not say whose: all go
        wait_for(lambda: f.pets.get("bob") is MISS, BOUND + 0.5, "every group to be dropped")


async def test_a_feed_whose_server_goes_away_stops_answering_then_resumes(server_workdir):
    # Killed below: only durable commits keep p0 across the kill (ADR 0061).
    server = servers.start_mongodb(server_workdir, durable_commits=True)
    options = client_options(PlatformSettings(service="tests")) | {"serverSelectionTimeoutMS": 500}
    try:
        client: MongoClient[Doc] = MongoClient(servers.mongodb_uri(server.port, "feed"), **options)
        db = client.get_default_database()
        db.people.insert_one({"_id": "p0", "name": "zero"})
        with Following(db) as f:
            assert await f.name("p0") == "zero"
            server.kill()
            # Nothing vouches for the entries any more: within the bound every Get reads.
            wait_for(lambda: not f.people.current, BOUND + 1, "the cache to stop answering")
            assert f.people.get("p0") is MISS
            server.start(lambda: servers.port_open(server.port))
            db.people.update_one({"_id": "p0"}, {"$set": {"name": "after"}})
            wait_for(lambda: f.people.current, 30, "the feed to resume")
            # The change made while the feed was away reached the cache (resumed or reset).
            await eventually(f, "p0", "after", BOUND + 0.5)
        client.close()
    finally:
        server.stop()
