"""Kafka down, the bridge killed mid-message, Kafka back: the message is kept and lands once."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from kombu import Connection

from ssg.ingress.amqp.topology import queue_name
from ssg.ingress.domain.admission import event_id
from ssg.ingress.domain.catalogue import CATALOGUE
from ssg.testing import servers
from ssg.testing.rabbitmq import temporary_vhost

from .helpers import body_of, dead_letter_of, envelopes_with, publish, start_bridge, wait_for

pytestmark = pytest.mark.timeout(240)
ROUTING_KEY = "solution.proposed"
TOPIC = CATALOGUE[ROUTING_KEY].topic


def ready_in_queue(amqp_url: str) -> int:
    """Messages waiting (not held by a consumer) in the solution queue."""
    with Connection(amqp_url) as connection:
        declared = connection.default_channel.queue_declare(queue_name(ROUTING_KEY), passive=True)
        return int(declared.message_count)


def test_a_message_survives_kafka_down_and_a_killed_bridge_and_lands_once(
    server_workdir: Path, amqp_url: str
):
    port = servers.free_port()
    bootstrap = f"{servers.LOOPBACK}:{port}"
    kafka = servers.start_kafka(server_workdir, port)
    bridges: list[servers.ServerProcess] = []
    try:
        with temporary_vhost(amqp_url, "ssg-test-ingress-faults") as vhost:
            producer = vhost.add_user("t-pm-system")
            config = {producer: [ROUTING_KEY]}
            bridge = start_bridge(server_workdir, vhost.url(), bootstrap, config)
            bridges.append(bridge.process)
            first = publish(
                vhost.url(producer), ROUTING_KEY, body_of(ROUTING_KEY), user_id=producer
            )
            wait_for(lambda: envelopes_with(bootstrap, TOPIC, event_id(producer, first)), "warm-up")

            kafka.stop()
            message_id = publish(
                vhost.url(producer), ROUTING_KEY, body_of(ROUTING_KEY), user_id=producer
            )
            # The bridge tried, Kafka did not answer, the message went back (and again).
            wait_for(
                lambda: bridge.metric("ssg_ingress_messages_requeued_total", cause="kafka") >= 2,
                "the message put back while Kafka is down",
            )
            assert not bridge.healthy()
            assert dead_letter_of(vhost.url(), message_id) is None

            bridge.process.kill()  # SIGKILL, possibly with the message in hand
            assert wait_for(
                lambda: ready_in_queue(vhost.url()) == 1, "the message back in its queue"
            )

            kafka = servers.start_kafka(server_workdir, port)  # empty: a memory broker
            again = start_bridge(server_workdir, vhost.url(), bootstrap, config)
            bridges.append(again.process)
            landed = wait_for(
                lambda: envelopes_with(bootstrap, TOPIC, event_id(producer, message_id)),
                "the message on Kafka after the restart",
            )
            assert len(landed) == 1
            wait_for(lambda: ready_in_queue(vhost.url()) == 0, "the queue drained")
            # Delivered as the bridge started consuming, and acknowledged (not just held).
            wait_for(
                lambda: vhost.queue_depths().get(queue_name(ROUTING_KEY)) == 0,
                "the message acknowledged",
            )
            assert again.metric("ssg_ingress_messages_accepted_total", producer=producer) == 1
    finally:
        for process in bridges:
            process.stop()
        kafka.stop()


def test_sigterm_stops_the_bridge_cleanly(server_workdir: Path, amqp_url: str, kafka_server):
    with temporary_vhost(amqp_url, "ssg-test-ingress-stop") as vhost:
        producer = vhost.add_user("t-pm-system")
        bridge = start_bridge(
            server_workdir, vhost.url(), kafka_server.bootstrap, {producer: [ROUTING_KEY]}
        )
        message_id = publish(
            vhost.url(producer), ROUTING_KEY, body_of(ROUTING_KEY), user_id=producer
        )
        wait_for(
            lambda: envelopes_with(kafka_server.bootstrap, TOPIC, event_id(producer, message_id)),
            "a message forwarded before the stop",
        )
        process = bridge.process.process
        assert process is not None
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0
        # Nothing was left unacknowledged: the queue is empty once the bridge is gone.
        assert ready_in_queue(vhost.url()) == 0
