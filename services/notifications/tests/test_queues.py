"""The delivery queues' topology: classic locally, quorum (replicated) in Kubernetes, where the
TTL delay queues must still dead-letter back to the task queue, and at least once (ADR 0041)."""

from __future__ import annotations

import time
import uuid

import pytest
from kombu import Connection, Producer

from ssg.notifications.queues import QUORUM_DELIVERY_LIMIT, Topology
from ssg.testing.rabbitmq import temporary_vhost


def test_classic_declares_the_arguments_it_always_did() -> None:
    topology = Topology("t", (100,))
    assert topology.arguments("t.tasks") == {} == topology.arguments("t.dlq")
    assert topology.arguments("t.retry.100") == {
        "x-message-ttl": 100,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "t.tasks",
    }


def test_quorum_dead_letters_at_least_once_and_never_drops_a_redelivered_task() -> None:
    topology = Topology("t", (100, 400), "quorum")
    # kombu's Queue carries what is declared (its stubs do not name the attribute).
    declared = {q.name: getattr(q, "queue_arguments") for q in topology.queues()}  # noqa: B009
    assert declared == {name: topology.arguments(name) for name in declared}
    types = {name: arguments["x-queue-type"] for name, arguments in declared.items()}
    assert types == dict.fromkeys(
        ["t.tasks", "t.results", "t.dlq", "t.retry.100", "t.retry.400"], "quorum"
    )
    retry = topology.arguments("t.retry.400")
    assert retry["x-message-ttl"] == 400 and retry["x-dead-letter-routing-key"] == "t.tasks"
    for name, target in (("t.retry.100", "t.tasks"), ("t.tasks", "t.dlq"), ("t.results", "t.dlq")):
        args = topology.arguments(name)
        # at-least-once dead-lettering is only accepted together with reject-publish overflow
        assert args["x-dead-letter-strategy"] == "at-least-once", name
        assert args["x-overflow"] == "reject-publish", name
        assert args["x-dead-letter-routing-key"] == target, name
    assert topology.arguments("t.tasks")["x-delivery-limit"] == QUORUM_DELIVERY_LIMIT
    assert "x-dead-letter-exchange" not in topology.arguments("t.dlq")


def test_an_unknown_queue_type_is_refused() -> None:
    with pytest.raises(ValueError, match="queue type"):
        Topology("t", (100,), "stream")


def test_on_a_real_broker_a_quorum_retry_expires_into_the_quorum_task_queue(
    amqp_url: str,
) -> None:
    topology = Topology(f"q-{uuid.uuid4().hex[:8]}", (200,), "quorum")
    with temporary_vhost(amqp_url, "ssg-test-quorum") as vhost, Connection(vhost.url()) as conn:
        topology.declare(conn)
        topology.declare(conn)  # every process declares on start: the same arguments again
        channel = conn.default_channel
        # A consumer declares its queue too: it must match the quorum arguments.
        topology.queue(topology.tasks).bind(channel).declare()
        Producer(channel).publish(
            {"delivery_id": "d1"},
            exchange="",
            routing_key=topology.retry(200),
            serializer="json",
            delivery_mode=2,
        )
        tasks = topology.queue(topology.tasks).bind(channel)
        deadline = time.monotonic() + 10  # the TTL is 0.2 s; a loaded machine is slower
        message = tasks.get(no_ack=True)
        while message is None and time.monotonic() < deadline:
            time.sleep(0.1)  # basic.get has no wait of its own
            message = tasks.get(no_ack=True)
        assert message is not None and message.payload == {"delivery_id": "d1"}
        death = message.headers["x-death"][0]
        assert (death["queue"], death["reason"]) == (topology.retry(200), "expired")
