"""What ``/healthz`` reports: RabbitMQ consumption and Kafka reachability."""

from __future__ import annotations

import socket
from dataclasses import dataclass


@dataclass
class Health:
    """Flags the extensions set; ``healthy`` also probes Kafka's bootstrap address."""

    amqp_ready: bool = False
    kafka_bootstrap: str = ""

    def kafka_reachable(self, timeout: float = 0.5) -> bool:
        """True when a bootstrap broker accepts a TCP connection."""
        for address in filter(None, (a.strip() for a in self.kafka_bootstrap.split(","))):
            host, _, port = address.rpartition(":")
            try:
                with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
                    return True
            except (OSError, ValueError):
                continue
        return False

    def healthy(self) -> bool:
        """Consuming from RabbitMQ and Kafka reachable."""
        return self.amqp_ready and self.kafka_reachable()
