"""Fixtures of the bridge tests: a vhost of their own with producer users, a running bridge."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ssg.ingress.domain.catalogue import CATALOGUE
from ssg.testing.rabbitmq import Vhost, temporary_vhost

from .helpers import Bridge, running_bridge


@dataclass(frozen=True)
class Producers:
    """RabbitMQ users of the tests: one allowed every type, one a single type, one unknown."""

    everything: str
    experts_only: str
    stranger: str

    def config(self) -> dict[str, list[str]]:
        """SSG_PRODUCERS for these users (the stranger is not configured)."""
        return {self.everything: sorted(CATALOGUE), self.experts_only: ["expert.profile"]}


@pytest.fixture(scope="module")
def vhost(amqp_url: str) -> Iterator[Vhost]:
    """A vhost of this module's own on the machine's RabbitMQ."""
    with temporary_vhost(amqp_url, "ssg-test-ingress") as made:
        yield made


@pytest.fixture(scope="module")
def producers(vhost: Vhost) -> Producers:
    """Three producer users in the vhost."""
    return Producers(
        vhost.add_user("t-pm-system"), vhost.add_user("t-hr-roster"), vhost.add_user("t-stranger")
    )


@pytest.fixture(scope="module")
def bridge(
    server_workdir: Path, vhost: Vhost, producers: Producers, kafka_server
) -> Iterator[Bridge]:
    """A bridge on the vhost and the session's Kafka: 4 KiB bodies, 3 KiB produce requests."""
    with running_bridge(
        server_workdir,
        vhost.url(),
        kafka_server.bootstrap,
        producers.config(),
        max_body_bytes="4096",
        kafka_max_request_bytes="3072",
    ) as running:
        yield running
