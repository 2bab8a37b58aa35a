"""The worker's side of RabbitMQ, with kombu run off the event loop: each ``AmqpLink`` owns one
connection used from one thread of its own (kombu connections are not thread-safe)."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from kombu import Connection, Consumer
from kombu.message import Message

from ssg.notifications.queues import DEFAULT_EXCHANGE, Topology

log = logging.getLogger(__name__)
T = TypeVar("T")


def connect(url: str, topology: Topology) -> Connection:
    """A connection with publisher confirms (a publish returns once the broker has the
    message, and raises when it refuses it), the topology declared."""
    conn = Connection(url, transport_options={"confirm_publish": True}, heartbeat=0)
    conn.ensure_connection(max_retries=3)
    topology.declare(conn)
    return conn


class AmqpLink:
    """A connection and the thread that uses it."""

    def __init__(self, url: str, topology: Topology, name: str) -> None:
        self.url = url
        self.topology = topology
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._conn: Connection | None = None

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(*args) on the link's thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    def connection(self) -> Connection:
        """The open connection (opened, or reopened after a failure, on the link's thread)."""
        if self._conn is None or not self._conn.connected:
            self.drop()
            self._conn = connect(self.url, self.topology)
        return self._conn

    def drop(self) -> None:
        """Forget the connection (after an error); the next use reconnects."""
        if self._conn is not None:
            try:
                self._conn.release()
            except Exception:  # closing a broken connection may fail too: nothing to do
                log.debug("closing a broken AMQP connection failed", exc_info=True)
            self._conn = None

    def publish(self, routing_key: str, bodies: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Publish (message id, JSON body) pairs persistently to routing_key, each confirmed."""
        try:
            producer = self.connection().Producer()
            for message_id, body in bodies:
                producer.publish(
                    body,
                    exchange=DEFAULT_EXCHANGE,
                    routing_key=routing_key,
                    serializer="json",
                    delivery_mode=2,
                    message_id=message_id,
                )
        except Exception:
            self.drop()
            raise

    def queue_depth(self, name: str) -> int:
        """Messages ready in a queue (a passive declare)."""
        try:
            channel = self.connection().default_channel
            return int(channel.queue_declare(queue=name, passive=True).message_count)
        except Exception:
            self.drop()
            raise

    def consume(
        self,
        queue: str,
        on_message: Callable[[Any, Message], None],
        stop: threading.Event,
        prefetch: int = 50,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        """Consume queue until stop is set (blocking: call through ``call``); on_message acks;
        on_ready runs once the consumer is registered with the broker."""
        try:
            conn = self.connection()
            q = self.topology.queue(queue)
            with Consumer(
                conn, [q], callbacks=[on_message], accept=["json"], prefetch_count=prefetch
            ):
                if on_ready is not None:
                    on_ready()
                while not stop.is_set():
                    try:
                        conn.drain_events(timeout=0.5)
                    except TimeoutError:
                        continue
        except Exception:
            self.drop()
            raise

    def close(self) -> None:
        """Close the connection and the thread."""
        self._executor.submit(self.drop).result()
        self._executor.shutdown(wait=True)
