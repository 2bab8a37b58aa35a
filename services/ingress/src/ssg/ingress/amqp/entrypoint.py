"""A nameko entrypoint that hands runs of raw AMQP messages of the ingress queues to the service.

The deliveries already read (up to ``RUN_MAX``, never waiting for one that has not arrived) go
to one worker, which settles each message on its own (ADR 0025, amendment).

nameko's own ``Consumer`` decodes bodies by content type before the service sees them (a body
it cannot decode stops the consumer) and hides the message properties; the bridge needs the
raw bytes and ``user_id``/``message_id``. Acknowledgement follows each message's result: acked
once handled (forwarded, duplicate or dead-lettered), put back after a pause when it failed
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


# Deliveries handed to one worker at most; below the prefetch (the worker count, 16 by
# default) so that a second run is read while the first one waits for Kafka.
RUN_MAX = 8


_METHOD_FRAME = 1


def _more_arrived(message: Message) -> bool:
    """True when the next frame after message, already in the read buffer, starts a method."""
    transport = getattr(message.channel.connection, "transport", None)
    buffer: bytes = getattr(transport, "_read_buffer", b"")
    # The buffer starts at a frame boundary once a delivery is read. A heartbeat there would
    # send the next read on to the socket (py-amqp reads on until a method), leaving the run
    # waiting for the next delivery or the consume loop's timeout: hand the run over instead.
    return bool(buffer) and buffer[0] == _METHOD_FRAME


class IngressQueues(QueueConsumer):
    """nameko's shared queue consumer: raw messages, acks by handled runs, connection reports."""

    def __init__(self) -> None:
        super().__init__()
        # Delivery tags are per channel; after a reconnection the new channel starts them again
        # and the broker redelivers what the lost one held, so its window is dropped.
        self._windows: dict[Any, AckWindow] = {}
        # Deliveries read but not yet given to a worker (a run), and the longest run.
        self._run: list[tuple[IngressEntrypoint, Message]] = []
        self._run_max = RUN_MAX

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
        self._run = []  # the lost channel's deliveries come again
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
        self._run.append((provider, message))
        self._start_run()

    def _start_run(self) -> None:
        """Hand the collected deliveries to a worker, unless more have already arrived."""
        run = self._run
        if not run:
            return
        if len(run) < self._run_max and _more_arrived(run[-1][1]):
            return  # read them first: on_iteration comes back here once they are read
        self._run = []
        by_provider: dict[IngressEntrypoint, list[Message]] = {}
        for provider, message in run:
            by_provider.setdefault(provider, []).append(message)
        for provider, messages in by_provider.items():
            # The prefetch (the worker count) bounds the deliveries, so a worker is free.
            if self.container._worker_pool.free():
                provider.handle_messages(messages)
            else:
                self.container.spawn_managed_thread(partial(provider.handle_messages, messages))

    def on_iteration(self) -> None:
        """Before each read: start a run whose deliveries are all read."""
        self._start_run()
        super().on_iteration()

    def ack_message(self, message: Message) -> None:
        """message was handled: acknowledge its channel's handled run once a batch is ready."""
        window = self._windows.get(message.channel)
        if window is not None:  # else its channel is gone and the broker delivers it again
            self._ack(message.channel, window.handled(message.delivery_tag))

    def ack_messages(self, messages: list[Message]) -> None:
        """messages (one channel's) were handled: one multiple ack when a batch is ready."""
        if not messages:
            return
        channel = messages[0].channel
        window = self._windows.get(channel)
        if window is not None:
            self._ack(channel, window.handled_run([m.delivery_tag for m in messages]))

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
    """Calls the decorated method with a list of ``Incoming``, a run of the ingress queues' messages."""

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

    def handle_messages(self, messages: list[Message]) -> None:
        """Spawn one worker for a run of messages (put them back if the container is going away)."""
        handle_result = partial(self.handle_result, messages)
        try:
            self.container.spawn_worker(
                self,
                ([incoming(m) for m in messages],),
                {},
                context_data={},
                handle_result=handle_result,
            )
        except ContainerBeingKilled:
            for message in messages:
                self.queue_consumer.requeue_message(message)

    def handle_result(
        self,
        messages: list[Message],
        worker_ctx: WorkerContext,
        result: object = None,
        exc_info: object = None,
    ) -> tuple[object, object]:
        """Ack the handled messages; put back, after a pause, those whose handling failed."""
        outcomes = result if exc_info is None and isinstance(result, list) else []
        if len(outcomes) != len(messages):
            outcomes = [RuntimeError("the run failed")] * len(messages)
        failed = [
            m for m, o in zip(messages, outcomes, strict=True) if isinstance(o, BaseException)
        ]
        self.queue_consumer.ack_messages(
            [m for m, o in zip(messages, outcomes, strict=True) if not isinstance(o, BaseException)]
        )
        if failed:
            eventlet.sleep(float(self.container.config.get(REQUEUE_DELAY_KEY, 1.0)))
            for message in failed:
                self.queue_consumer.requeue_message(message)
        return result, exc_info


ingress_messages = IngressEntrypoint.decorator
