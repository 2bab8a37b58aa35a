"""Produce admitted envelopes to Kafka from eventlet workers, with confluent-kafka (librdkafka).

librdkafka runs its network threads in C, outside eventlet's hub, so producing costs a worker
little; its delivery reports are handed out by ``poll()``, which one green thread calls while
records are in flight. ``send`` returns only once Kafka acknowledged (acks=all), so the AMQP
message is acknowledged after that. A refusal of the record itself raises ``KafkaRefused`` (it
is dead-lettered); any other failure, including no acknowledgement within the timeout (the
producer gives up on the record at the same time), raises ``KafkaUnavailable`` and the message
goes back to its queue. Topics are created with kafka-python's admin client: its calls stay on
green sockets, while confluent-kafka's admin futures would be completed from a C thread.
"""

from __future__ import annotations

import logging
import time
from functools import partial
from typing import Any, NoReturn

import eventlet
from confluent_kafka import KafkaError as RdKafkaError
from confluent_kafka import KafkaException, Producer
from eventlet.event import Event
from eventlet.semaphore import Semaphore
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from nameko.extensions import DependencyProvider

from ssg.ingress.config import SETTINGS_KEY
from ssg.ingress.domain.admission import Admitted
from ssg.ingress.domain.catalogue import topics
from ssg.ingress.settings import IngressSettings
from ssg.platform.events.envelope import dlq_topic

log = logging.getLogger(__name__)

# Errors about the record itself rather than the broker's state: retrying cannot help.
_REFUSALS = {
    RdKafkaError.MSG_SIZE_TOO_LARGE,
    RdKafkaError.INVALID_MSG_SIZE,
    RdKafkaError.RECORD_LIST_TOO_LARGE,
    RdKafkaError.INVALID_RECORD,
}
# While records are in flight the poller polls every half millisecond (a report usually comes
# within one; yielding without a pause spent more CPU on hub switches than it saved, see
# docs/benchmarks.md); after _SPIN_S without a report it backs off, up to _POLL_MAX_S between
# polls (Kafka down: records wait for their timeout).
_SPIN_S = 0.005
_SPIN_PAUSE_S = 0.0005
_POLL_MAX_S = 0.01


class KafkaUnavailable(Exception):
    """Kafka did not acknowledge in time; the message must be delivered again later."""


class KafkaRefused(Exception):
    """Kafka refuses this record for good (too large, invalid): retrying cannot help."""


def producer_config(settings: IngressSettings) -> dict[str, Any]:
    """librdkafka producer settings: acks=all, a delivery timeout, the local broker's quirks."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "client.id": f"{settings.service}-{settings.instance_id}",
        "acks": "all",
        # The producer gives up on a record when the worker stops waiting for it.
        "message.timeout.ms": int(settings.kafka_timeout_seconds * 1000),
        "message.max.bytes": settings.kafka_max_request_bytes,
        "reconnect.backoff.max.ms": 2_000,
        "linger.ms": 2,
        "enable.idempotence": True,
    }
    if settings.kafka_local_profile:
        # Tansu reports end offsets per batch and has no idempotent producer.
        config.update({"batch.num.messages": 1, "linger.ms": 0, "enable.idempotence": False})
    return config


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
        self._producer: Producer | None = None
        self._topics_ready = False
        self._lock = Semaphore()
        self._in_flight = 0
        self._wake = Event()

    def _ready_producer(self) -> Producer:
        producer = self._producer
        if producer is not None and self._topics_ready:
            return producer  # the common case, without a turn through the semaphore
        with self._lock:
            if not self._topics_ready:
                try:
                    ensure_topics(self._settings)
                except (KafkaError, OSError) as exc:
                    raise KafkaUnavailable(f"{type(exc).__name__}: {exc}") from exc
                self._topics_ready = True
            if self._producer is None:
                self._producer = Producer(
                    producer_config(self._settings), logger=logging.getLogger("kafka.producer")
                )
                eventlet.spawn_n(self._poll_while_open, self._producer)
            return self._producer

    def _poll_while_open(self, producer: Producer) -> None:
        """Hand out delivery reports while records are in flight; sleep while none are."""
        last_report = time.monotonic()
        while self._producer is producer:
            if self._in_flight == 0:
                self._wake.wait()
                self._wake = Event()
                last_report = time.monotonic()
                continue
            try:
                if producer.poll(0):
                    last_report = time.monotonic()
            except Exception:  # the poller must outlive anything a report brings
                log.exception("polling Kafka delivery reports failed")
            waited = time.monotonic() - last_report
            eventlet.sleep(_SPIN_PAUSE_S if waited < _SPIN_S else min(waited / 10, _POLL_MAX_S))

    def send(self, admitted: Admitted) -> float:
        """Produce admitted and wait for Kafka's acknowledgement; the seconds it took."""
        (result,) = self.send_all([admitted])
        if isinstance(result, Exception):
            raise result
        return result

    def send_all(self, run: list[Admitted]) -> list[float | Exception]:
        """Produce every record of run, then wait for all their acknowledgements.

        Per record: the seconds until Kafka acknowledged it, or the ``KafkaRefused`` /
        ``KafkaUnavailable`` it failed with (the others of the run are not affected).
        """
        started = time.perf_counter()
        try:
            producer = self._ready_producer()
        except KafkaUnavailable as exc:
            return [exc for _ in run]
        reports: list[Event | object] = []  # an Event sent (error,) by the report, or the error
        self._in_flight += len(run)
        if not self._wake.ready():
            self._wake.send(None)
        try:
            for admitted in run:
                delivered: Event = Event()
                try:
                    producer.produce(
                        admitted.topic,
                        key=admitted.key,
                        value=admitted.envelope.SerializeToString(),
                        headers=[("event_type", admitted.envelope.event_type.encode())],
                        on_delivery=partial(_report, delivered),
                    )
                except KafkaException as exc:
                    reports.append(exc.args[0])
                except BufferError as exc:  # the producer's local queue is full: back off
                    reports.append(KafkaUnavailable(f"local queue full: {exc}"))
                else:
                    reports.append(delivered)
            # A little beyond message.timeout.ms, after which the report says it failed.
            deadline = time.monotonic() + self._settings.kafka_timeout_seconds + 5
            results: list[float | Exception] = []
            for report in reports:
                if isinstance(report, Event):
                    got = report.wait(timeout=max(deadline - time.monotonic(), 0.0))
                    error = got[0] if got is not None else TimeoutError()
                else:
                    error = report
                if error is None:
                    results.append(time.perf_counter() - started)
                elif isinstance(error, KafkaUnavailable):
                    results.append(error)
                else:
                    results.append(self._failure(error))
        finally:
            self._in_flight -= len(run)
        return results

    def _failure(self, error: object) -> Exception:
        try:
            self._raise_for(error)
        except (KafkaRefused, KafkaUnavailable) as exc:
            return exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _raise_for(self, error: object) -> NoReturn:
        if isinstance(error, RdKafkaError) and error.code() in _REFUSALS:
            raise KafkaRefused(error.str())
        # A broker that lost its topics (a restarted local one) gets them again next time.
        self._topics_ready = False
        detail = error.str() if isinstance(error, RdKafkaError) else "no delivery report in time"
        raise KafkaUnavailable(detail)

    def close(self) -> None:
        """Flush what is still in flight and stop polling."""
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            if not self._wake.ready():
                self._wake.send(None)
            producer.flush(min(5.0, self._settings.kafka_timeout_seconds))


def _report(delivered: Event, error: object, _message: object) -> None:
    delivered.send((error,))


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
