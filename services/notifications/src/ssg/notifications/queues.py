"""The RabbitMQ topology of delivery work, shared by the worker (which publishes tasks and
reads results) and the delivery process (which consumes tasks and publishes results).

    <prefix>.tasks        delivery tasks (JSON), consumed by the delivery workers
    <prefix>.retry.<ms>   one delay queue per backoff step: no consumer; a message expires after
                          <ms> (x-message-ttl) and is dead-lettered back to <prefix>.tasks
    <prefix>.results      one message per attempt, consumed by the worker (the delivery log)
    <prefix>.dlq          tasks whose last attempt failed, kept for an operator

All are durable queues written through the default exchange with persistent messages and
publisher confirms. kombu only: safe under eventlet.

The queue type is a setting (ADR 0041): ``classic`` (the local RabbitMQ) declares no type, as
before; ``quorum`` (Kubernetes: replicated across the cluster's nodes) declares every queue a
quorum queue, and makes each dead-lettering at-least-once (``x-dead-letter-strategy``, which needs
``x-overflow: reject-publish``): an expiring retry reaches the task queue even across a leader
change, and a task or result redelivered ``QUORUM_DELIVERY_LIMIT`` times goes to the
dead-letter queue instead of being dropped by the quorum queue's poison-message limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kombu import Exchange, Queue

DEFAULT_EXCHANGE = Exchange("", type="direct")
QUEUE_TYPES = ("classic", "quorum")
# Redeliveries of one message (a worker died holding it) before a quorum queue dead-letters it.
QUORUM_DELIVERY_LIMIT = 50


@dataclass(frozen=True)
class Topology:
    """The queue names under one prefix and the retry delays in use."""

    prefix: str
    delays_ms: tuple[int, ...]
    queue_type: str = "classic"

    def __post_init__(self) -> None:
        if self.queue_type not in QUEUE_TYPES:
            raise ValueError(f"queue type must be one of {QUEUE_TYPES}, not {self.queue_type!r}")

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

    def arguments(self, name: str) -> dict[str, Any]:
        """The declare arguments of one queue of this topology."""
        if name.startswith(f"{self.prefix}.retry."):
            delay = int(name.rsplit(".", 1)[1])
            args: dict[str, Any] = {"x-message-ttl": delay, **self._dead_letter(self.tasks)}
        elif name in (self.tasks, self.results) and self.queue_type == "quorum":
            args = {"x-delivery-limit": QUORUM_DELIVERY_LIMIT, **self._dead_letter(self.dlq)}
        else:
            args = {}
        if self.queue_type == "quorum":
            args["x-queue-type"] = "quorum"
        return args

    def _dead_letter(self, to: str) -> dict[str, Any]:
        args: dict[str, Any] = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": to}
        if self.queue_type == "quorum":
            args |= {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}
        return args

    def queue(self, name: str) -> Queue:
        """One queue with its arguments: a consumer that declares it again must match them."""
        return Queue(
            name,
            exchange=DEFAULT_EXCHANGE,
            routing_key=name,
            durable=True,
            queue_arguments=self.arguments(name) or None,
        )

    def queues(self) -> list[Queue]:
        """Every queue, as kombu declares it."""
        names = [self.tasks, self.results, self.dlq, *(self.retry(ms) for ms in self.delays_ms)]
        return [self.queue(name) for name in names]

    def declare(self, connection: object) -> None:
        """Declare every queue on a kombu connection (idempotent)."""
        channel = connection.default_channel  # type: ignore[attr-defined]
        for queue in self.queues():
            queue.bind(channel).declare()

    def names(self) -> list[str]:
        """Every queue name (tests delete them afterwards)."""
        return [q.name for q in self.queues()]
