"""Fixtures for the recommendation tests: the real API on a real MongoDB, and (when a test asks)
the worker and the outbox relay against a real Kafka-protocol broker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest

from ssg.contracts.recommendation.v1 import recommendation_service_pb2_grpc as pb_grpc
from ssg.platform.auth.tokens import DEV_SECRET, DevTokenIssuer, Role
from ssg.platform.events.consumer import EventConsumer
from ssg.platform.events.relay import OutboxRelay
from ssg.platform.events.topics import ensure_topics
from ssg.platform.mongo import make_client
from ssg.platform.settings import load_settings
from ssg.recommendation.bootstrap import POLICY, App, bootstrap, build_store
from ssg.recommendation.events.publisher import TOPICS
from ssg.recommendation.settings import RecommendationSettings
from ssg.recommendation.store.mongo import MongoStore
from ssg.recommendation.worker import TOPICS as WORKER_TOPICS
from ssg.recommendation.worker import build_consumer
from ssg.testing.services import running_relay, serving

ISSUER = DevTokenIssuer()
INSTANCE = "africa"


@dataclass
class Served:
    """A running recommendation API and what a test needs to talk to it."""

    app: App
    stub: pb_grpc.RecommendationServiceStub

    @property
    def store(self) -> MongoStore:
        return self.app.store

    async def settle(self) -> None:
        """Wait until the API's in-memory stored lists hold every change written so far."""
        held = self.app.held
        if held is not None:
            assert await asyncio.to_thread(held.wait_current, 10), "stored lists not current"


def token_metadata(
    subject: str, *roles: Role, org: str = "", instance: str = INSTANCE
) -> tuple[tuple[str, str], ...]:
    """gRPC metadata carrying a dev token for the given identity."""
    token = ISSUER.issue(subject, roles or (Role.PUBLIC,), organization_id=org, instance=instance)
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture(scope="module")
def settings(mongodb_server, kafka_server) -> RecommendationSettings:
    """Service settings on the session's servers (a database per module), no caching."""
    return load_settings(
        RecommendationSettings,
        instance=INSTANCE,
        instance_id="test-recommendation",
        grpc_host="127.0.0.1",
        grpc_port=0,
        mongodb_uri=mongodb_server.uri(f"recommendation-{uuid.uuid4().hex[:8]}"),
        kafka_bootstrap=kafka_server.bootstrap,
        kafka_local_profile=kafka_server.local,
        jwt_secret=DEV_SECRET,
        health_interval_seconds=0.2,
        index_refresh_seconds=0,
        signals_refresh_seconds=0,
        event_retry_base_seconds=0.05,
        worker_group=f"recommendation-{uuid.uuid4().hex[:6]}",
    )


@pytest.fixture(scope="module")
async def served(settings: RecommendationSettings) -> AsyncIterator[Served]:
    """The recommendation API on 127.0.0.1 with the real interceptor stack."""
    app = bootstrap(settings)
    async with serving(app, POLICY, app.store.ensure_indexes) as running:
        yield Served(app, pb_grpc.RecommendationServiceStub(running.channel))


@pytest.fixture(scope="module")
async def relay(settings: RecommendationSettings, kafka_server) -> AsyncIterator[OutboxRelay]:
    """The outbox relay of the module's database, running in-process against Kafka."""
    async with running_relay("recommendation", settings.mongodb_uri, kafka_server, TOPICS) as r:
        yield r


@pytest.fixture
def auth():
    """token_metadata(subject, *roles, org=, instance=): gRPC metadata with a dev token."""
    return token_metadata


@asynccontextmanager
async def running_worker(
    settings: RecommendationSettings,
) -> AsyncIterator[tuple[EventConsumer, MongoStore]]:
    """A worker (its own MongoDB client) consuming until the block ends."""
    await ensure_topics(settings.kafka_bootstrap, [*WORKER_TOPICS, *TOPICS], partitions=3)
    client = make_client(settings)
    store = build_store(settings, client)
    consumer = build_consumer(settings, store)
    task = asyncio.create_task(consumer.run())
    try:
        yield consumer, store
    finally:
        await consumer.stop()
        await asyncio.wait_for(task, 30)
        client.close()
