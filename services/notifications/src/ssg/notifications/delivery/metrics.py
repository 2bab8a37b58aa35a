"""Metrics of the delivery workers, in a module of their own so that the monitoring checks can
load them without nameko and eventlet."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

DELIVERIES = Counter(
    "ssg_notifications_deliveries_total",
    "Delivery attempts by channel and outcome (succeeded, failed, gave_up).",
    ["channel", "outcome"],
)
RETRIES = Counter(
    "ssg_notifications_delivery_retries_total",
    "Attempts scheduled again after a failure.",
    ["channel"],
)
DEAD_LETTERED = Counter(
    "ssg_notifications_delivery_dead_lettered_total",
    "Tasks sent to the dead-letter queue.",
    ["reason"],
)
RATE_LIMITED = Counter(
    "ssg_notifications_delivery_rate_limited_total", "Tasks delayed by the per-recipient limit."
)
LATENCY = Histogram(
    "ssg_notifications_delivery_latency_seconds",
    "From the event's time to the receiver's acceptance (digests: from the period's end).",
    ["channel"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
ATTEMPT_SECONDS = Histogram(
    "ssg_notifications_attempt_seconds",
    "Time of one send attempt.",
    ["channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
