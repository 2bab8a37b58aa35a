"""The nameko delivery service: consumes delivery tasks, sends each, and reports every attempt
on the results queue. A failed attempt is retried through a delay queue (a per-queue TTL that
dead-letters back to the task queue, so no worker sleeps); after the last one the task goes to
the dead-letter queue. The task is acknowledged only after its follow-up messages were
confirmed by the broker; a worker killed mid-task leaves it unacknowledged, and RabbitMQ
hands it to another worker.

Imports no grpcio and no MongoDB driver (it runs under eventlet).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from kombu import Connection
from kombu.pools import producers
from nameko.extensions import DependencyProvider
from nameko.messaging import consume

from ssg.notifications.delivery.metrics import (
    ATTEMPT_SECONDS,
    DEAD_LETTERED,
    DELIVERIES,
    LATENCY,
    RATE_LIMITED,
    RETRIES,
)
from ssg.notifications.delivery.ratelimit import RecipientLimiter
from ssg.notifications.delivery.senders import (
    SendFailed,
    Sent,
    SmtpConfig,
    send_email,
    send_webhook,
)
from ssg.notifications.domain.model import AttemptOutcome, Channel
from ssg.notifications.domain.retry import Backoff
from ssg.notifications.domain.signing import webhook_secret
from ssg.notifications.domain.tasks import AttemptResult, BadTask, DeliveryTask
from ssg.notifications.queues import DEFAULT_EXCHANGE, Topology
from ssg.notifications.settings import NotificationsSettings

log = logging.getLogger("ssg.notifications.delivery")


class Outbound:
    """Confirmed publishing to the results, delay and dead-letter queues, through kombu's
    producer pool (one connection and channel per concurrent publisher, reused)."""

    def __init__(self, amqp_uri: str, topology: Topology) -> None:
        self.topology = topology
        self.connection = Connection(amqp_uri, transport_options={"confirm_publish": True})
        with self.connection.clone() as conn:
            topology.declare(conn)

    def send(self, routing_key: str, body: dict[str, Any], **headers: str) -> None:
        """Publish body persistently to routing_key through the default exchange; returns once
        the broker confirmed it (raises when it refused it)."""
        with producers[self.connection].acquire(block=True) as producer:
            producer.publish(
                body,
                exchange=DEFAULT_EXCHANGE,
                routing_key=routing_key,
                serializer="json",
                delivery_mode=2,
                headers=headers,
                retry=True,
                retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5},
            )


class Delivery(DependencyProvider):
    """What a delivery worker uses: settings, senders, limiter and the outbound publisher."""

    def __init__(self, settings: NotificationsSettings, topology: Topology) -> None:
        self.settings = settings
        self.topology = topology
        self.backoff = Backoff(
            settings.retry_attempts,
            settings.retry_base_ms,
            settings.retry_multiplier,
            settings.retry_max_ms,
        )
        self.key = settings.signing_bytes()
        self.smtp = SmtpConfig(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_from,
            settings.smtp_timeout_seconds,
            settings.smtp_starttls,
            settings.smtp_username,
            settings.smtp_password,
        )
        self.limiter = RecipientLimiter(settings.recipient_rate_per_minute)
        self.outbound: Outbound | None = None

    def setup(self) -> None:
        """Create the publisher once the container has its config."""
        self.outbound = Outbound(self.settings.amqp_url, self.topology)

    def get_dependency(self, worker_ctx: object) -> Delivery:
        """The provider itself: it holds no per-worker state."""
        return self

    def send(self, task: DeliveryTask) -> Sent:
        """One attempt over the task's channel."""
        if task.channel == Channel.EMAIL:
            return send_email(task, self.smtp)
        secret = webhook_secret(self.key, task.subscription_id)
        return send_webhook(
            task,
            secret,
            timeout=self.settings.webhook_timeout_seconds,
            allow_loopback=self.settings.webhook_allow_loopback,
        )

    def handle(self, body: Any) -> None:
        """Process one task message (a nameko worker runs this)."""
        assert self.outbound is not None
        try:
            task = DeliveryTask.from_json(body)
        except BadTask as exc:
            self.outbound.send(self.topology.dlq, {"message": body}, reason=str(exc))
            DEAD_LETTERED.labels("malformed").inc()
            return
        channel = Channel(task.channel).name.lower()
        if not self.limiter.allow(task.address):
            # Not an attempt: the same attempt comes back after the shortest delay.
            RATE_LIMITED.inc()
            self.outbound.send(self.topology.retry(self.topology.delays_ms[0]), task.to_json())
            return
        started = time.monotonic()
        try:
            sent = self.send(task)
        except SendFailed as exc:
            ATTEMPT_SECONDS.labels(channel).observe(time.monotonic() - started)
            self._failed(task, channel, exc)
            return
        ATTEMPT_SECONDS.labels(channel).observe(time.monotonic() - started)
        self._report(task, AttemptOutcome.SUCCEEDED, sent.code, "")
        DELIVERIES.labels(channel, "succeeded").inc()
        LATENCY.labels(channel).observe(max(0.0, time.time() - task.event_time))

    def _failed(self, task: DeliveryTask, channel: str, exc: SendFailed) -> None:
        assert self.outbound is not None
        delay = self.backoff.delay_ms(task.attempt) if exc.retryable else None
        if delay is not None and delay in self.topology.delays_ms:
            self._report(task, AttemptOutcome.FAILED, exc.code, str(exc))
            self.outbound.send(self.topology.retry(delay), task.next_attempt().to_json())
            DELIVERIES.labels(channel, "failed").inc()
            RETRIES.labels(channel).inc()
            log.info(
                "delivery attempt failed; retrying",
                extra={
                    "delivery_id": task.delivery_id,
                    "attempt": task.attempt,
                    "error": str(exc),
                    "retry_in_ms": delay,
                },
            )
            return
        self._report(task, AttemptOutcome.GAVE_UP, exc.code, str(exc))
        self.outbound.send(self.topology.dlq, task.to_json(), reason=str(exc)[:500])
        DELIVERIES.labels(channel, "gave_up").inc()
        DEAD_LETTERED.labels("retryable" if exc.retryable else "permanent").inc()
        log.warning(
            "delivery failed for good; dead-lettered",
            extra={"delivery_id": task.delivery_id, "attempt": task.attempt, "error": str(exc)},
        )

    def _report(self, task: DeliveryTask, outcome: AttemptOutcome, code: int, error: str) -> None:
        assert self.outbound is not None
        result = AttemptResult(
            task.delivery_id, task.attempt, int(outcome), time.time(), code, error
        )
        self.outbound.send(self.topology.results, result.to_json())


def service_class(settings: NotificationsSettings, topology: Topology) -> type:
    """The nameko service class for these settings (queue names are configuration)."""
    tasks = topology.queue(topology.tasks)

    class DeliveryService:
        """Sends delivery tasks."""

        name = "notifications_delivery"
        delivery = Delivery(settings, topology)

        # requeue_on_error: an unexpected error (e.g. the broker refused a follow-up message)
        # puts the task back instead of acknowledging it unsent.
        @consume(tasks, requeue_on_error=True)
        def deliver(self, body: Any) -> None:
            self.delivery.handle(body)

    return DeliveryService
