"""A service's API and its outbox relay, running in-process for a test module.

``serving(app, policy)`` serves a bootstrapped app on 127.0.0.1:0 with the real interceptor
stack (dev tokens, its own metrics registry) and yields the server, a channel to it and the
app's database, which is dropped at the end. ``running_relay(...)`` runs ``OutboxRelay`` against
the test Kafka with short poll and lease times until the block ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

import grpc
from prometheus_client import CollectorRegistry
from pymongo import MongoClient
from pymongo.database import Database

from ssg.platform.auth.tokens import DEV_SECRET, TokenVerifier
from ssg.platform.events.relay import OutboxRelay, RelaySettings
from ssg.platform.events.topics import ensure_topics
from ssg.platform.grpc.interceptors import MethodPolicy
from ssg.platform.grpc.server import PlatformServer, ServicerRegistration, build_server
from ssg.platform.health import HealthCheck
from ssg.platform.mongo import Doc, make_client
from ssg.platform.settings import PlatformSettings
from ssg.testing.fixtures import KafkaServer

# Tests send oversized requests on purpose (to see the server refuse them cleanly).
MAX_SEND_BYTES = 32 * 1024 * 1024


class ServableApp(Protocol):
    """What a service's ``bootstrap()`` returns, as far as serving it goes."""

    @property
    def settings(self) -> PlatformSettings: ...

    @property
    def client(self) -> MongoClient[Doc] | None: ...

    def registrations(self) -> Sequence[ServicerRegistration]: ...

    def health_checks(self) -> Mapping[str, HealthCheck]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Serving:
    """A served app: its server, a channel to it and its database."""

    server: PlatformServer
    channel: grpc.aio.Channel
    db: Database[Doc]


@asynccontextmanager
async def serving(
    app: ServableApp, policy: MethodPolicy, ensure_indexes: Callable[[], None]
) -> AsyncIterator[Serving]:
    """app served on its settings' address (127.0.0.1:0 in tests) until the block ends; then
    the channel is closed, the server stopped, the app's database dropped and the app closed."""
    ensure_indexes()
    server = build_server(
        app.settings,
        app.registrations(),
        app.health_checks(),
        policy,
        TokenVerifier(DEV_SECRET),
        registry=CollectorRegistry(),
        access_log=False,
    )
    await server.start()
    # The read caches' feed runs as in the process (ADR 0014), so every test of the API also
    # reads through the caches once they are current.
    feed = getattr(app, "cache_feed", None)
    stop = asyncio.Event()
    following = asyncio.create_task(feed.run(stop)) if feed is not None else None
    channel = grpc.aio.insecure_channel(
        server.address, options=[("grpc.max_send_message_length", MAX_SEND_BYTES)]
    )
    client = app.client
    assert client is not None, "serving() needs an app on MongoDB"
    try:
        yield Serving(server, channel, client.get_default_database())
    finally:
        await channel.close()
        await server.stop(0)
        stop.set()
        if following is not None:
            await following
        client.drop_database(client.get_default_database().name)
        aclose = getattr(app, "aclose", None)  # an app with an asyncio read client closes it
        if aclose is not None:
            await aclose()
        app.close()


@asynccontextmanager
async def running_relay(
    service: str, mongodb_uri: str, kafka: KafkaServer, topics: Sequence[str]
) -> AsyncIterator[OutboxRelay]:
    """The outbox relay of the database at mongodb_uri, publishing to kafka (topics created
    with 3 partitions) until the block ends."""
    await ensure_topics(kafka.bootstrap, topics, partitions=3)
    settings = RelaySettings(
        service=service,
        mongodb_uri=mongodb_uri,
        kafka_bootstrap=kafka.bootstrap,
        kafka_local_profile=kafka.local,
        outbox_poll_seconds=0.05,
        outbox_lease_seconds=3.0,
        outbox_publish_timeout_seconds=1.0,
    )
    client = make_client(settings)
    relay = OutboxRelay.from_settings(settings, client)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        yield relay
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
        client.close()
