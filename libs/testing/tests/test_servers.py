"""The fixtures start real servers that answer their protocols."""

from __future__ import annotations

import json
import threading
import urllib.request
from pathlib import Path
from typing import Any

import pymongo
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from ssg.testing.fixtures import KafkaServer, MongoServer
from ssg.testing.servers import (
    ServerProcess,
    free_port,
    mongodb_uri,
    port_open,
    start_mongodb,
    wait_until,
)


async def test_kafka_round_trip(kafka_server: KafkaServer, unique_name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_server.bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(unique_name, num_partitions=1, replication_factor=1)])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_server.bootstrap)
    await producer.start()
    await producer.send_and_wait(unique_name, b"hello", key=b"k")
    await producer.stop()
    consumer = AIOKafkaConsumer(
        unique_name, bootstrap_servers=kafka_server.bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=10_000)
        values = [m.value for msgs in batch.values() for m in msgs]
    finally:
        await consumer.stop()
    assert values == [b"hello"]


def test_mongodb_transaction_and_unique_index(
    mongodb_server: MongoServer, unique_name: str
) -> None:
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
        mongodb_server.uri(unique_name)
    )
    coll = client[unique_name]["things"]
    coll.create_index("key", unique=True)
    with client.start_session() as session, session.start_transaction():
        coll.insert_one({"key": 1}, session=session)
    assert coll.count_documents({}) == 1
    try:
        coll.insert_one({"key": 1})
        raised = False
    except pymongo.errors.DuplicateKeyError:
        raised = True
    assert raised
    client.drop_database(unique_name)
    client.close()


def test_opensearch_answers(opensearch_url: str, unique_name: str) -> None:
    req = urllib.request.Request(
        f"{opensearch_url}/{unique_name}/_doc/1?refresh=true",
        data=json.dumps({"title": "water harvesting"}).encode(),
        headers={"Content-Type": "application/json"},
        method="PUT",
    )
    with urllib.request.urlopen(req) as resp:
        assert resp.status in (200, 201)
    with urllib.request.urlopen(f"{opensearch_url}/{unique_name}/_doc/1") as resp:
        assert json.load(resp)["_source"]["title"] == "water harvesting"


def test_own_mongodb_can_be_stopped(own_mongodb: ServerProcess) -> None:
    assert port_open(own_mongodb.port)
    own_mongodb.stop()
    assert not own_mongodb.alive()
    assert not port_open(own_mongodb.port)


def test_rabbitmq_reachable(amqp_url: str) -> None:
    assert amqp_url.startswith("amqp://")
    assert port_open(5672)


def test_durable_commits_survive_sigkill(tmp_path: Path) -> None:
    # Transactions committed as fast as one client can while the server is killed and
    # restarted on the same storage: every commit it acknowledged must still be there. Without
    # durable commits the stand-in lost 10-15 acknowledged commits per kill here.
    mongo = DurableMongo(tmp_path)
    client = mongo.client()
    things = client["durable"]["things"]
    acknowledged: list[int] = []
    stop = threading.Event()

    def commit_until_stopped() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                with client.start_session() as session, session.start_transaction():
                    things.insert_one({"_id": n}, session=session)
            except pymongo.errors.PyMongoError:
                continue  # not acknowledged: it may or may not be stored
            acknowledged.append(n)

    writer = threading.Thread(target=commit_until_stopped)
    writer.start()
    try:
        for _ in range(2):
            fifty_more(acknowledged)
            mongo.crash_and_restart()
        fifty_more(acknowledged)
    finally:
        stop.set()
        writer.join(30)
        stored = {doc["_id"] for doc in things.find({}, {"_id": 1})}
        client.close()
        mongo.server.stop()
    assert len(acknowledged) > 100
    assert set(acknowledged) <= stored, sorted(set(acknowledged) - stored)[:20]


def fifty_more(acknowledged: list[int]) -> None:
    """Wait until 50 more commits than now were acknowledged."""
    wanted = len(acknowledged) + 50
    wait_until(lambda: len(acknowledged) >= wanted, 30.0, "50 more acknowledged commits")


def test_a_change_stream_resumes_across_a_sigkill_with_durable_commits(tmp_path: Path) -> None:
    # The outbox relays resume from a stored token after the database restarts; without durable
    # commits the stand-in's resumed stream yielded nothing here, not even later inserts.
    mongo = DurableMongo(tmp_path)
    client = mongo.client()
    rows = client["durable"]["rows"]
    try:
        rows.insert_one({"_id": 0})
        with rows.watch() as stream:
            rows.insert_many([{"_id": n} for n in range(1, 6)])
            assert [_key(stream.next()) for _ in range(2)] == [1, 2]
            token = stream.resume_token
        mongo.crash_and_restart()
        rows.insert_many([{"_id": n} for n in range(6, 8)])
        seen: list[object] = []
        with rows.watch(resume_after=token, max_await_time_ms=200) as resumed:
            while (change := resumed.try_next()) is not None:
                seen.append(_key(change))
    finally:
        client.close()
        mongo.server.stop()
    assert seen == [3, 4, 5, 6, 7]


def _key(change: dict[str, Any]) -> object:
    """The _id of the document a change is about."""
    return change["documentKey"]["_id"]


class DurableMongo:
    """A SecantusDB of the test's own, with durable commits, that it can crash and restart."""

    def __init__(self, workdir: Path) -> None:
        self.workdir, self.port, self.storage = workdir, free_port(), str(workdir / "store")
        self.server = self._start()

    def _start(self) -> ServerProcess:
        return start_mongodb(self.workdir, self.port, self.storage, durable_commits=True)

    def crash_and_restart(self) -> None:
        """SIGKILL the server, then start it again on the same storage and port."""
        self.server.kill()
        self.server = self._start()

    def client(self) -> pymongo.MongoClient[dict[str, Any]]:
        """A client that waits out a restart."""
        return pymongo.MongoClient(
            mongodb_uri(self.port, "durable"), serverSelectionTimeoutMS=10_000
        )
