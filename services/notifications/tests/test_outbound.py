"""The delivery process's publisher on the real RabbitMQ: messages sent by many green workers at
once are each confirmed and land persistent, with their headers; a message the broker refuses
raises in its own sender only; a closed connection is opened again."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import eventlet
import pytest
from kombu import Connection

from ssg.notifications.delivery.service import Outbound, OutboundRefused
from ssg.notifications.queues import Topology


@pytest.fixture
def outbound(amqp_url: str) -> Iterator[Outbound]:
    topology = Topology(f"test.outbound.{uuid.uuid4().hex[:8]}", (100,))
    publisher = Outbound(amqp_url, topology, timeout=5)
    runner = eventlet.spawn(publisher.run)
    yield publisher
    runner.kill()
    publisher.close()
    with Connection(amqp_url) as conn:
        for name in [*topology.names(), f"{topology.prefix}.full"]:
            conn.default_channel.queue_delete(name)


def drain(amqp_url: str, queue: str) -> list[Any]:
    """Every message in queue (acknowledged)."""
    out = []
    with Connection(amqp_url) as conn:
        channel = conn.default_channel
        while (message := channel.basic_get(queue, no_ack=True)) is not None:
            out.append(message)
    return out


def test_concurrent_sends_are_each_confirmed_and_persistent(outbound: Outbound, amqp_url: str):
    results = outbound.topology.results
    pool = eventlet.GreenPool(25)
    list(pool.imap(lambda n: outbound.send(results, {"n": n}, reason=f"r{n}"), range(60)))
    got = drain(amqp_url, results)
    assert sorted(m.headers["reason"] for m in got) == sorted(f"r{n}" for n in range(60))
    assert sorted(json.loads(m.body)["n"] for m in got) == list(range(60))
    assert {m.properties["delivery_mode"] for m in got} == {2}
    assert {m.properties["content_type"] for m in got} == {"application/json"}


def test_a_refused_message_raises_in_its_sender_only(outbound: Outbound, amqp_url: str):
    full = f"{outbound.topology.prefix}.full"
    with Connection(amqp_url) as conn:
        conn.default_channel.queue_declare(
            full, durable=True, arguments={"x-max-length": 1, "x-overflow": "reject-publish"}
        )
    outbound.send(full, {"n": 1})
    with pytest.raises(OutboundRefused):
        outbound.send(full, {"n": 2})
    outbound.send(outbound.topology.dlq, {"n": 3})
    assert [json.loads(m.body) for m in drain(amqp_url, full)] == [{"n": 1}]
    assert [json.loads(m.body) for m in drain(amqp_url, outbound.topology.dlq)] == [{"n": 3}]


def test_a_closed_connection_is_opened_again(outbound: Outbound, amqp_url: str):
    outbound.send(outbound.topology.results, {"n": 1})
    outbound.close()
    outbound.send(outbound.topology.results, {"n": 2})
    assert len(drain(amqp_url, outbound.topology.results)) == 2


def test_stop_publishes_what_was_queued_then_ends(amqp_url: str):
    topology = Topology(f"test.outbound.{uuid.uuid4().hex[:8]}", (100,))
    publisher = Outbound(amqp_url, topology, timeout=5)
    runner = eventlet.spawn(publisher.run)
    try:
        senders = [eventlet.spawn(publisher.send, topology.results, {"n": n}) for n in range(5)]
        eventlet.sleep(0)  # the senders have queued their messages
        publisher.stop()
        for sender in senders:
            sender.wait()
        runner.wait()  # returns: the green thread has ended
        assert runner.dead
        assert len(drain(amqp_url, topology.results)) == 5
    finally:
        runner.kill()
        with Connection(amqp_url) as conn:
            for name in topology.names():
                conn.default_channel.queue_delete(name)


def test_combined_sends_travel_as_lists_and_each_is_confirmed(outbound: Outbound, amqp_url: str):
    results, dlq = outbound.topology.results, outbound.topology.dlq
    pool = eventlet.GreenPool(30)
    senders = [pool.spawn(outbound.send, results, {"n": n}, combine=True) for n in range(30)]
    senders.append(pool.spawn(outbound.send, dlq, {"n": "alone"}, reason="r"))
    for sender in senders:
        sender.wait()
    bodies = [json.loads(m.body) for m in drain(amqp_url, results)]
    assert all(isinstance(body, list) for body in bodies)
    assert sorted(item["n"] for body in bodies for item in body) == list(range(30))
    (alone,) = drain(amqp_url, dlq)
    assert json.loads(alone.body) == {"n": "alone"} and alone.headers == {"reason": "r"}
