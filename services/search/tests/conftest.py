"""Fixtures for the search tests: settings on the session's Tansu and osmem, an OpenSearch
client, indices under a prefix of the test's own, and a producer of source events."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import grpc
import pytest
from aiokafka import AIOKafkaProducer
from opensearchpy import AsyncOpenSearch
from prometheus_client import CollectorRegistry

from ssg.contracts.events.v1 import envelope_pb2
from ssg.contracts.search.v1 import search_service_pb2_grpc as pb_grpc
from ssg.platform.auth.tokens import DEV_SECRET, TokenVerifier
from ssg.platform.events.kafka import producer_options
from ssg.platform.grpc.server import PlatformServer, build_server
from ssg.platform.settings import load_settings
from ssg.search.bootstrap import POLICY, App, bootstrap
from ssg.search.settings import SearchSettings
from ssg.search.store.indices import ensure_indices
from ssg.testing.waiting import eventually


def search_settings(kafka_server, opensearch_url: str, **overrides: object) -> SearchSettings:
    """Settings for one test: its own index prefix and consumer group."""
    suffix = uuid.uuid4().hex[:8]
    values: dict[str, object] = {
        "instance_id": "test-search",
        "grpc_host": "127.0.0.1",
        "grpc_port": 0,
        "metrics_port": 0,
        "kafka_bootstrap": kafka_server.bootstrap,
        "kafka_local_profile": kafka_server.local,
        "opensearch_url": opensearch_url,
        "index_prefix": f"t{suffix}",
        "indexer_app_id": f"search-indexer-{suffix}",
        "jwt_secret": DEV_SECRET,
        "faust_topic_partitions": 2,
        "bulk_flush_seconds": 0.05,
        "event_retry_base_seconds": 0.05,
        "event_retry_attempts": 3,
        "health_interval_seconds": 0.2,
    }
    values.update(overrides)
    return load_settings(SearchSettings, **values)


@pytest.fixture
def settings(kafka_server, opensearch_url) -> SearchSettings:
    """Settings of a test of its own (prefix, consumer group)."""
    return search_settings(kafka_server, opensearch_url)


@pytest.fixture
async def opensearch(opensearch_url) -> AsyncIterator[AsyncOpenSearch]:
    """An async OpenSearch client."""
    client = AsyncOpenSearch(opensearch_url)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def indices(settings: SearchSettings, opensearch: AsyncOpenSearch) -> AsyncIterator[str]:
    """The test's indices (created, then deleted); yields the prefix."""
    await ensure_indices(opensearch, settings.index_prefix)
    yield settings.index_prefix
    await opensearch.indices.delete(index=f"{settings.index_prefix}-*")


async def produce(
    settings: SearchSettings,
    messages: Sequence[tuple[str, envelope_pb2.Envelope | bytes, bytes | None]],
) -> None:
    """Send (topic, envelope or raw bytes, key) messages in order; the key defaults to the
    aggregate id."""
    producer = AIOKafkaProducer(**producer_options(settings))
    await producer.start()
    try:
        for topic, value, key in messages:
            if isinstance(value, bytes):
                raw, k = value, key or b"raw"
            else:
                raw, k = value.SerializeToString(), key or value.aggregate_id.encode()
            await producer.send_and_wait(topic, value=raw, key=k)
    finally:
        await producer.stop()


@dataclass(frozen=True)
class Served:
    """A running search API and what a test needs to talk to it."""

    app: App
    server: PlatformServer
    stub: pb_grpc.SearchServiceStub
    prefix: str


def api_server(app: App) -> PlatformServer:
    """The platform server of a search API with the real interceptor stack (not started)."""
    return build_server(
        app.settings,
        app.registrations(),
        app.health_checks(),
        POLICY,
        TokenVerifier(DEV_SECRET),
        registry=CollectorRegistry(),
        access_log=False,
    )


@asynccontextmanager
async def serving(settings: SearchSettings) -> AsyncIterator[Served]:
    """The search API on 127.0.0.1:0 with the real interceptor stack, until the block ends."""
    app = bootstrap(settings)
    await ensure_indices(app.client, settings.index_prefix)
    stop = asyncio.Event()
    activity = asyncio.create_task(app.activity.run(stop)) if app.activity else None
    server = api_server(app)
    await server.start()
    channel = grpc.aio.insecure_channel(
        server.address, options=[("grpc.max_send_message_length", 32 * 1024 * 1024)]
    )
    try:
        if (publisher := app.activity) is not None:
            await eventually(lambda: publisher.connected, "the activity producer")
        yield Served(app, server, pb_grpc.SearchServiceStub(channel), settings.index_prefix)
    finally:
        await channel.close()
        await server.stop(0)
        stop.set()
        if activity is not None:
            await activity
        await app.client.indices.delete(index=f"{settings.index_prefix}-*")
        await app.client.close()
