"""Talk to a running bridge the way its users do: publish over AMQP, read Kafka and the DLQ."""

from __future__ import annotations

import json
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from kafka import KafkaConsumer, TopicPartition
from kombu import Connection, Exchange, Queue

from ssg.contracts.events.v1 import envelope_pb2
from ssg.ingress.amqp.topology import DEAD_LETTER, EXCHANGE
from ssg.platform.events.envelope import parse_envelope
from ssg.testing import servers

T = TypeVar("T")

# Valid bodies of every type (JSON mapping), the record fields each type requires.
VALID_BODIES: dict[str, dict[str, Any]] = {
    "solution.proposed": {
        "solution": {
            "title": "Solar water pumps for smallholders",
            "summary": "Farmer groups share solar pumps and a maintenance fund.",
            "organizationId": "0f5b0d8e3c6a4d1e9b2f7a8c6d5e4f3a",
            "sdgs": ["SDG_CLEAN_WATER_AND_SANITATION"],
            "implementingCountries": ["KEN"],
        },
    },
    "organization.proposed": {
        "organization": {"name": "Lakeside Water Alliance", "headquartersCountry": "KEN"}
    },
    "expert.profile": {"expert": {"displayName": "Nadia Osei", "expertiseAreas": ["solar"]}},
    "funding.opportunity": {"fundingOpportunity": {"title": "Water innovation call 2027"}},
    "knowledge.product": {"knowledgeProduct": {"title": "Solar pumping: a field guide"}},
}


def body_of(routing_key: str, external_id: str | None = None, **extra: Any) -> dict[str, Any]:
    """A valid JSON body of a type with a fresh external id."""
    return {
        "externalId": external_id or f"ext-{uuid.uuid4().hex[:12]}",
        **VALID_BODIES[routing_key],
        **extra,
    }


def wait_for(predicate: Callable[[], T | None], what: str, within: float = 30.0) -> T:
    """Poll predicate until it returns a truthy value; AssertionError naming what after within s."""
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:g}s waiting for {what}")
        time.sleep(0.1)


@dataclass
class Bridge:
    """A ``python -m ssg.ingress`` process of the test's own."""

    process: servers.ServerProcess
    metrics_port: int

    def metrics(self) -> str:
        """The /metrics page."""
        url = f"http://{servers.LOOPBACK}:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=2) as response:
            return str(response.read().decode())

    def metric(self, name: str, **labels: str) -> float:
        """The value of one sample (0 when absent)."""
        for line in self.metrics().splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            if all(f'{key}="{value}"' in line for key, value in labels.items()):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def healthy(self) -> bool:
        """True when /healthz answers 200."""
        try:
            url = f"http://{servers.LOOPBACK}:{self.metrics_port}/healthz"
            with urllib.request.urlopen(url, timeout=2) as response:
                return int(response.status) == 200
        except OSError:
            return False


def start_bridge(
    workdir: Path,
    amqp_url: str,
    kafka_bootstrap: str,
    producers: dict[str, list[str]],
    **settings: str,
) -> Bridge:
    """Start the bridge with SSG_* settings and wait until it is healthy."""
    port = servers.free_port()
    env = {
        "SSG_AMQP_URL": amqp_url,
        "SSG_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "SSG_KAFKA_LOCAL_PROFILE": "true",
        "SSG_PRODUCERS": json.dumps(producers),
        "SSG_METRICS_PORT": str(port),
        "SSG_INSTANCE_ID": f"test-bridge-{port}",
        "SSG_KAFKA_TIMEOUT_SECONDS": "2",
        "SSG_REQUEUE_DELAY_SECONDS": "0.2",
        "SSG_TOPIC_PARTITIONS": "2",
        **{f"SSG_{key.upper()}": value for key, value in settings.items()},
    }
    # `env` execs the interpreter, so the process id stays the bridge's own.
    argv = ["env", *(f"{k}={v}" for k, v in env.items()), sys.executable, "-m", "ssg.ingress"]
    process = servers.ServerProcess(f"ingress-{port}", argv, port, workdir)
    bridge = Bridge(process, port)
    process.start(bridge.healthy, timeout=60)
    return bridge


@contextmanager
def running_bridge(*args: Any, **kwargs: Any) -> Iterator[Bridge]:
    """start_bridge, stopped (SIGTERM) at the end."""
    bridge = start_bridge(*args, **kwargs)
    try:
        yield bridge
    finally:
        bridge.process.stop()


def publish(
    amqp_url: str,
    routing_key: str,
    body: bytes | dict[str, Any],
    *,
    user_id: str | None,
    message_id: str | None = None,
    content_type: str = "application/json",
    headers: dict[str, Any] | None = None,
) -> str:
    """Publish one message to the ingress exchange with publisher confirms; its message id."""
    message_id = message_id or uuid.uuid4().hex
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    properties: dict[str, Any] = {"message_id": message_id}
    if user_id is not None:
        properties["user_id"] = user_id
    with Connection(amqp_url, transport_options={"confirm_publish": True}) as connection:
        producer = connection.Producer()
        producer.publish(
            data,
            exchange=Exchange(EXCHANGE, "topic", durable=True, no_declare=True),
            routing_key=routing_key,
            content_type=content_type,
            content_encoding="binary",
            headers=headers or {},
            delivery_mode=2,
            **properties,
        )
    return message_id


def dead_letters(amqp_url: str) -> list[tuple[dict[str, Any], bytes]]:
    """Every message in the dead-letter queue as (headers + message_id, body), left in place."""
    found: list[tuple[dict[str, Any], bytes]] = []
    with Connection(amqp_url) as connection:
        queue = Queue(DEAD_LETTER, no_declare=True)(connection.default_channel)
        fetched = []
        while (message := queue.get(no_ack=False)) is not None:
            fetched.append(message)
            found.append(
                (
                    {**message.headers, "message_id": message.properties.get("message_id")},
                    message.body,
                )
            )
        for message in fetched:
            message.requeue()
    return found


def dead_letter_of(amqp_url: str, message_id: str) -> dict[str, Any] | None:
    """The headers of the dead-lettered copy of message_id, or None."""
    for headers, _ in dead_letters(amqp_url):
        if headers.get("message_id") == message_id:
            return headers
    return None


def envelopes(bootstrap: str, topic: str) -> list[envelope_pb2.Envelope]:
    """Every envelope on topic, from the beginning."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, p) for p in partitions]
        if not assigned:
            return []
        consumer.assign(assigned)
        consumer.seek_to_beginning()
        out: list[envelope_pb2.Envelope] = []
        while True:
            batch = consumer.poll(timeout_ms=500)
            if not batch:
                return out
            for records in batch.values():
                out.extend(parse_envelope(record.value) for record in records)
    finally:
        consumer.close()


def envelopes_with(bootstrap: str, topic: str, event_id: str) -> list[envelope_pb2.Envelope]:
    """The envelopes on topic carrying event_id."""
    return [env for env in envelopes(bootstrap, topic) if env.event_id == event_id]
