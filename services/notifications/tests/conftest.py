"""Fixtures for the notifications tests: the real API on a real MongoDB; for the delivery
tests also Kafka, the machine's RabbitMQ (queues under a unique prefix, deleted afterwards),
an SMTP server and an HTTP receiver, the worker in-process and the nameko delivery worker
as a process of its own (so a test can kill it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
from kombu import Connection

from ssg.contracts.notifications.v1 import notifications_service_pb2_grpc as pb_grpc
from ssg.notifications.bootstrap import POLICY, App, bootstrap
from ssg.notifications.settings import NotificationsSettings
from ssg.notifications.worker import topology
from ssg.platform.auth.tokens import DEV_SECRET, DevTokenIssuer, Role
from ssg.platform.settings import load_settings
from ssg.testing.receivers import HttpSink, SmtpSink
from ssg.testing.services import serving

ISSUER = DevTokenIssuer()


def token_metadata(subject: str, *roles: Role, org: str = "") -> tuple[tuple[str, str], ...]:
    """gRPC metadata carrying a dev token."""
    token = ISSUER.issue(subject, roles or (Role.PUBLIC,), organization_id=org, instance="global")
    return (("authorization", f"Bearer {token}"),)


def make_settings(mongodb_uri: str, **extra: object) -> NotificationsSettings:
    """Test settings: loopback webhooks allowed, fast retries, no digest timer."""
    values: dict[str, object] = dict(
        instance_id="test-notifications",
        grpc_host="127.0.0.1",
        grpc_port=0,
        metrics_port=0,
        mongodb_uri=mongodb_uri,
        jwt_secret=DEV_SECRET,
        signing_key="test-signing-key-0123456789",
        webhook_allow_loopback=True,
        health_interval_seconds=0.2,
        digest_interval_seconds=0,
        retry_attempts=3,
        retry_base_ms=200,
        retry_multiplier=2,
        dispatch_idle_seconds=0.05,
    )
    values.update(extra)
    return load_settings(NotificationsSettings, **values)


@dataclass
class Served:
    """A running API."""

    app: App
    stub: pb_grpc.NotificationServiceStub


@pytest.fixture(scope="module")
def settings(mongodb_server) -> NotificationsSettings:
    """API settings on a database of the module's own."""
    return make_settings(mongodb_server.uri(f"notifications-{uuid.uuid4().hex[:8]}"))


@pytest.fixture(scope="module")
async def served(settings: NotificationsSettings) -> AsyncIterator[Served]:
    """The API on 127.0.0.1 with the real interceptor stack."""
    app = bootstrap(settings)
    async with serving(app, POLICY, app.store.ensure_indexes) as running:
        yield Served(app, pb_grpc.NotificationServiceStub(running.channel))


@pytest.fixture
def auth():
    """token_metadata(subject, *roles, org=)."""
    return token_metadata


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpSink]:
    """An SMTP server on 127.0.0.1."""
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture(scope="module")
def http_sink() -> Iterator[HttpSink]:
    """A webhook receiver on 127.0.0.1."""
    sink = HttpSink()
    yield sink
    sink.stop()


def delete_queues(amqp_url: str, settings: NotificationsSettings) -> None:
    """Remove the queues a test's prefix created."""
    with Connection(amqp_url) as conn:
        channel = conn.default_channel
        for name in topology(settings).names():
            channel.queue_delete(name)


class DeliveryProcess:
    """``python -m ssg.notifications.delivery`` with the test's settings, stopped by PID."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start a fresh worker process."""
        with open(self.env["SSG_TEST_LOG"], "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-W", "ignore", "-m", "ssg.notifications.delivery"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        """SIGKILL: no chance to finish or acknowledge anything."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.kill()


def delivery_env(settings: NotificationsSettings, tmp_log: str) -> dict[str, str]:
    """The environment of a delivery process with settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSG_")}
    fields = {
        "SSG_AMQP_URL": settings.amqp_url,
        "SSG_SIGNING_KEY": settings.signing_key,
        "SSG_QUEUE_PREFIX": settings.queue_prefix,
        "SSG_RETRY_ATTEMPTS": str(settings.retry_attempts),
        "SSG_RETRY_BASE_MS": str(settings.retry_base_ms),
        "SSG_RETRY_MULTIPLIER": str(settings.retry_multiplier),
        "SSG_SMTP_HOST": settings.smtp_host,
        "SSG_SMTP_PORT": str(settings.smtp_port),
        "SSG_SMTP_TIMEOUT_SECONDS": str(settings.smtp_timeout_seconds),
        "SSG_WEBHOOK_ALLOW_LOOPBACK": "true" if settings.webhook_allow_loopback else "false",
        "SSG_WEBHOOK_TIMEOUT_SECONDS": "5",
        "SSG_METRICS_PORT": "0",
        "SSG_LOG_LEVEL": "INFO",
        "SSG_TEST_LOG": tmp_log,
    }
    env.update(fields)
    return env
