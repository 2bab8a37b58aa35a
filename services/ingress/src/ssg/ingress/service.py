"""The nameko service: admit each AMQP message, produce it to Kafka or dead-letter it with its reason."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from enum import StrEnum

from nameko.extensions import DependencyProvider

from ssg.ingress import metrics
from ssg.ingress.amqp.dead_letters import DeadLetterPublisher, DeadLetters
from ssg.ingress.amqp.entrypoint import ingress_messages
from ssg.ingress.config import SETTINGS_KEY
from ssg.ingress.domain.admission import Admission, Incoming, Reason, Rejected
from ssg.ingress.domain.catalogue import CATALOGUE
from ssg.ingress.events.kafka_sink import Kafka, KafkaRefused, KafkaSink, KafkaUnavailable
from ssg.ingress.events.recent import RecentIds, RecentMessages
from ssg.platform.events.envelope import Origin
from ssg.platform.tracing import accept_trace_id, bound_trace_id

log = logging.getLogger("ssg.ingress")


class Outcome(StrEnum):
    """What became of a message that is acknowledged."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


class Admissions(DependencyProvider):
    """Gives workers the admission rules built from the settings."""

    def setup(self) -> None:
        """Build the rules: producers' rights, size limit, this process as the origin."""
        settings = self.container.config[SETTINGS_KEY]
        origin = Origin(settings.service, settings.instance, settings.instance_id)
        self.admission = Admission(settings.policy(), origin, settings.max_body_bytes)

    def get_dependency(self, worker_ctx: object) -> Admission:
        """The rules."""
        return self.admission


class IngressBridge:
    """Consumes the ingress queues; one worker per message."""

    name = "ingress"

    admission: Admission = Admissions()
    recent: RecentIds = RecentMessages()
    kafka: KafkaSink = Kafka()
    dead_letters: DeadLetterPublisher = DeadLetters()

    @ingress_messages(expected_exceptions=(KafkaUnavailable,))
    def receive(self, message: Incoming) -> Outcome:
        """Forward message to Kafka, or dead-letter it; raising puts it back on its queue."""
        known = message.routing_key in CATALOGUE
        type_ = metrics.type_label(message.routing_key, known)
        metrics.labelled(metrics.RECEIVED, type_).inc()
        # One trace id for the logs and the envelope: the producer's when well formed.
        trace_id = accept_trace_id(message.trace_id)
        if trace_id != message.trace_id:
            message = replace(message, trace_id=trace_id)
        with bound_trace_id(message.trace_id or ""):
            return self._forward(message, type_)

    def _forward(self, message: Incoming, type_: str) -> Outcome:
        try:
            admitted = self.admission.admit(message)
        except Rejected as rejected:
            return self._reject(message, rejected, type_)
        except Exception as exc:
            # A bug must not turn one message into an endless redelivery: park it with a reason.
            log.exception("admission failed unexpectedly", extra=_fields(message))
            failed = Rejected(Reason.INTERNAL_ERROR, f"{type(exc).__name__} in the bridge")
            return self._reject(message, failed, type_)
        producer = admitted.producer
        event_id = admitted.envelope.event_id
        if not self.recent.claim(event_id):
            metrics.DUPLICATES.labels(producer, type_).inc()
            log.info("duplicate message acknowledged", extra=_fields(message))
            return Outcome.DUPLICATE
        try:
            seconds = self.kafka.send(admitted)
        except KafkaRefused as exc:
            self.recent.release(event_id)
            return self._reject(message, Rejected(Reason.KAFKA_REFUSED, str(exc)), type_)
        except BaseException as exc:
            # Whatever failed, the message goes back and its redelivery must be produced.
            self.recent.release(event_id)
            if isinstance(exc, KafkaUnavailable):
                metrics.REQUEUED.labels(type_, "kafka").inc()
                log.warning("Kafka unavailable, message goes back", extra={"error": str(exc)})
            raise
        metrics.labelled(metrics.KAFKA_SECONDS, type_).observe(seconds)
        metrics.labelled(metrics.END_TO_END_SECONDS, type_).observe(_since(message))
        metrics.labelled(metrics.ACCEPTED, producer, type_).inc()
        # Counted by the metric; a line per forwarded message only when asked for (DEBUG):
        # rejections, duplicates and outages are the lines an operator needs.
        log.debug(
            "message forwarded",
            extra={
                **_fields(message),
                "topic": admitted.topic,
                "event_id": event_id,
            },
        )
        return Outcome.ACCEPTED

    def _reject(self, message: Incoming, rejected: Rejected, type_: str) -> Outcome:
        try:
            self.dead_letters.publish(message, rejected)
        except Exception:
            metrics.REQUEUED.labels(type_, "dead_letter").inc()
            log.exception("dead-letter publish failed, message goes back")
            raise
        known_producer = bool(message.user_id) and self.admission.knows(message.user_id or "")
        metrics.REJECTED.labels(
            metrics.producer_label(message.user_id, known_producer), type_, str(rejected.reason)
        ).inc()
        log.warning(
            "message dead-lettered",
            extra={**_fields(message), "reason": str(rejected.reason), "detail": rejected.detail},
        )
        return Outcome.REJECTED


def _fields(message: Incoming) -> dict[str, object]:
    return {
        "producer": message.user_id,
        "routing_key": message.routing_key[:100],
        "message_id": (message.message_id or "")[:128],
    }


def _since(message: Incoming) -> float:
    return (datetime.now(UTC) - message.received_at).total_seconds()
