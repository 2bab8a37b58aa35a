"""The RabbitMQ topology the bridge declares on start (declaring is idempotent).

``ssg.ingress`` (topic) routes each external type to its own durable queue; a routing key no
queue is bound to goes to the alternate exchange and its ``unrouted`` queue, which the bridge
also consumes so that such a message is dead-lettered with a reason instead of vanishing.
Rejected messages are republished by the bridge to the dead-letter exchange with the reason in
headers; the type queues also name that exchange so the broker's own dead-lettering (a
message rejected without requeue) lands in the same place.
"""

from __future__ import annotations

from collections.abc import Iterable

from kombu import Connection, Exchange, Queue

from ssg.ingress.domain.catalogue import CATALOGUE

EXCHANGE = "ssg.ingress"
UNROUTED = "ssg.ingress.unrouted"
DEAD_LETTER = "ssg.ingress.dead-letter"

exchange = Exchange(EXCHANGE, "topic", durable=True, arguments={"alternate-exchange": UNROUTED})
unrouted_exchange = Exchange(UNROUTED, "fanout", durable=True)
dead_letter_exchange = Exchange(DEAD_LETTER, "fanout", durable=True)


def queue_name(routing_key: str) -> str:
    """The queue of one external type, e.g. ``ssg.ingress.solution.proposed``."""
    return f"{EXCHANGE}.{routing_key}"


def type_queues(routing_keys: Iterable[str] = CATALOGUE) -> list[Queue]:
    """One durable queue per external type, bound by its routing key."""
    return [
        Queue(
            queue_name(key),
            exchange,
            routing_key=key,
            durable=True,
            queue_arguments={"x-dead-letter-exchange": DEAD_LETTER},
        )
        for key in routing_keys
    ]


unrouted_queue = Queue(
    UNROUTED,
    unrouted_exchange,
    durable=True,
    queue_arguments={"x-dead-letter-exchange": DEAD_LETTER},
)
dead_letter_queue = Queue(DEAD_LETTER, dead_letter_exchange, durable=True)


def consumed_queues() -> list[Queue]:
    """The queues the bridge consumes: every type queue and the unrouted queue."""
    return [*type_queues(), unrouted_queue]


def declare(connection: Connection) -> None:
    """Declare the exchanges, queues and bindings (the dead-letter side first)."""
    channel = connection.channel()
    try:
        for named in (dead_letter_exchange, unrouted_exchange, exchange):
            named.bind(channel).declare()
        for queue in (dead_letter_queue, unrouted_queue, *type_queues()):
            queue.bind(channel).declare()
    finally:
        channel.close()
