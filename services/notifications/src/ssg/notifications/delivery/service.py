"""The nameko delivery service: consumes delivery tasks, sends each, and reports every attempt
on the results queue. A failed attempt is retried through a delay queue (a per-queue TTL that
dead-letters back to the task queue, so no worker sleeps); after the last one the task goes to
the dead-letter queue. The task is acknowledged only after its follow-up messages were
confirmed by the broker; a worker killed mid-task leaves it unacknowledged, and RabbitMQ
hands it to another worker.

Imports no grpcio and no MongoDB driver (it runs under eventlet).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import amqp
import eventlet
from eventlet.event import Event
from eventlet.queue import Empty, LightQueue
from kombu import Connection
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
    WebhookClient,
    send_email,
)
from ssg.notifications.domain.model import AttemptOutcome, Channel
from ssg.notifications.domain.retry import Backoff
from ssg.notifications.domain.signing import webhook_secret
from ssg.notifications.domain.tasks import AttemptResult, BadTask, DeliveryTask
from ssg.notifications.queues import DEFAULT_EXCHANGE, Topology
from ssg.notifications.settings import NotificationsSettings

log = logging.getLogger("ssg.notifications.delivery")


class OutboundRefused(Exception):
    """The broker refused (nacked) a message, or did not confirm it in time."""


class _Outgoing:
    """One message on its way, and the event its sender waits on (True once confirmed)."""

    __slots__ = ("combine", "done", "headers", "payload", "routing_key")

    def __init__(
        self, routing_key: str, payload: bytes, headers: dict[str, str], combine: bool
    ) -> None:
        self.routing_key = routing_key
        self.payload = payload
        self.headers = headers
        self.combine = combine
        self.done: Event = Event()


class Outbound:
    """Confirmed publishing to the results, delay and dead-letter queues, pipelined.

    Senders hand their messages to one green thread (``run``), which owns the connection: it
    writes every message that has queued up, then waits for the broker's confirms of all of
    them (RabbitMQ acknowledges several with one ``multiple`` ack). ``send`` still returns only
    once its own message is confirmed, so a task is acknowledged only after its follow-up
    messages are safe; what changes is that ten green workers share a round trip instead of
    paying one each. Messages sent with ``combine`` (attempt results, whose consumer reads a
    JSON list as several) that meet in one batch with one routing key travel as one message.
    """

    def __init__(
        self,
        amqp_uri: str,
        topology: Topology,
        *,
        timeout: float = 30.0,
        attempts: int = 3,
        batch: int = 200,
    ) -> None:
        self.amqp_uri = amqp_uri
        self.topology = topology
        self.timeout = timeout
        self.attempts = attempts
        self.batch = batch
        # Messages to publish; None stops the green thread.
        self._queue: LightQueue = LightQueue()
        self._conn: Connection | None = None
        self._channel: Any = None
        self._tag = 0
        self._unconfirmed: dict[int, list[_Outgoing]] = {}
        with Connection(amqp_uri) as conn:
            topology.declare(conn)

    def send(
        self, routing_key: str, body: dict[str, Any], *, combine: bool = False, **headers: str
    ) -> None:
        """Publish body persistently to routing_key through the default exchange; returns once
        the broker confirmed it (raises when it refused it or did not answer). With combine,
        it may go in a JSON list with other combined bodies for the same queue (no headers)."""
        message = _Outgoing(routing_key, json.dumps(body).encode(), headers, combine)
        self._queue.put(message)
        # The green thread settles every message within its own timeouts; this is a backstop.
        outcome = message.done.wait(self.timeout * (self.attempts + 1))
        if outcome is True:
            return
        if isinstance(outcome, BaseException):
            raise outcome
        raise OutboundRefused(f"no confirm from the broker within {self.timeout} s")

    def run(self) -> None:
        """Publish what senders queue, batch by batch, until ``stop``."""
        while True:
            first = self._queue.get()
            if first is None:
                self._drop()
                return
            batch = [first]
            while len(batch) < self.batch:
                try:
                    message = self._queue.get_nowait()
                except Empty:
                    break
                if message is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(message)
            try:
                self._publish(batch)
            except Exception as exc:
                log.warning("publishing to RabbitMQ failed", extra={"error": repr(exc)})
                for message in batch:
                    if not message.done.ready():
                        message.done.send(exc)

    def stop(self) -> None:
        """Let ``run`` return once it has published what was queued before."""
        self._queue.put(None)

    def close(self) -> None:
        """Close the connection (the green thread opens a new one if it publishes again)."""
        self._drop()

    def _publish(self, batch: list[_Outgoing]) -> None:
        for attempt in range(1, self.attempts + 1):
            try:
                self._publish_once(batch)
                return
            except Exception:
                # A lost connection: the unconfirmed messages go again on a new one (a repeat
                # is harmless: results are keyed by attempt, tasks carry their delivery id).
                self._drop()
                if attempt == self.attempts:
                    raise
                eventlet.sleep(0.2 * attempt)

    def _publish_once(self, batch: list[_Outgoing]) -> None:
        channel = self._ready_channel()
        # Messages that go together: combined ones per routing key, every other on its own.
        groups: dict[str, list[_Outgoing]] = {}
        for message in batch:
            if message.done.ready():
                continue  # confirmed (or refused) before the connection was lost
            if message.combine:
                groups.setdefault(message.routing_key, []).append(message)
            else:
                self._publish_one(channel, message.routing_key, message.payload, message.headers)
                self._unconfirmed[self._tag] = [message]
        for routing_key, messages in groups.items():
            payload = b"[" + b",".join(m.payload for m in messages) + b"]"
            self._publish_one(channel, routing_key, payload, {})
            self._unconfirmed[self._tag] = messages
        deadline = time.monotonic() + self.timeout
        assert self._conn is not None
        while self._unconfirmed:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise OutboundRefused(f"no confirm from the broker within {self.timeout} s")
            self._conn.drain_events(timeout=remaining)

    def _publish_one(
        self, channel: Any, routing_key: str, payload: bytes, headers: dict[str, str]
    ) -> None:
        channel.basic_publish(
            amqp.Message(
                payload,
                content_type="application/json",
                content_encoding="utf-8",
                delivery_mode=2,
                application_headers=headers or None,
            ),
            exchange=DEFAULT_EXCHANGE.name,
            routing_key=routing_key,
        )
        self._tag += 1

    def _ready_channel(self) -> Any:
        if self._channel is None:
            conn = Connection(self.amqp_uri)
            conn.ensure_connection(max_retries=3)
            channel: Any = conn.default_channel
            channel.confirm_select()
            channel.events["basic_ack"].add(self._on_ack)
            channel.events["basic_nack"].add(self._on_nack)
            self._conn, self._channel, self._tag = conn, channel, 0
            self._unconfirmed = {}
        return self._channel

    def _settled(self, tag: int, multiple: bool) -> list[_Outgoing]:
        if not multiple:
            return self._unconfirmed.pop(tag, [])
        tags = [t for t in self._unconfirmed if t <= tag]
        return [m for t in tags for m in self._unconfirmed.pop(t)]

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        for message in self._settled(delivery_tag, multiple):
            message.done.send(True)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        for message in self._settled(delivery_tag, multiple):
            message.done.send(
                OutboundRefused(f"the broker refused a message to {message.routing_key}")
            )

    def _drop(self) -> None:
        conn, self._conn, self._channel = self._conn, None, None
        if conn is not None:
            try:
                conn.release()
            except Exception:  # closing a broken connection may fail too: nothing to do
                log.debug("closing a broken AMQP connection failed", exc_info=True)


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
        self.webhooks = WebhookClient(
            timeout=settings.webhook_timeout_seconds,
            allow_loopback=settings.webhook_allow_loopback,
        )
        self._secrets: dict[str, str] = {}
        self.outbound: Outbound | None = None

    def setup(self) -> None:
        """Create the publisher once the container has its config."""
        self.outbound = Outbound(self.settings.amqp_url, self.topology)

    def start(self) -> None:
        """Start the publisher's green thread."""
        assert self.outbound is not None
        self.container.spawn_managed_thread(self.outbound.run, identifier="outbound")

    def stop(self) -> None:
        """Stop the publisher and close the kept webhook connections (workers have
        finished)."""
        if self.outbound is not None:
            self.outbound.stop()
        self.webhooks.close()

    def get_dependency(self, worker_ctx: object) -> Delivery:
        """The provider itself: it holds no per-worker state."""
        return self

    def send(self, task: DeliveryTask) -> Sent:
        """One attempt over the task's channel."""
        if task.channel == Channel.EMAIL:
            return send_email(task, self.smtp)
        return self.webhooks.post(task, self._secret(task.subscription_id))

    def _secret(self, subscription_id: str) -> str:
        # An HMAC per request otherwise; the table is dropped now and then to stay bounded.
        secret = self._secrets.get(subscription_id)
        if secret is None:
            if len(self._secrets) > 10_000:
                self._secrets.clear()
            secret = self._secrets[subscription_id] = webhook_secret(self.key, subscription_id)
        return secret

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
        self.outbound.send(self.topology.results, result.to_json(), combine=True)


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
