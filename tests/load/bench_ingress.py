"""Benchmark: the ingress bridge (one process) moving AMQP messages to Kafka, beside a bare
kombu consume + kafka-python produce loop of the same messages, same broker, one run.

Throughput: N messages are queued first, then drained; the rate is measured between the first
and the last Kafka record's timestamp (the producer's create time), for both sides alike.
Latency: messages published at a steady rate while the bridge runs; end-to-end = Kafka record
timestamp - the moment the publisher handed the message to RabbitMQ.

``await run()`` returns a markdown section; ``python tests/load/bench_ingress.py`` prints it.
Starts its own Kafka-protocol broker and uses a throw-away vhost on the machine's RabbitMQ.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kombu import Connection, Exchange, Queue

from ssg.contracts.ingress.v1 import events_pb2
from ssg.ingress.amqp import topology
from ssg.ingress.domain.catalogue import CATALOGUE
from ssg.ingress.events.kafka_sink import ensure_topics, producer_config
from ssg.ingress.settings import IngressSettings
from ssg.platform.events.envelope import parse_envelope, unpack_payload
from ssg.platform.settings import load_settings
from ssg.testing import servers
from ssg.testing.rabbitmq import temporary_vhost

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "services" / "ingress"))
from tests.helpers import body_of, start_bridge

GOAL_RATIO = 0.7
ROUTING_KEY = "solution.proposed"
TOPIC = CATALOGUE[ROUTING_KEY].topic
# Bare loops, each with its own queue and topic (same names), by Kafka client.
BARE = {"confluent-kafka": "bench.bare-ck-events.v1", "kafka-python": "bench.bare-kp-events.v1"}
# The bridge's default worker count unless BENCH_INGRESS_WORKERS says otherwise.
WORKERS = (
    int(os.environ.get("BENCH_INGRESS_WORKERS", "0"))
    or IngressSettings.model_fields["max_workers"].default
)


def _bodies(n: int) -> list[bytes]:
    return [json.dumps(body_of(ROUTING_KEY)).encode() for _ in range(n)]


def _publish(
    url: str,
    user: str,
    routing_key: str,
    bodies: list[bytes],
    exchange: Exchange,
    rate: float = 0.0,
) -> dict[str, float]:
    """Publish bodies (paced at rate/s when rate > 0); message id -> time handed over."""
    sent: dict[str, float] = {}
    with Connection(url, transport_options={"confirm_publish": True}) as connection:
        producer = connection.Producer()
        started = time.monotonic()
        for i, body in enumerate(bodies):
            if rate:
                delay = started + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            message_id = uuid.uuid4().hex
            sent[message_id] = time.time()
            producer.publish(
                body,
                exchange=exchange,
                routing_key=routing_key,
                content_type="application/json",
                content_encoding="binary",
                user_id=user,
                message_id=message_id,
                delivery_mode=2,
            )
    return sent


def _records(bootstrap: str, topic: str, expected: int, within: float) -> list[Any]:
    """Every record of topic, waiting until there are expected of them (or within s)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = servers_partitions(consumer, topic, within)
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        records: list[Any] = []
        deadline = time.monotonic() + within
        while len(records) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def servers_partitions(consumer: KafkaConsumer, topic: str, within: float) -> list[TopicPartition]:
    """The partitions of topic once the broker knows it."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = consumer.partitions_for_topic(topic)
        if found:
            return [TopicPartition(topic, p) for p in found]
        time.sleep(0.2)
    raise RuntimeError(f"topic {topic} never appeared")


def _rate(records: list[Any]) -> tuple[float, float]:
    """(seconds between first and last record, records per second)."""
    stamps = sorted(r.timestamp for r in records)
    seconds = max((stamps[-1] - stamps[0]) / 1000, 0.001)
    return seconds, (len(stamps) - 1) / seconds


def _producer(client: str, settings: IngressSettings) -> Callable[[bytes], None]:
    """A function that produces one value to the bare topic of client and waits for the ack."""
    topic = BARE[client]
    if client == "confluent-kafka":
        producer = Producer(producer_config(settings))

        def send_confluent(value: bytes) -> None:
            producer.produce(topic, key=b"k", value=value)
            producer.flush(10)

        return send_confluent
    kp = KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        linger_ms=0,
        batch_size=0,  # the local profile: one record per batch
        enable_idempotence=False,
        metrics_enabled=False,
    )
    return lambda value: kp.send(topic, key=b"k", value=value).get(timeout=10) and None


def _bare_loop(url: str, client: str, settings: IngressSettings, n: int) -> None:
    """Consume client's bare queue and produce each body to Kafka, acking after Kafka's ack."""
    send = _producer(client, settings)
    done = 0
    with Connection(url) as connection:
        queue = Queue(BARE[client], no_declare=True)

        def handle(message: Any) -> None:
            nonlocal done
            send(message.body)
            message.ack()
            done += 1

        with connection.Consumer([queue], on_message=handle, prefetch_count=WORKERS):
            while done < n:
                connection.drain_events(timeout=10)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _measure(n: int, rounds: int, paced: int, rate: float) -> str:
    load_before = os.getloadavg()[0]
    workdir = servers.scratch_dir("ssg-bench-ingress-")
    kafka = servers.start_kafka(workdir)
    bootstrap = f"{servers.LOOPBACK}:{kafka.port}"
    bare_rates: dict[str, list[float]] = {client: [] for client in BARE}
    bridge_rates: list[float] = []
    cpu: list[float] = []
    try:
        with temporary_vhost(servers.ensure_rabbitmq(), "ssg-bench-ingress") as vhost:
            user = vhost.add_user("bench-pm")
            settings = load_settings(
                IngressSettings,
                amqp_url=vhost.url(),
                kafka_bootstrap=bootstrap,
                kafka_local_profile=True,
                producers={user: [ROUTING_KEY]},
                topic_partitions=1,
            )
            ensure_topics(settings)
            with Connection(vhost.url()) as connection:
                topology.declare(connection)
                bare_exchange = Exchange("bench.bare", "direct", durable=True)
                for name in BARE.values():
                    Queue(name, bare_exchange, routing_key=name, durable=True)(
                        connection.default_channel
                    ).declare()
            bodies = _bodies(n)

            def start() -> Any:
                return start_bridge(
                    workdir,
                    vhost.url(),
                    bootstrap,
                    {user: [ROUTING_KEY]},
                    max_workers=str(WORKERS),
                    topic_partitions="1",
                )

            # Alternating rounds: the machine is shared, so both sides see the same noise.
            for round_ in range(1, rounds + 1):
                for client, name in BARE.items():
                    _publish(vhost.url(user), user, name, bodies, bare_exchange)
                    _bare_loop(vhost.url(), client, settings, n)
                    bare_rates[client].append(_round_rate(bootstrap, name, n, round_))
                # Queued while no bridge runs, so the bridge drains a full queue like the bare loop.
                _publish(vhost.url(user), user, ROUTING_KEY, bodies, topology.exchange)
                bridge = start()
                try:
                    bridge_rates.append(_round_rate(bootstrap, TOPIC, n, round_))
                    cpu.append(_cpu_seconds(bridge.process.pid))
                    if round_ == rounds:
                        sent = _publish(
                            vhost.url(user),
                            user,
                            ROUTING_KEY,
                            _bodies(paced),
                            topology.exchange,
                            rate=rate,
                        )
                        records = _records(bootstrap, TOPIC, rounds * n + paced, 120)
                        page = bridge.metrics()
                finally:
                    bridge.process.stop()
        latencies = [latency for _, latency in _pairs(records, sent)]
    finally:
        kafka.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    bare = {client: statistics.median(rates) for client, rates in bare_rates.items()}
    bridge_rate = statistics.median(bridge_rates)
    # The goal compares with the bare loop on the bridge's own client.
    same = bare_rates["confluent-kafka"]
    ratio = bridge_rate / bare["confluent-kafka"]
    verdict = "meets" if ratio >= GOAL_RATIO else "misses"
    ms = [1000 * x for x in latencies]
    produce = _histogram_mean(page, "ssg_ingress_kafka_produce_seconds")
    handled = _histogram_mean(page, "ssg_ingress_end_to_end_seconds")
    handled_p99 = _histogram_bound(page, "ssg_ingress_end_to_end_seconds", 0.99)
    per_round = ", ".join(f"{b / a:.2f}x" for a, b in zip(same, bridge_rates, strict=True))
    rows = [
        f"| bare kombu consume + {client} produce | {bare[client]:,.0f} | "
        f"{', '.join(f'{r:,.0f}' for r in rates)} | {bare[client] / bare['confluent-kafka']:.2f}x |"
        for client, rates in bare_rates.items()
    ]
    return "\n".join(
        [
            "## AMQP ingress bridge",
            "",
            f"{n:,} JSON `solution.proposed` messages (~{len(bodies[0])} bytes) queued on RabbitMQ, "
            "then drained to Kafka (Tansu, one partition, acks=all, one record per batch: the local "
            f"profile), {rounds} alternating rounds per side. Bridge: one process, {WORKERS} workers "
            "(nameko, eventlet, confluent-kafka), started after its queue was filled; bare: one kombu "
            f"consumer (prefetch {WORKERS}) producing each body and acking after Kafka's ack, with "
            "the bridge's client and settings (confluent-kafka) and with kafka-python. Rate = records between the first and the last record's "
            "Kafka timestamp of a round.",
            "",
            "| side | messages/s (median) | rounds | ratio to bare |",
            "|---|---:|---|---:|",
            *rows,
            f"| ingress bridge (admission, envelope, metrics) | {bridge_rate:,.0f} | "
            f"{', '.join(f'{r:,.0f}' for r in bridge_rates)} | {ratio:.2f}x |",
            "",
            f"Per-round ratios: {per_round}. Bridge CPU per message: "
            f"{1000 * statistics.median(cpu) / n:.2f} ms (median round, start-up included).",
            "",
            f"End to end (publish -> Kafka record), {len(ms):,} messages published at {rate:.0f}/s "
            f"to a running bridge: p50 {statistics.median(ms):.1f} ms, p99 "
            f"{_percentile(ms, 0.99):.1f} ms, max {max(ms):.1f} ms; inside the bridge, mean Kafka "
            f"produce {1000 * produce:.1f} ms, mean receipt -> Kafka ack {1000 * handled:.1f} ms, "
            f"p99 receipt -> Kafka ack <= {1000 * handled_p99:g} ms (histogram bucket, over the "
            f"last round's bridge: its drain of {n:,} queued messages and the paced ones). The record's timestamp is taken when the bridge hands "
            "it to the client, so publish -> record leaves out Kafka's own round trip.",
            "",
            f"Goal >= {GOAL_RATIO}x of the bare loop on the same client: the bridge {verdict} it "
            f"({ratio:.2f}x); against the kafka-python loop it reaches "
            f"{bridge_rate / bare['kafka-python']:.2f}x. Load average (2 cores, shared) "
            f"{load_before:.1f} before and {os.getloadavg()[0]:.1f} after the run.",
        ]
    )


def _round_rate(bootstrap: str, topic: str, n: int, round_: int) -> float:
    """Messages/s of the round_-th batch of n records on topic."""
    # Rounds follow each other, so ordering by timestamp separates them on any partition count.
    records = sorted(_records(bootstrap, topic, round_ * n, 300), key=lambda r: r.timestamp)
    return _rate(records[(round_ - 1) * n : round_ * n])[1]


def _pairs(records: list[Any], sent: dict[str, float]) -> list[tuple[float, float]]:
    """(publish time, publish -> Kafka record seconds) of each record published in sent."""
    out = []
    for record in records:
        event = unpack_payload(parse_envelope(record.value), events_pb2.SolutionProposed)
        if event.submission.message_id in sent:
            at = sent[event.submission.message_id]
            out.append((at, record.timestamp / 1000 - at))
    return out


def _histogram_mean(page: str, name: str) -> float:
    """Mean of a histogram over all its label sets, from a /metrics page."""
    total = count = 0.0
    for line in page.splitlines():
        if line.startswith(name + "_sum"):
            total += float(line.rsplit(" ", 1)[1])
        elif line.startswith(name + "_count"):
            count += float(line.rsplit(" ", 1)[1])
    return total / count if count else float("nan")


def _histogram_bound(page: str, name: str, q: float) -> float:
    """Upper bound of the bucket holding the q-quantile of a histogram, over its label sets."""
    buckets: dict[float, float] = {}
    for line in page.splitlines():
        if line.startswith(name + "_bucket{"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            le = float("inf") if bound == "+Inf" else float(bound)
            buckets[le] = buckets.get(le, 0.0) + float(line.rsplit(" ", 1)[1])
    total = buckets.get(float("inf"), 0.0)
    for le in sorted(buckets):
        if total and buckets[le] >= q * total:
            return le
    return float("nan")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()

    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(n: int = 2000, rounds: int = 3, paced: int = 1000, rate: float = 200.0) -> str:
    """Measure and return the markdown section."""
    return await asyncio.to_thread(_measure, n, rounds, paced, rate)


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    print(asyncio.run(run(count)))
