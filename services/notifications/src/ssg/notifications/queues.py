"""The RabbitMQ topology of delivery work, shared by the worker (which publishes tasks and
reads results) and the delivery process (which consumes tasks and publishes results).

    <prefix>.tasks        delivery tasks (JSON), consumed by the delivery workers
    <prefix>.retry.<ms>   one delay queue per backoff step: no consumer; a message expires after
                          <ms> (x-message-ttl) and is dead-lettered back to <prefix>.tasks
    <prefix>.results      one message per attempt, consumed by the worker (the delivery log)
    <prefix>.dlq          tasks whose last attempt failed, kept for an operator

All are durable classic queues written through the default exchange with persistent messages
and publisher confirms. kombu only: safe under eventlet.
"""

from __future__ import annotations

from dataclasses import dataclass

from kombu import Exchange, Queue

DEFAULT_EXCHANGE = Exchange("", type="direct")


@dataclass(frozen=True)
class Topology:
    """The queue names under one prefix and the retry delays in use."""

    prefix: str
    delays_ms: tuple[int, ...]

    @property
    def tasks(self) -> str:
        """The task queue's name."""
        return f"{self.prefix}.tasks"

    @property
    def results(self) -> str:
        """The results queue's name."""
        return f"{self.prefix}.results"

    @property
    def dlq(self) -> str:
        """The dead-letter queue's name."""
        return f"{self.prefix}.dlq"

    def retry(self, delay_ms: int) -> str:
        """The delay queue of one backoff step."""
        return f"{self.prefix}.retry.{delay_ms}"

    def queues(self) -> list[Queue]:
        """Every queue, as kombu declares it."""
        plain = [
            Queue(name, exchange=DEFAULT_EXCHANGE, routing_key=name, durable=True)
            for name in (self.tasks, self.results, self.dlq)
        ]
        delayed = [
            Queue(
                self.retry(ms),
                exchange=DEFAULT_EXCHANGE,
                routing_key=self.retry(ms),
                durable=True,
                queue_arguments={
                    "x-message-ttl": ms,
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": self.tasks,
                },
            )
            for ms in self.delays_ms
        ]
        return plain + delayed

    def declare(self, connection: object) -> None:
        """Declare every queue on a kombu connection (idempotent)."""
        channel = connection.default_channel  # type: ignore[attr-defined]
        for queue in self.queues():
            queue.bind(channel).declare()

    def names(self) -> list[str]:
        """Every queue name (tests delete them afterwards)."""
        return [q.name for q in self.queues()]
