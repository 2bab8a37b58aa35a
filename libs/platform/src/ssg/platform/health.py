"""Dependency checks for the health service: async callables that return when a dependency answers.

A check raises (any exception) when its dependency is unreachable; the server's health poller
runs each with a timeout, so a check never needs to bound its own total run time, but every
check here also uses short client-side timeouts so that no thread or socket lingers.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from ssg.platform.mongo import run_sync

HealthCheck = Callable[[], Awaitable[None]]
"""An async dependency check: returns None when healthy, raises when not."""


class DependencyDown(Exception):
    """A dependency check failed; the message names the dependency and why."""


def mongodb_check(uri: str, timeout_seconds: float = 1.0) -> HealthCheck:
    """Check that MongoDB answers ``ping`` (the client is created once and reused)."""
    import pymongo

    timeout_ms = max(1, int(timeout_seconds * 1000))
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
        uri,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=timeout_ms,
        # Created at start-up, long before the first ping: do not block the event loop.
        connect=False,
    )

    def ping() -> None:
        client.admin.command("ping")

    async def check() -> None:
        # pymongo is synchronous: run it in a thread so the event loop keeps serving calls.
        await run_sync(ping)

    return check


def kafka_check(bootstrap: str, timeout_seconds: float = 1.0) -> HealthCheck:
    """Check that at least one Kafka bootstrap broker accepts a TCP connection."""
    addresses = [_host_port(part.strip(), 9092) for part in bootstrap.split(",") if part.strip()]
    if not addresses:
        raise ValueError("kafka_check needs at least one bootstrap address")

    async def check() -> None:
        errors: list[str] = []
        for host, port in addresses:
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port), timeout_seconds
                )
            except (OSError, TimeoutError) as exc:
                errors.append(f"{host}:{port}: {exc or type(exc).__name__}")
                continue
            writer.close()
            await writer.wait_closed()
            return
        raise DependencyDown("kafka unreachable: " + "; ".join(errors))

    return check


def opensearch_check(url: str, timeout_seconds: float = 1.0) -> HealthCheck:
    """Check that OpenSearch answers its root endpoint with a 2xx status."""
    root = url.rstrip("/") + "/"

    def get() -> None:
        with urllib.request.urlopen(root, timeout=timeout_seconds) as response:
            if not 200 <= int(response.status) < 300:
                raise DependencyDown(f"opensearch answered HTTP {response.status}")

    async def check() -> None:
        await asyncio.to_thread(get)

    return check


def _host_port(address: str, default_port: int) -> tuple[str, int]:
    """Split ``host:port`` (or ``[v6]:port``) into its parts."""
    parsed = urlsplit("//" + address)
    if parsed.hostname is None:
        raise ValueError(f"not a host:port address: {address!r}")
    return parsed.hostname, parsed.port or default_port
