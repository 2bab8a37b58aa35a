"""Produce admitted envelopes to Kafka with a synchronous client (kafka-python on eventlet).

``send`` returns only once Kafka acknowledged (acks=all), so the AMQP message is acknowledged
after that. A refusal of the record itself raises ``KafkaRefused`` (it is dead-lettered); any
other failure raises ``KafkaUnavailable`` and the message goes back to its queue.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import (
    InvalidRecordError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    TopicAlreadyExistsError,
)
from nameko.extensions import DependencyProvider

from ssg.ingress.config import SETTINGS_KEY
from ssg.ingress.domain.admission import Admitted
from ssg.ingress.domain.catalogue import topics
from ssg.ingress.settings import IngressSettings
from ssg.platform.events.envelope import dlq_topic

log = logging.getLogger(__name__)


class KafkaUnavailable(Exception):
    """Kafka did not acknowledge in time; the message must be delivered again later."""


class KafkaRefused(Exception):
    """Kafka refuses this record for good (too large, invalid): retrying cannot help."""


# Errors about the record itself rather than the broker's state.
_REFUSALS = (MessageSizeTooLargeError, RecordListTooLargeError, InvalidRecordError)


def producer_options(settings: IngressSettings) -> dict[str, Any]:
    """kafka-python producer options: acks=all, bounded blocking, the local broker's quirks."""
    timeout_ms = int(settings.kafka_timeout_seconds * 1000)
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap.split(","),
        "client_id": f"{settings.service}-{settings.instance_id}",
        "acks": "all",
        "linger_ms": 1,
        "request_timeout_ms": timeout_ms,
        "max_block_ms": timeout_ms,
        "reconnect_backoff_max_ms": 2_000,
        "max_request_size": settings.kafka_max_request_bytes,
        # The client's own metrics cost ~1 ms of CPU per record in sensors nobody reads;
        # ours (ssg_ingress_kafka_produce_seconds) are enough.
        "metrics_enabled": False,
    }
    if settings.kafka_local_profile:
        # Tansu reports end offsets per batch and has no idempotent producer.
        options["batch_size"] = 0
        options["linger_ms"] = 0
        options["enable_idempotence"] = False
    else:
        options["enable_idempotence"] = True
    return options


def ensure_topics(settings: IngressSettings) -> None:
    """Create the ingress topics and their ``.dlq`` twins when missing."""
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap.split(","),
        client_id=f"{settings.service}-{settings.instance_id}-admin",
        request_timeout_ms=int(settings.kafka_timeout_seconds * 1000),
    )
    try:
        for name in [n for topic in topics() for n in (topic, dlq_topic(topic))]:
            try:
                admin.create_topics(
                    [NewTopic(name, settings.topic_partitions, settings.topic_replication)]
                )
            except TopicAlreadyExistsError:
                continue
    finally:
        admin.close()


class KafkaSink:
    """One producer per process, created on first use (Kafka may be down at start-up)."""

    def __init__(self, settings: IngressSettings) -> None:
        self._settings = settings
        self._producer: KafkaProducer | None = None
        self._topics_ready = False
        self._lock = threading.Lock()

    def _ready_producer(self) -> KafkaProducer:
        with self._lock:
            if not self._topics_ready:
                ensure_topics(self._settings)
                self._topics_ready = True
            if self._producer is None:
                self._producer = KafkaProducer(**producer_options(self._settings))
            return self._producer

    def send(self, admitted: Admitted) -> float:
        """Produce admitted and wait for Kafka's acknowledgement; the seconds it took."""
        started = time.perf_counter()
        try:
            producer = self._ready_producer()
            future = producer.send(
                admitted.topic,
                key=admitted.key,
                value=admitted.envelope.SerializeToString(),
                headers=[("event_type", admitted.envelope.event_type.encode())],
            )
            future.get(timeout=self._settings.kafka_timeout_seconds)
        except _REFUSALS as exc:
            raise KafkaRefused(f"{type(exc).__name__}: {exc}") from exc
        except (KafkaError, OSError) as exc:
            # A broker that lost its topics (a restarted local one) gets them again next time.
            self._topics_ready = False
            raise KafkaUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return time.perf_counter() - started

    def close(self) -> None:
        """Flush and close the producer."""
        with self._lock:
            if self._producer is not None:
                self._producer.close(timeout=self._settings.kafka_timeout_seconds)
                self._producer = None


class Kafka(DependencyProvider):
    """Gives workers the process's Kafka sink."""

    def setup(self) -> None:
        """Build the sink from the bridge's settings."""
        self.sink = KafkaSink(self.container.config[SETTINGS_KEY])

    def stop(self) -> None:
        """Flush what is in flight (workers have finished by now)."""
        self.sink.close()

    def kill(self) -> None:
        """Close without waiting for the orderly path."""
        self.sink.close()

    def get_dependency(self, worker_ctx: object) -> KafkaSink:
        """The sink."""
        return self.sink
