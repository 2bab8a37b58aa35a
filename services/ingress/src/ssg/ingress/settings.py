"""Settings of the ingress bridge (``SSG_*`` on top of the platform's)."""

from __future__ import annotations

from pydantic import Field, field_validator

from ssg.ingress.domain.catalogue import CATALOGUE
from ssg.ingress.domain.producers import ProducerPolicy
from ssg.platform.settings import PlatformSettings


class IngressSettings(PlatformSettings):
    """What the bridge reads from its environment."""

    service: str = Field(default="ingress", pattern=r"^[a-z][a-z0-9-]*$")
    metrics_port: int = Field(default=9525, ge=0, le=65535)
    # Both required: the bridge is nothing without either side.
    amqp_url: str = Field(min_length=1)
    kafka_bootstrap: str = Field(min_length=1)
    # SSG_PRODUCERS, JSON: {"pm-system": ["solution.proposed", "knowledge.product"], ...}.
    # A producer is the RabbitMQ user it connects as; RabbitMQ checks user_id against it.
    producers: dict[str, list[str]] = Field(default_factory=dict)
    # Largest message body accepted; larger ones are dead-lettered as too_large.
    max_body_bytes: int = Field(default=256 * 1024, ge=1024, le=900 * 1024)
    # Messages handled at once (also the AMQP prefetch): 16 drained the local broker about 2x
    # faster than 4, with lower tail latency (docs/benchmarks.md).
    max_workers: int = Field(default=16, ge=1, le=256)
    # Handled deliveries acknowledged together with one `multiple` ack (ADR 0025). They count
    # against the prefetch until acked, so a batch well below max_workers keeps workers busy;
    # 1 acknowledges each message on its own.
    amqp_ack_batch: int = Field(default=4, ge=1, le=256)
    # Message ids forwarded recently, remembered per process to drop repeats before Kafka.
    recent_ids: int = Field(default=100_000, ge=0, le=10_000_000)
    # Largest produce request the client sends (the broker has its own limit, message.max.bytes).
    kafka_max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    # How long one Kafka produce may take before the message goes back to its queue.
    kafka_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # Pause before a message whose produce failed is put back (keeps an outage from spinning).
    requeue_delay_seconds: float = Field(default=1.0, ge=0, le=60)
    # Partitions of the ingress topics when the bridge creates them.
    topic_partitions: int = Field(default=3, ge=1, le=1024)
    topic_replication: int = Field(default=1, ge=1, le=7)
    amqp_heartbeat_seconds: int = Field(default=30, ge=0, le=600)

    @field_validator("producers")
    @classmethod
    def _known_types(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        ProducerPolicy.from_config(value, CATALOGUE)
        return value

    def policy(self) -> ProducerPolicy:
        """The producers' rights as configured."""
        return ProducerPolicy.from_config(self.producers, CATALOGUE)
