"""Prometheus metrics of the bridge (labels are bounded: configured producers, known types)."""

from __future__ import annotations

from functools import cache
from typing import TypeVar

from prometheus_client import Counter, Histogram

M = TypeVar("M", Counter, Histogram)

RECEIVED = Counter(
    "ssg_ingress_messages_received_total", "AMQP messages received, by type", ["type"]
)
ACCEPTED = Counter(
    "ssg_ingress_messages_accepted_total",
    "Messages produced to Kafka and acknowledged",
    ["producer", "type"],
)
REJECTED = Counter(
    "ssg_ingress_messages_rejected_total",
    "Messages dead-lettered, by reason",
    ["producer", "type", "reason"],
)
DUPLICATES = Counter(
    "ssg_ingress_duplicates_total",
    "Messages whose message id was forwarded recently (acknowledged, not produced again)",
    ["producer", "type"],
)
REQUEUED = Counter(
    "ssg_ingress_messages_requeued_total",
    "Messages put back on their queue because Kafka or the dead-letter exchange failed",
    ["type", "cause"],
)
KAFKA_SECONDS = Histogram(
    "ssg_ingress_kafka_produce_seconds",
    "Time from produce to Kafka's acknowledgement",
    ["type"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
END_TO_END_SECONDS = Histogram(
    "ssg_ingress_end_to_end_seconds",
    "Time from receiving the AMQP message to Kafka's acknowledgement",
    ["type"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def type_label(routing_key: str, known: bool) -> str:
    """The type label: the routing key when it is a known type, else ``unknown``."""
    return routing_key if known else "unknown"


def producer_label(producer: str | None, known: bool) -> str:
    """The producer label: a configured producer's name, else ``unknown``."""
    return producer if known and producer else "unknown"


@cache
def labelled(metric: M, *values: str) -> M:
    """metric's child for these label values, looked up once (labels are bounded, see above)."""
    return metric.labels(*values)
