"""Throw-away RabbitMQ vhosts and users for tests, made with ``rabbitmqctl`` and deleted after.

A test that needs several RabbitMQ users (e.g. to check who may publish what) or a clean set of
exchange and queue names gets a vhost of its own on the machine's RabbitMQ; nothing it declares
outlives it.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit


class RabbitCtlError(RuntimeError):
    """rabbitmqctl failed; the message carries its output."""


def rabbitmqctl(*args: str, timeout: float = 60) -> str:
    """Run ``rabbitmqctl -q args`` and return its output; RabbitCtlError if it fails."""
    binary = shutil.which("rabbitmqctl")
    if binary is None:
        raise RabbitCtlError("rabbitmqctl is not installed (make install adds rabbitmq-server)")
    done = subprocess.run(
        [binary, "-q", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RabbitCtlError(f"rabbitmqctl {' '.join(args)}: {done.stderr or done.stdout}")
    return done.stdout


@dataclass
class Vhost:
    """A vhost of a test's own; ``url(user)`` is an AMQP URL into it."""

    name: str
    base_url: str
    passwords: dict[str, str] = field(default_factory=dict)

    def url(self, user: str | None = None) -> str:
        """AMQP URL of this vhost as user (default: the base URL's user)."""
        parts = urlsplit(self.base_url)
        name = user or parts.username or "guest"
        password = self.passwords.get(name, parts.password or "")
        host = f"{parts.hostname}:{parts.port or 5672}"
        return f"amqp://{quote(name, safe='')}:{quote(password, safe='')}@{host}/{quote(self.name, safe='')}"

    def add_user(self, stem: str) -> str:
        """A new user allowed everything in this vhost; its (unique) name."""
        name = f"{stem}-{uuid.uuid4().hex[:8]}"
        password = uuid.uuid4().hex
        rabbitmqctl("add_user", name, password)
        rabbitmqctl("set_permissions", "-p", self.name, name, ".*", ".*", ".*")
        self.passwords[name] = password
        return name

    def connections(self) -> int:
        """How many client connections this vhost has now."""
        lines = rabbitmqctl("list_connections", "vhost").splitlines()
        return sum(1 for line in lines if line.strip() == self.name)

    def queue_depths(self) -> dict[str, int]:
        """Ready plus unacknowledged messages of every queue in this vhost, by queue name."""
        depths = {}
        for line in rabbitmqctl("list_queues", "-p", self.name, "name", "messages").splitlines():
            name, _, count = line.rpartition("\t")
            if name and count.strip().isdigit():
                depths[name] = int(count)
        return depths

    def close_connections(self, reason: str = "closed by test") -> int:
        """Close every client connection to this vhost (the broker side of a network drop)."""
        closed = 0
        for line in rabbitmqctl("list_connections", "pid", "vhost").splitlines():
            pid, _, vhost = line.partition("\t")
            if vhost.strip() == self.name and pid.startswith("<"):
                rabbitmqctl("close_connection", pid.strip(), reason)
                closed += 1
        return closed


@contextmanager
def temporary_vhost(base_url: str, stem: str = "ssg-test") -> Iterator[Vhost]:
    """A fresh vhost that the base URL's user may use; deleted with its users afterwards."""
    vhost = Vhost(f"{stem}-{uuid.uuid4().hex[:8]}", base_url)
    user = urlsplit(base_url).username or "guest"
    rabbitmqctl("add_vhost", vhost.name)
    try:
        rabbitmqctl("set_permissions", "-p", vhost.name, user, ".*", ".*", ".*")
        yield vhost
    finally:
        for name in vhost.passwords:
            subprocess.run(
                [shutil.which("rabbitmqctl") or "rabbitmqctl", "-q", "delete_user", name],
                capture_output=True,
                check=False,
            )
        rabbitmqctl("delete_vhost", vhost.name)
