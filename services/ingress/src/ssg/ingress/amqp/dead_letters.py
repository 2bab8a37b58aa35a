"""Republish a rejected message to the dead-letter exchange with the reason in its headers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kombu import Connection
from kombu.pools import producers
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.extensions import DependencyProvider

from ssg.ingress.amqp.topology import dead_letter_exchange
from ssg.ingress.domain.admission import Incoming, Rejected

REASON = "x-ssg-reason"
DETAIL = "x-ssg-detail"
PRODUCER = "x-ssg-producer"
ROUTING_KEY = "x-ssg-routing-key"
REJECTED_AT = "x-ssg-rejected-at"


def dead_letter_headers(message: Incoming, rejected: Rejected) -> dict[str, Any]:
    """The headers a dead-lettered copy carries: why, who sent it, where it was going."""
    return {
        **dict(message.headers),
        REASON: str(rejected.reason),
        DETAIL: rejected.detail[:1000],
        # The copy is published by the bridge, so the producer cannot stay in user_id.
        PRODUCER: message.user_id or "",
        ROUTING_KEY: message.routing_key[:255],
        REJECTED_AT: datetime.now(UTC).isoformat(),
    }


class DeadLetterPublisher:
    """Publishes with publisher confirms: a return means the broker has the copy."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def publish(self, message: Incoming, rejected: Rejected) -> None:
        """Send message's body to the dead-letter exchange with the reason headers."""
        with producers[self._connection].acquire(block=True, timeout=30) as producer:
            producer.publish(
                message.body,
                exchange=dead_letter_exchange,
                routing_key=message.routing_key[:255],
                headers=dead_letter_headers(message, rejected),
                content_type=message.content_type or "application/octet-stream",
                content_encoding="binary",
                message_id=message.message_id,
                delivery_mode=2,
                retry=True,
                retry_policy={"max_retries": 3, "interval_start": 0.5, "interval_step": 1},
            )


class DeadLetters(DependencyProvider):
    """Gives workers the dead-letter publisher (one connection pool per container)."""

    def setup(self) -> None:
        """Prepare the confirming connection (opened on first use)."""
        self._connection = Connection(
            self.container.config[AMQP_URI_CONFIG_KEY],
            transport_options={"confirm_publish": True},
        )
        self.publisher = DeadLetterPublisher(self._connection)

    def stop(self) -> None:
        """Close the pooled connections."""
        producers[self._connection].force_close_all()

    def get_dependency(self, worker_ctx: object) -> DeadLetterPublisher:
        """The publisher."""
        return self.publisher
