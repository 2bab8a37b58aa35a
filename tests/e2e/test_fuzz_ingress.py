"""A fuzz pass over the AMQP ingress bridge of the session's local stack.

Hypothesis-generated bodies go to every routing key of the ``ssg.ingress`` exchange (and to one
no queue is bound to): JSON of the schema's own messages, JSON of any shape, broken JSON, the
binary protobuf form and random bytes, with assorted content types, message ids and user ids.
The bridge must stay up, and every message must end up either produced to Kafka or
dead-lettered with a reason: published = accepted + dead-lettered, none both.
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from kafka import KafkaConsumer, TopicPartition
from kombu import Connection, Exchange, Queue

from ssg.cli.config import StackConfig, load_stack_config
from ssg.contracts.events.v1 import envelope_pb2
from ssg.ingress.amqp.dead_letters import REASON
from ssg.ingress.amqp.topology import DEAD_LETTER, EXCHANGE, consumed_queues
from ssg.ingress.domain.admission import event_id
from ssg.ingress.domain.catalogue import CATALOGUE
from ssg.testing.liveness import start_time
from ssg.testing.protobuf import messages
from ssg.testing.rabbitmq import rabbitmqctl

from .conftest import LocalStack

MESSAGES = 150  # published in one run, spread over every routing key
PRODUCER = "guest"  # the stack's RabbitMQ user, allowed every type (deploy/local/ports.toml)
RUN_HEADER = "x-fuzz-run"
SEQ_HEADER = "x-fuzz-seq"
UNROUTED_KEY = "fuzz.no-such-type"
CONTENT_TYPES = (
    "application/json",
    "application/json; charset=utf-8",
    "application/x-protobuf",
    "text/plain",
    None,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=10,
)


@st.composite
def bodies(draw: st.DrawFn, routing_key: str) -> tuple[bytes, str | None]:
    """A body for routing_key and its content type: valid-ish or broken."""
    external = CATALOGUE.get(routing_key)
    kind = draw(st.sampled_from(["schema-json", "schema-binary", "any-json", "broken", "bytes"]))
    if external is not None and kind.startswith("schema"):
        body = draw(messages(external.body, max_depth=3))
        if draw(st.booleans()):
            # Valid ids and required fields set: many of these are admitted.
            body.external_id = f"fuzz-{draw(st.integers(0, 10**6))}"  # type: ignore[attr-defined]
            record = getattr(body, external.record_field)
            for name in external.required:
                setattr(record, name, draw(st.sampled_from(["Solar pumps", "x", "0f" * 16])))
        if kind == "schema-json":
            try:
                return json_format.MessageToJson(body).encode(), "application/json"
            except json_format.SerializeToJsonError:
                pass  # e.g. a Timestamp out of range has no JSON form: send it as binary
        return body.SerializeToString(), "application/x-protobuf"
    if kind == "any-json":
        return json.dumps(draw(json_values)).encode(), draw(st.sampled_from(CONTENT_TYPES))
    if kind == "broken":
        text = json.dumps(draw(json_values))
        cut = draw(st.integers(0, max(len(text) - 1, 0)))
        return text[:cut].encode() + b"\xff", "application/json"
    return draw(st.binary(max_size=300)), draw(st.sampled_from(CONTENT_TYPES))


@dataclass(frozen=True)
class Published:
    """One message as sent."""

    seq: int
    routing_key: str
    message_id: str | None
    user_id: str | None


@st.composite
def envelopes_to_send(draw: st.DrawFn) -> tuple[str, bytes, str | None, str | None, bool]:
    """(routing key, body, content type, message id kind, with user id)."""
    routing_key = draw(st.sampled_from([*CATALOGUE, UNROUTED_KEY]))
    body, content_type = draw(bodies(routing_key))
    id_kind = draw(st.sampled_from(["valid", "valid", "valid", "missing", "malformed"]))
    return routing_key, body, content_type, id_kind, draw(st.integers(0, 9)) > 0


@dataclass
class Outcomes:
    """What became of the run's messages, by sequence number."""

    accepted: set[int] = field(default_factory=set)
    dead: dict[int, str] = field(default_factory=dict)  # seq -> reason header


def generated(count: int) -> list[tuple[str, bytes, str | None, str | None, bool]]:
    """count messages to publish, the same on every run."""
    found: list[tuple[str, bytes, str | None, str | None, bool]] = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=list(HealthCheck),
    )
    @given(envelopes_to_send())
    def collect(item: tuple[str, bytes, str | None, str | None, bool]) -> None:
        found.append(item)

    collect()
    return found[:count]


def publish_all(amqp_url: str, run: str, items: list[Any]) -> list[Published]:
    """Publish items to the ingress exchange; what was sent."""
    sent: list[Published] = []
    exchange = Exchange(EXCHANGE, "topic", no_declare=True)
    with Connection(amqp_url) as connection:
        producer = connection.Producer()
        for seq, (routing_key, body, content_type, id_kind, with_user) in enumerate(items):
            message_id = {
                "valid": f"fuzz-{run}-{seq}",
                "missing": None,
                "malformed": f"fuzz {run}/{seq} \u00e9",
            }[id_kind]
            properties: dict[str, Any] = {"message_id": message_id} if message_id else {}
            if with_user:
                properties["user_id"] = PRODUCER  # RabbitMQ refuses any other user id
            producer.publish(
                body,
                exchange=exchange,
                routing_key=routing_key,
                content_type=content_type or "",
                content_encoding="binary",
                headers={RUN_HEADER: run, SEQ_HEADER: seq},
                **properties,
            )
            user = PRODUCER if with_user else None
            sent.append(Published(seq, routing_key, message_id, user))
    return sent


@pytest.fixture
def dead_letter_tap(local_stack: LocalStack) -> Iterator[tuple[StackConfig, str]]:
    """A queue of the test's own bound to the dead-letter exchange (fanout: a copy of each)."""
    config = load_stack_config(local_stack.ports_file)
    name = f"fuzz-dead-letters-{uuid.uuid4().hex[:8]}"
    with Connection(config.amqp_url) as connection:
        queue = Queue(name, Exchange(DEAD_LETTER, "fanout", passive=True), auto_delete=False)
        queue(connection.default_channel).declare()
        try:
            yield config, name
        finally:
            queue(connection.default_channel).delete()


def drain_dead_letters(amqp_url: str, queue: str, run: str, outcomes: Outcomes) -> None:
    """Move the run's dead-lettered copies from queue into outcomes."""
    with Connection(amqp_url) as connection:
        simple = connection.SimpleQueue(Queue(queue, no_declare=True))
        try:
            while True:
                try:
                    message = simple.get(block=False)
                except simple.Empty:
                    return
                headers = message.headers or {}
                if headers.get(RUN_HEADER) == run:
                    outcomes.dead[int(headers[SEQ_HEADER])] = str(headers.get(REASON, ""))
                message.ack()
        finally:
            simple.close()


def read_accepted(consumer: KafkaConsumer, wanted: dict[str, int], outcomes: Outcomes) -> None:
    """Record the run's envelopes (known by their event ids) that reached Kafka so far."""
    for records in consumer.poll(timeout_ms=500, max_records=5000).values():
        for record in records:
            envelope = envelope_pb2.Envelope.FromString(record.value)
            if (seq := wanted.get(envelope.event_id)) is not None:
                outcomes.accepted.add(seq)


def vhost_of(amqp_url: str) -> str:
    """The vhost an AMQP URL names (``//`` is the default vhost ``/``)."""
    return unquote(urlsplit(amqp_url).path[1:]) or "/"


def ingress_consumers(amqp_url: str) -> dict[str, int]:
    """Consumers of each queue the bridge reads, in the stack's vhost."""
    listed = rabbitmqctl("list_queues", "-p", vhost_of(amqp_url), "name", "consumers")
    counts = dict(line.rsplit("\t", 1) for line in listed.splitlines() if "\t" in line)
    return {q.name: int(counts.get(q.name, 0)) for q in consumed_queues()}


def bridge_port(config: StackConfig) -> int:
    """The bridge's metrics (and /healthz) port."""
    return next(e.metrics_port for e in config.services if e.name == "ingress")


def bridge_healthy(config: StackConfig) -> bool:
    """True when the bridge's /healthz answers 200."""
    port = bridge_port(config)
    try:
        with urllib.request.urlopen(f"http://{config.host}:{port}/healthz", timeout=2) as reply:
            return int(reply.status) == 200
    except OSError:
        return False


@pytest.mark.timeout(900)  # includes starting the stack when this test runs alone
def test_every_fuzzed_ingress_message_is_produced_or_dead_lettered(
    dead_letter_tap: tuple[StackConfig, str],
) -> None:
    config, tap = dead_letter_tap
    assert bridge_healthy(config)
    # Counting needs the stack's bridge to be the only reader: a bridge of another stack on the
    # same vhost would take messages to its own Kafka.
    sharing = {q: n for q, n in ingress_consumers(config.amqp_url).items() if n != 1}
    assert not sharing, f"the stack's bridge is not the only consumer of its queues: {sharing}"
    started = start_time(config.host, bridge_port(config))
    run = uuid.uuid4().hex[:12]
    items = generated(MESSAGES)
    assert {item[0] for item in items} == {*CATALOGUE, UNROUTED_KEY}

    topics = sorted({t.topic for t in CATALOGUE.values()})
    consumer = KafkaConsumer(bootstrap_servers=config.kafka_bootstrap, enable_auto_commit=False)
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning()  # the local broker's end offsets are unreliable (DESIGN.md)
        sent = publish_all(config.amqp_url, run, items)
        wanted = {event_id(PRODUCER, p.message_id): p.seq for p in sent if p.message_id}
        outcomes = Outcomes()
        deadline = time.monotonic() + 120
        while len(outcomes.accepted) + len(outcomes.dead) < len(sent):
            if time.monotonic() > deadline:
                seen = outcomes.accepted | outcomes.dead.keys()
                lost = [p for p in sent if p.seq not in seen]
                raise AssertionError(
                    f"after 120 s: {len(outcomes.accepted)} accepted + {len(outcomes.dead)} "
                    f"dead-lettered of {len(sent)} published; neither: {lost[:10]}; "
                    f"consumers now: {ingress_consumers(config.amqp_url)}"
                )
            read_accepted(consumer, wanted, outcomes)
            drain_dead_letters(config.amqp_url, tap, run, outcomes)
    finally:
        consumer.close()

    print(
        f"ingress fuzz: {len(sent)} published = {len(outcomes.accepted)} accepted + "
        f"{len(outcomes.dead)} dead-lettered; reasons {sorted(set(outcomes.dead.values()))}"
    )
    assert not outcomes.accepted & outcomes.dead.keys(), "a message was both produced and parked"
    assert len(outcomes.accepted) + len(outcomes.dead) == len(sent)
    assert all(outcomes.dead.values()), "a dead-lettered copy has no reason header"
    assert "internal_error" not in outcomes.dead.values(), "the bridge failed on a message"
    # The fuzz must exercise both sides.
    assert outcomes.accepted and outcomes.dead
    unrouted = {p.seq for p in sent if p.routing_key == UNROUTED_KEY}
    assert unrouted <= outcomes.dead.keys()
    assert bridge_healthy(config)
    assert start_time(config.host, bridge_port(config)) == started, "the bridge restarted"
