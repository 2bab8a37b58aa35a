"""A collection held in memory from its change stream, on a real MongoDB (SecantusDB): changes
reach the copy, a bounded copy sends misses to the datastore, a server restart resumes the
stream from its token, a dropped collection is loaded again, a server that lost the stream's
history is caught by the periodic load, and a copy that is not known to be current is never
answered from."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.collection import Collection

from ssg.platform.watched import WatchedCollection
from ssg.testing import servers

pytestmark = pytest.mark.timeout(120)

LAG = 1.0


def value(doc: Mapping[str, Any]) -> int:
    """The decoded form the tests hold: the document's v."""
    return int(doc["v"])


def client_on(port: int) -> MongoClient[dict[str, Any]]:
    """A client that gives up on an absent server quickly (restarts are part of the tests)."""
    return MongoClient(servers.mongodb_uri(port, "watched"), serverSelectionTimeoutMS=2000)


@pytest.fixture
def collection(mongo_client, unique_name) -> Iterator[Collection[dict[str, Any]]]:
    """An empty collection of the test's own on the session's server."""
    db = mongo_client[unique_name]
    yield db["lists"]
    mongo_client.drop_database(db.name)


def watched(collection: Collection[Any], **options: Any) -> WatchedCollection[int]:
    """The collection followed, its first load applied."""
    found = WatchedCollection(collection, value, await_ms=50, retry_seconds=0.1, **options)
    assert found.wait_current(20)
    return found


def wait_until(predicate, what: str, within: float = 30.0) -> None:
    """Poll predicate until it holds."""
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, f"{what} within {within} s"
        time.sleep(0.02)


def test_every_kind_of_change_reaches_the_copy(collection) -> None:
    collection.insert_many([{"_id": "a", "v": 1}, {"_id": "b", "v": 2}])
    held = watched(collection)
    try:
        assert held.loads == 1 and len(held) == 2
        assert held.lookup("a", LAG) == (True, 1)
        assert held.lookup("nobody", LAG) == (True, None)  # known to be absent
        collection.insert_one({"_id": "c", "v": 3})
        collection.update_one({"_id": "a"}, {"$set": {"v": 10}})
        collection.replace_one({"_id": "b"}, {"v": 20})
        collection.delete_one({"_id": "c"})
        collection.insert_one({"_id": "d", "v": "not a number"})  # cannot be decoded
        assert held.wait_current(10)
        assert held.lookup("a", LAG) == (True, 10)
        assert held.lookup("b", LAG) == (True, 20)
        assert held.lookup("c", LAG) == (True, None)
        assert held.lookup("d", LAG) == (True, None)  # not held: the reader's own read decides
        assert held.loads == 1 and held.resumes == 0
    finally:
        held.close()


def test_a_bounded_copy_sends_what_it_does_not_hold_to_the_datastore(collection) -> None:
    collection.insert_many([{"_id": f"k{n}", "v": n} for n in range(3)])
    held = watched(collection, max_entries=2)
    try:
        assert len(held) == 2
        answers = [held.lookup(f"k{n}", LAG) for n in range(3)]
        assert [a for a in answers if a[0]] == [(True, n) for n, a in enumerate(answers) if a[0]]
        assert answers.count((False, None)) == 1  # the one left out is asked of the datastore
        collection.insert_one({"_id": "new", "v": 9})  # no room: not held
        assert held.wait_current(10)
        assert held.lookup("new", LAG) == (False, None) and len(held) == 2
        kept = next(f"k{n}" for n, a in enumerate(answers) if a[0])
        collection.update_one({"_id": kept}, {"$set": {"v": 7}})  # a held one still follows
        assert held.wait_current(10)
        assert held.lookup(kept, LAG) == (True, 7)
    finally:
        held.close()


def test_a_dropped_collection_is_loaded_again(collection) -> None:
    collection.insert_one({"_id": "a", "v": 1})
    held = watched(collection)
    try:
        collection.drop()
        collection.insert_one({"_id": "b", "v": 2})
        wait_until(lambda: held.lookup("b", LAG) == (True, 2), "the document after the drop")
        assert held.lookup("a", LAG) == (True, None)
        assert held.loads >= 2
    finally:
        held.close()


@contextmanager
def followed_on_own_server(
    own_mongodb, server_workdir, **options: Any
) -> Iterator[tuple[Collection[dict[str, Any]], WatchedCollection[int], Callable[[str], None]]]:
    """A collection on the test's own server holding {a: 1}, followed; and restart(storage),
    which stops that server and starts one on the same port with storage under the workdir."""
    port = own_mongodb.port
    client = client_on(port)
    started: list[servers.ServerProcess] = []

    def restart(storage: str) -> None:
        own_mongodb.stop()
        started.append(
            servers.start_mongodb(server_workdir, port=port, storage=str(server_workdir / storage))
        )

    try:
        collection = client.watched.lists
        collection.insert_one({"_id": "a", "v": 1})
        held = watched(collection, **options)
        try:
            yield collection, held, restart
        finally:
            held.close()
    finally:
        client.close()
        for server in started:
            server.stop()


def test_a_server_restart_resumes_the_stream_and_the_copy_is_not_trusted_meanwhile(
    own_mongodb, server_workdir
) -> None:
    with followed_on_own_server(own_mongodb, server_workdir) as (collection, held, restart):
        own_mongodb.stop()
        # Nothing new can be seen while the server is away: the copy stops answering.
        wait_until(lambda: held.lookup("a", LAG) == (False, None), "the copy distrusted", 10)
        restart(f"mongo-{own_mongodb.port}")  # the same storage again
        collection.update_one({"_id": "a"}, {"$set": {"v": 2}})
        collection.insert_one({"_id": "b", "v": 3})
        wait_until(lambda: held.lookup("b", LAG) == (True, 3), "a change after the restart")
        assert held.lookup("a", LAG) == (True, 2)
        # Resumed from its token (by the driver or by the thread), not loaded again.
        assert held.loads == 1


def test_a_server_that_lost_the_streams_history_is_caught_by_the_periodic_load(
    own_mongodb, server_workdir
) -> None:
    with followed_on_own_server(own_mongodb, server_workdir, reload_seconds=3.0) as (
        collection,
        held,
        restart,
    ):
        collection.insert_one({"_id": "b", "v": 2})
        assert held.wait_current(10)
        # Restored elsewhere: same address, other storage, none of the stream's history.
        restart(f"other-{own_mongodb.port}")
        collection.insert_one({"_id": "c", "v": 3})
        wait_until(lambda: held.lookup("c", LAG) == (True, 3), "the restored collection")
        assert held.lookup("a", LAG) == (True, None)  # not in the restored collection
        assert held.loads >= 2
