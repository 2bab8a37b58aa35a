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
from ssg.ingress.domain.admission import Admission, Admitted, Incoming, Reason, Rejected
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
    """Consumes the ingress queues; one worker per run of deliveries that arrived together."""

    name = "ingress"

    admission: Admission = Admissions()
    recent: RecentIds = RecentMessages()
    kafka: KafkaSink = Kafka()
    dead_letters: DeadLetterPublisher = DeadLetters()

    @ingress_messages(expected_exceptions=(KafkaUnavailable,))
    def receive_run(self, messages: list[Incoming]) -> list[Outcome | Exception]:
        """Forward or dead-letter each message of a run; an exception in its place puts it back."""
        results: list[Outcome | Exception | None] = [None] * len(messages)
        admitted: list[tuple[int, Incoming, str, Admitted]] = []
        for i, message in enumerate(messages):
            try:
                message, type_, verdict = self._admit(message)
            except Exception as exc:  # the dead-letter exchange unavailable: this one goes back
                results[i] = exc
                continue
            if isinstance(verdict, Admitted):
                admitted.append((i, message, type_, verdict))
            else:
                results[i] = verdict
        # All of the run's records are produced before waiting for any report.
        sent: list[float | Exception] = []
        if admitted:
            try:
                sent = self.kafka.send_all([a for _, _, _, a in admitted])
            except BaseException as exc:
                # Whatever failed, the claims are released so that the redeliveries are produced.
                for _, _, _, record in admitted:
                    self.recent.release(record.envelope.event_id)
                if not isinstance(exc, Exception):
                    raise
                sent = [exc] * len(admitted)
        for (i, message, type_, record), outcome in zip(admitted, sent, strict=True):
            try:
                results[i] = self._settle(message, type_, record, outcome)
            except Exception as exc:
                results[i] = exc
        return [r if r is not None else RuntimeError("not handled") for r in results]

    def receive(self, message: Incoming) -> Outcome:
        """Forward message to Kafka, or dead-letter it; raising puts it back on its queue."""
        (result,) = self.receive_run([message])
        if isinstance(result, Exception):
            raise result
        return result

    def _admit(self, message: Incoming) -> tuple[Incoming, str, Outcome | Admitted]:
        known = message.routing_key in CATALOGUE
        type_ = metrics.type_label(message.routing_key, known)
        metrics.labelled(metrics.RECEIVED, type_).inc()
        # One trace id for the logs and the envelope: the producer's when well formed.
        trace_id = accept_trace_id(message.trace_id)
        if trace_id != message.trace_id:
            message = replace(message, trace_id=trace_id)
        with bound_trace_id(message.trace_id or ""):
            return message, type_, self._check(message, type_)

    def _check(self, message: Incoming, type_: str) -> Outcome | Admitted:
        try:
            admitted = self.admission.admit(message)
        except Rejected as rejected:
            return self._reject(message, rejected, type_)
        except Exception as exc:
            # A bug must not turn one message into an endless redelivery: park it with a reason.
            log.exception("admission failed unexpectedly", extra=_fields(message))
            failed = Rejected(Reason.INTERNAL_ERROR, f"{type(exc).__name__} in the bridge")
            return self._reject(message, failed, type_)
        if not self.recent.claim(admitted.envelope.event_id):
            metrics.DUPLICATES.labels(admitted.producer, type_).inc()
            log.info("duplicate message acknowledged", extra=_fields(message))
            return Outcome.DUPLICATE
        return admitted

    def _settle(
        self, message: Incoming, type_: str, admitted: Admitted, sent: float | Exception
    ) -> Outcome:
        with bound_trace_id(message.trace_id or ""):
            return self._forwarded(message, type_, admitted, sent)

    def _forwarded(
        self, message: Incoming, type_: str, admitted: Admitted, sent: float | Exception
    ) -> Outcome:
        producer = admitted.producer
        event_id = admitted.envelope.event_id
        if isinstance(sent, KafkaRefused):
            self.recent.release(event_id)
            return self._reject(message, Rejected(Reason.KAFKA_REFUSED, str(sent)), type_)
        if isinstance(sent, BaseException):
            # Whatever failed, the message goes back and its redelivery must be produced.
            self.recent.release(event_id)
            if isinstance(sent, KafkaUnavailable):
                metrics.REQUEUED.labels(type_, "kafka").inc()
                log.warning("Kafka unavailable, message goes back", extra={"error": str(sent)})
            raise sent
        metrics.labelled(metrics.KAFKA_SECONDS, type_).observe(sent)
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
