"""The running bridge on a real RabbitMQ and a real Kafka-protocol broker."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from amqp.exceptions import PreconditionFailed
from kombu import Connection, Exchange

from ssg.contracts.ingress.v1 import events_pb2, proposals_pb2
from ssg.ingress.amqp.topology import EXCHANGE, queue_name
from ssg.ingress.domain.admission import aggregate_id, event_id
from ssg.ingress.domain.catalogue import CATALOGUE
from ssg.platform.events.envelope import unpack_payload

from .helpers import (
    body_of,
    dead_letter_of,
    dead_letters,
    envelopes,
    envelopes_with,
    publish,
    wait_for,
)

# Generous: the module fixtures run rabbitmqctl (an Erlang VM per call) and start two servers.
pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize("routing_key", sorted(CATALOGUE))
def test_a_valid_message_of_every_type_lands_on_kafka_as_an_envelope(
    bridge, vhost, producers, kafka_server, routing_key
):
    external = CATALOGUE[routing_key]
    producer = producers.everything
    body = body_of(routing_key, revision="3")
    trace = uuid.uuid4().hex
    message_id = publish(
        vhost.url(producer), routing_key, body, user_id=producer, headers={"x-trace-id": trace}
    )

    expected_id = event_id(producer, message_id)
    (env,) = wait_for(
        lambda: envelopes_with(kafka_server.bootstrap, external.topic, expected_id),
        f"the {routing_key} envelope on {external.topic}",
    )
    assert env.event_type == external.event_type
    assert env.producer.service == "ingress"
    assert env.trace_id == trace
    assert env.aggregate_id == aggregate_id(producer, routing_key, body["externalId"])
    assert env.aggregate_version == 3
    event: Any = unpack_payload(env, external.event)
    assert event.submission.producer == producer
    assert event.submission.message_id == message_id
    assert event.submission.routing_key == routing_key
    assert event.proposal.external_id == body["externalId"]
    assert getattr(event.proposal, external.record_field).ListFields()


def test_a_binary_protobuf_body_is_accepted(bridge, vhost, producers, kafka_server):
    producer = producers.experts_only
    proposal = proposals_pb2.ExpertProfile(external_id="hr-0042")
    proposal.expert.display_name = "Amina Diallo"
    message_id = publish(
        vhost.url(producer),
        "expert.profile",
        proposal.SerializeToString(),
        user_id=producer,
        content_type="application/x-protobuf",
    )
    topic = CATALOGUE["expert.profile"].topic
    (env,) = wait_for(
        lambda: envelopes_with(kafka_server.bootstrap, topic, event_id(producer, message_id)),
        "the expert envelope",
    )
    event = unpack_payload(env, events_pb2.ExpertProfileProposed)
    assert event.proposal.expert.display_name == "Amina Diallo"
    assert env.aggregate_version == 1


def test_a_repeated_message_id_is_produced_once(bridge, vhost, producers, kafka_server):
    producer = producers.everything
    body = body_of("knowledge.product")
    message_id = uuid.uuid4().hex
    before = bridge.metric("ssg_ingress_duplicates_total", producer=producer)
    for _ in range(3):
        publish(
            vhost.url(producer), "knowledge.product", body, user_id=producer, message_id=message_id
        )
    wait_for(
        lambda: bridge.metric("ssg_ingress_duplicates_total", producer=producer) >= before + 2,
        "two duplicates counted",
    )
    topic = CATALOGUE["knowledge.product"].topic
    assert len(envelopes_with(kafka_server.bootstrap, topic, event_id(producer, message_id))) == 1


CASES = {
    "type_not_allowed": ("experts_only", "solution.proposed", None, "application/json"),
    "unknown_producer": ("stranger", "expert.profile", None, "application/json"),
    "missing_user_id": (None, "expert.profile", None, "application/json"),
    "unknown_type": ("everything", "solution.deleted", None, "application/json"),
    "malformed": (
        "everything",
        "expert.profile",
        b'{"externalId": "x1", "expert": {',
        "application/json",
    ),
    "schema_mismatch": (
        "everything",
        "expert.profile",
        b'{"externalId": "x1", "expert": {"displayName": 42, "sdgs": "many"}}',
        "application/json",
    ),
    "invalid": ("everything", "funding.opportunity", b'{"externalId": "x1"}', "application/json"),
    "too_large": ("everything", "expert.profile", b"{" + b" " * 5000 + b"}", "application/json"),
    "unsupported_content_type": ("everything", "expert.profile", b"<expert/>", "application/xml"),
    # Within the body limit, over the Kafka client's request limit once in an envelope.
    "kafka_refused": (
        "everything",
        "expert.profile",
        json.dumps(
            {"externalId": "x1", "expert": {"displayName": "N", "biography": "b" * 3500}}
        ).encode(),
        "application/json",
    ),
}


@pytest.mark.parametrize("reason", sorted(CASES))
def test_a_bad_message_is_dead_lettered_with_its_reason(bridge, vhost, producers, reason):
    who, routing_key, body, content_type = CASES[reason]
    user = getattr(producers, who) if who else None
    # A message without user_id still comes from some connection: the stranger's here.
    url = vhost.url(user or producers.stranger)
    message_id = publish(
        url,
        routing_key,
        body if body is not None else body_of("expert.profile"),
        user_id=user,
        content_type=content_type,
    )
    headers = wait_for(lambda: dead_letter_of(vhost.url(), message_id), f"the {reason} dead letter")
    assert headers["x-ssg-reason"] == reason
    assert headers["x-ssg-detail"]
    assert headers["x-ssg-routing-key"] == routing_key
    assert headers["x-ssg-producer"] == (user or "")
    assert bridge.process.alive()
    assert bridge.healthy()
    assert bridge.metric("ssg_ingress_messages_rejected_total", reason=reason) >= 1


def test_a_burst_of_good_and_bad_messages_is_settled_whole(bridge, vhost, producers, kafka_server):
    # Acks go out a handled run at a time (ADR 0025): a dead-lettered message in the middle of
    # a run still lands in the dead-letter queue, every valid one lands once, none stays unacked.
    producer = producers.everything
    routing_key = "solution.proposed"
    good: list[str] = []
    bad: list[str] = []
    with Connection(vhost.url(producer), transport_options={"confirm_publish": True}) as conn:
        publisher = conn.Producer()
        for i in range(60):
            message_id = uuid.uuid4().hex
            valid = i % 7 != 3
            body = json.dumps(body_of(routing_key)).encode() if valid else b'{"externalId": '
            publisher.publish(
                body,
                exchange=Exchange(EXCHANGE, "topic", durable=True, no_declare=True),
                routing_key=routing_key,
                content_type="application/json",
                content_encoding="binary",
                user_id=producer,
                message_id=message_id,
                delivery_mode=2,
            )
            (good if valid else bad).append(message_id)
    topic = CATALOGUE[routing_key].topic
    wanted = {event_id(producer, message_id) for message_id in good}

    def landed() -> list[str] | None:
        ids = [env.event_id for env in envelopes(kafka_server.bootstrap, topic)]
        return ids if wanted <= set(ids) else None

    ids = wait_for(landed, "every valid message of the burst on Kafka")
    assert all(ids.count(one) == 1 for one in wanted)

    def dead_lettered() -> list[dict[str, Any]] | None:
        found = {headers["message_id"]: headers for headers, _ in dead_letters(vhost.url())}
        return [found[one] for one in bad] if set(bad) <= set(found) else None

    assert {h["x-ssg-reason"] for h in wait_for(dead_lettered, "the dead letters")} == {"malformed"}
    # Ready plus unacknowledged: the bridge acknowledged the whole burst.
    wait_for(lambda: vhost.queue_depths().get(queue_name(routing_key)) == 0, "the burst all acked")


def test_a_forged_user_id_is_refused_by_the_broker(bridge, vhost, producers):
    # RabbitMQ checks user_id against the connection's user: the bridge never sees the forgery.
    with pytest.raises(PreconditionFailed, match="user_id"):
        publish(
            vhost.url(producers.stranger),
            "solution.proposed",
            body_of("solution.proposed"),
            user_id=producers.everything,
        )
    assert bridge.process.alive()


def test_the_bridge_reconnects_after_its_connection_is_dropped(
    bridge, vhost, producers, kafka_server
):
    assert vhost.close_connections() >= 1
    producer = producers.everything
    message_id = publish(
        vhost.url(producer), "funding.opportunity", body_of("funding.opportunity"), user_id=producer
    )
    topic = CATALOGUE["funding.opportunity"].topic
    wait_for(
        lambda: envelopes_with(kafka_server.bootstrap, topic, event_id(producer, message_id)),
        "the envelope published after the reconnection",
    )
    # The dead-letter publisher's pooled connection was dropped too: it reconnects as well.
    assert vhost.close_connections() >= 1
    refused = publish(
        vhost.url(producers.experts_only),
        "funding.opportunity",
        body_of("funding.opportunity"),
        user_id=producers.experts_only,
    )
    headers = wait_for(lambda: dead_letter_of(vhost.url(), refused), "a dead letter after it")
    assert headers["x-ssg-reason"] == "type_not_allowed"
    assert bridge.process.alive()


def test_the_topology_is_declared(bridge, vhost):
    with Connection(vhost.url()) as connection:
        channel = connection.default_channel
        # Passive declarations fail when the entity does not exist.
        Exchange(EXCHANGE, "topic", channel=channel, passive=True).declare()
        for routing_key in CATALOGUE:
            channel.queue_declare(f"ssg.ingress.{routing_key}", passive=True)
        channel.queue_declare("ssg.ingress.dead-letter", passive=True)
        channel.queue_declare("ssg.ingress.unrouted", passive=True)
