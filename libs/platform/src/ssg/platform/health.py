"""Dependency checks for the health service: async callables that return when a dependency answers.

A check raises (any exception) when its dependency is unreachable; the server's health poller
runs each with a timeout, so a check never needs to bound its own total run time, but every
check here also uses short client-side timeouts so that no thread or socket lingers.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ssg.platform.mongo import Doc, run_sync
from ssg.platform.settings import PlatformSettings

if TYPE_CHECKING:
    from pymongo import AsyncMongoClient

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


def read_client_check(client: AsyncMongoClient[Doc], timeout_seconds: float = 1.0) -> HealthCheck:
    """Check that MongoDB answers ``ping`` through the service's asyncio read client, so that
    health also reflects the client the Get calls use (not only the server)."""
    import pymongo

    async def check() -> None:
        with pymongo.timeout(timeout_seconds):
            await client.admin.command("ping")

    return check


def mongodb_checks(
    settings: PlatformSettings, read_client: AsyncMongoClient[Doc] | None
) -> dict[str, HealthCheck]:
    """An API's MongoDB check: through its asyncio read client when it has one, else a ping of
    its own; none without SSG_MONGODB_URI."""
    if read_client is not None:
        return {"mongodb": read_client_check(read_client)}
    if settings.mongodb_uri:
        return {"mongodb": mongodb_check(settings.mongodb_uri)}
    return {}


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


def opensearch_check(settings: PlatformSettings, timeout_seconds: float = 1.0) -> HealthCheck:
    """Check that OpenSearch answers its root endpoint, with the configured credentials and CA.

    The reason of a failure names what an operator fixes: refused credentials, an untrusted
    certificate, an HTTP status, or no connection.
    """
    from opensearchpy.exceptions import (
        AuthenticationException,
        AuthorizationException,
        ConnectionError,
        TransportError,
    )

    from ssg.platform.opensearch import opensearch_client

    opensearch_client(settings)  # fail fast at start-up on a bad configuration

    async def check() -> None:
        # A client per check: each round proves the TLS handshake and the credentials afresh.
        client = opensearch_client(settings, timeout_seconds=timeout_seconds)
        try:
            await client.info()
        except AuthenticationException:
            raise DependencyDown("opensearch refused the credentials (HTTP 401)") from None
        except AuthorizationException:
            raise DependencyDown("opensearch denied the user access (HTTP 403)") from None
        except ConnectionError as exc:
            raise DependencyDown(f"opensearch unreachable: {_connection_reason(exc)}") from None
        except TransportError as exc:
            raise DependencyDown(f"opensearch answered HTTP {exc.status_code}") from None
        finally:
            await client.close()

    return check


def _connection_reason(exc: Exception) -> str:
    """Why a connection failed, certificate problems called out as such."""
    cause: BaseException | None = getattr(exc, "info", None) or exc.__cause__
    for _ in range(5):
        if cause is None:
            break
        # aiohttp wraps the ssl error (and subclasses ssl's types itself): unwrap first.
        inner = getattr(cause, "certificate_error", None) or getattr(cause, "os_error", None)
        if isinstance(inner, BaseException):
            cause = inner
            continue
        if isinstance(cause, ssl.SSLCertVerificationError):
            detail = getattr(cause, "verify_message", "") or cause
            return f"TLS certificate not trusted ({detail})"
        if isinstance(cause, ssl.SSLError):
            return f"TLS failed ({cause.reason or cause})"
        cause = cause.__cause__
    return str(getattr(exc, "error", "") or exc)


def _host_port(address: str, default_port: int) -> tuple[str, int]:
    """Split ``host:port`` (or ``[v6]:port``) into its parts."""
    parsed = urlsplit("//" + address)
    if parsed.hostname is None:
        raise ValueError(f"not a host:port address: {address!r}")
    return parsed.hostname, parsed.port or default_port
