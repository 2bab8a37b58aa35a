"""A nameko entrypoint that hands each raw AMQP message of the ingress queues to the service.

nameko's own ``Consumer`` decodes bodies by content type before the service sees them (a body
it cannot decode stops the consumer) and hides the message properties; the bridge needs the
raw bytes and ``user_id``/``message_id``. Acknowledgement follows the worker's result: acked
once it returned (forwarded, duplicate or dead-lettered), put back after a pause when it raised
(Kafka or the dead-letter exchange unavailable), so nothing is lost and an outage does not spin.
Handled deliveries are acknowledged a run at a time, with one ``multiple`` ack for a contiguous
run of delivery tags that were all handled (``acks.AckWindow``, ADR 0025).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import partial
from typing import Any

import eventlet
from amqp.exceptions import ConnectionError as AmqpConnectionError
from kombu import Connection, Queue
from kombu import Consumer as KombuConsumer
from kombu.message import Message
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY,
    DEFAULT_HEARTBEAT,
    DEFAULT_TRANSPORT_OPTIONS,
    HEARTBEAT_CONFIG_KEY,
    LOGIN_METHOD_CONFIG_KEY,
    TRANSPORT_OPTIONS_CONFIG_KEY,
)
from nameko.containers import WorkerContext
from nameko.exceptions import ContainerBeingKilled
from nameko.extensions import Entrypoint
from nameko.messaging import QueueConsumer

from ssg.ingress.amqp import topology
from ssg.ingress.amqp.acks import AckWindow
from ssg.ingress.amqp.transport import ChunkedKombuTransport
from ssg.ingress.config import ACK_BATCH_KEY, HEALTH_KEY, REQUEUE_DELAY_KEY
from ssg.ingress.domain.admission import Incoming
from ssg.ingress.health import Health
from ssg.platform.tracing import TRACE_METADATA_KEY

log = logging.getLogger(__name__)


def incoming(message: Message) -> Incoming:
    """The bridge's view of a kombu message."""
    properties = message.properties
    headers = dict(message.headers or {})
    trace = headers.get(TRACE_METADATA_KEY)
    return Incoming(
        routing_key=str(message.delivery_info.get("routing_key", "")),
        body=bytes(message.body or b""),
        content_type=message.content_type or None,
        user_id=_text(properties.get("user_id")),
        message_id=_text(properties.get("message_id")),
        trace_id=_text(trace),
        received_at=datetime.now(UTC),
        headers=headers,
    )


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


class IngressQueues(QueueConsumer):
    """nameko's shared queue consumer: raw messages, acks by handled runs, connection reports."""

    def __init__(self) -> None:
        super().__init__()
        # Delivery tags are per channel; after a reconnection the new channel starts them again
        # and the broker redelivers what the lost one held, so its window is dropped.
        self._windows: dict[Any, AckWindow] = {}

    @property
    def connection(self) -> Connection:
        """nameko's consuming connection, over a transport that reads the socket in chunks."""
        config = self.container.config
        return Connection(
            self.amqp_uri,
            transport=ChunkedKombuTransport,
            transport_options=config.get(TRANSPORT_OPTIONS_CONFIG_KEY, DEFAULT_TRANSPORT_OPTIONS),
            heartbeat=config.get(HEARTBEAT_CONFIG_KEY, DEFAULT_HEARTBEAT),
            ssl=config.get(AMQP_SSL_CONFIG_KEY),
            login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
        )

    def get_consumers(
        self, consumer_cls: Callable[..., KombuConsumer], channel: Any
    ) -> Iterable[KombuConsumer]:
        """One kombu consumer per provider over its queues, without decoding bodies."""
        # A new channel: forget the lost one's tags before anything is delivered (deliveries
        # start while the consumers are still being declared, before on_consume_ready).
        self._windows = {}
        for provider in self._providers:
            consumer = consumer_cls(
                queues=provider.queues, on_message=partial(self._on_raw_message, provider)
            )
            consumer.qos(prefetch_count=self.prefetch_count)
            self._consumers[provider] = consumer
        return self._consumers.values()

    def _on_raw_message(self, provider: IngressEntrypoint, message: Message) -> None:
        window = self._windows.get(message.channel)
        if window is None:
            batch = int(self.container.config.get(ACK_BATCH_KEY, 1))
            window = self._windows[message.channel] = AckWindow(batch)
        window.received(message.delivery_tag)
        # nameko starts a green thread per message only to start the worker from it, so that a
        # full worker pool never blocks this loop; while a worker is free, start it from here.
        if self.container._worker_pool.free():
            provider.handle_message(message.body, message)
        else:
            self.handle_message(provider, message.body, message)

    def ack_message(self, message: Message) -> None:
        """message was handled: acknowledge its channel's handled run once a batch is ready."""
        window = self._windows.get(message.channel)
        if window is not None:  # else its channel is gone and the broker delivers it again
            self._ack(message.channel, window.handled(message.delivery_tag))

    def requeue_message(self, message: Message) -> None:
        """Put message back on its own (basic.reject with requeue); it no longer holds the run."""
        super().requeue_message(message)
        window = self._windows.get(message.channel)
        if window is not None:
            self._ack(message.channel, window.put_back(message.delivery_tag))

    def _ack(self, channel: Any, up_to: int | None) -> None:
        # Only on a live channel: a lost one's deliveries are redelivered by the broker anyway.
        if up_to is not None and channel.connection:
            with contextlib.suppress(AmqpConnectionError, OSError):
                channel.basic_ack(up_to, multiple=True)

    def _health(self) -> Health:
        health: Health = self.container.config.get(HEALTH_KEY) or Health()
        return health

    def on_consume_ready(
        self, connection: Connection, channel: Any, consumers: Any, **kw: Any
    ) -> None:
        """Consuming (again): report the broker as reachable."""
        self._health().amqp_ready = True
        log.info("consuming ingress queues")
        super().on_consume_ready(connection, channel, consumers, **kw)

    def on_connection_error(self, exc: Exception, interval: float) -> None:
        """Lost the broker: report it, kombu reconnects."""
        self._health().amqp_ready = False
        log.warning("RabbitMQ connection lost, reconnecting", extra={"error": str(exc)})


class IngressEntrypoint(Entrypoint):
    """Calls the decorated method with an ``Incoming`` for every message of the ingress queues."""

    queue_consumer = IngressQueues()

    def setup(self) -> None:
        """Declare the topology, then register with the shared consumer."""
        with Connection(self.container.config["AMQP_URI"]) as connection:
            connection.ensure_connection(max_retries=None, interval_start=1, interval_max=5)
            topology.declare(connection)
        self.queues: list[Queue] = topology.consumed_queues()
        self.queue_consumer.register_provider(self)

    def stop(self) -> None:
        """Stop consuming (the shared consumer waits for pending acks)."""
        self.queue_consumer.unregister_provider(self)

    def handle_message(self, body: bytes, message: Message) -> None:
        """Spawn a worker for the message (put it back if the container is going away)."""
        handle_result = partial(self.handle_result, message)
        try:
            self.container.spawn_worker(
                self, (incoming(message),), {}, context_data={}, handle_result=handle_result
            )
        except ContainerBeingKilled:
            self.queue_consumer.requeue_message(message)

    def handle_result(
        self,
        message: Message,
        worker_ctx: WorkerContext,
        result: object = None,
        exc_info: object = None,
    ) -> tuple[object, object]:
        """Ack a handled message; put back, after a pause, one whose handling raised."""
        if exc_info is None:
            self.queue_consumer.ack_message(message)
        else:
            eventlet.sleep(float(self.container.config.get(REQUEUE_DELAY_KEY, 1.0)))
            self.queue_consumer.requeue_message(message)
        return result, exc_info


ingress_messages = IngressEntrypoint.decorator
