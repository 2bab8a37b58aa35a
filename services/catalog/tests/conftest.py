"""Fixtures for the catalog tests: the real service on a real MongoDB (and Kafka when a test
asks for the relay or the worker), served by the platform gRPC server on 127.0.0.1:0."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from prometheus_client import CollectorRegistry
from pymongo.database import Database

from ssg.catalog.bootstrap import POLICY, App, bootstrap
from ssg.catalog.domain.model import OrganizationRef, OrganizationStatus
from ssg.catalog.events.publisher import TOPICS
from ssg.catalog.settings import CatalogSettings
from ssg.contracts.catalog.v1 import catalog_service_pb2_grpc as pb_grpc
from ssg.platform.auth.tokens import DEV_SECRET, DevTokenIssuer, Role, TokenVerifier
from ssg.platform.events.relay import OutboxRelay, RelaySettings
from ssg.platform.events.topics import ensure_topics
from ssg.platform.grpc.server import PlatformServer, build_server
from ssg.platform.mongo import Doc, make_client
from ssg.platform.settings import load_settings

ISSUER = DevTokenIssuer()
INSTANCE = "africa"


@dataclass
class Served:
    """A running catalog API and what a test needs to talk to it."""

    app: App
    server: PlatformServer
    stub: pb_grpc.CatalogServiceStub
    db: Database[Doc]

    def add_organization(self, status: OrganizationStatus = OrganizationStatus.VERIFIED) -> str:
        """Put an organization straight into the read model (as the worker would); its id."""
        org_id = uuid.uuid4().hex
        self.app.store.apply_organization(
            OrganizationRef(org_id, f"Org {org_id[:6]}", status, INSTANCE, version=1)
        )
        return org_id


def token_metadata(
    subject: str, *roles: Role, org: str = "", instance: str = INSTANCE
) -> tuple[tuple[str, str], ...]:
    """gRPC metadata carrying a dev token for the given identity."""
    token = ISSUER.issue(subject, roles or (Role.PUBLIC,), organization_id=org, instance=instance)
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture(scope="module")
def settings(mongodb_server) -> CatalogSettings:
    """Service settings on the session's MongoDB (a database per module), no sweep."""
    return load_settings(
        CatalogSettings,
        instance=INSTANCE,
        instance_id="test-catalog",
        grpc_host="127.0.0.1",
        grpc_port=0,
        mongodb_uri=mongodb_server.uri(f"catalog-{uuid.uuid4().hex[:8]}"),
        jwt_secret=DEV_SECRET,
        health_interval_seconds=0.2,
        sweep_seconds=0,
    )


@pytest.fixture(scope="module")
async def served(settings: CatalogSettings) -> AsyncIterator[Served]:
    """The catalog API on 127.0.0.1 with the real interceptor stack."""
    app = bootstrap(settings)
    app.store.ensure_indexes()
    server = build_server(
        settings,
        app.registrations(),
        app.health_checks(),
        POLICY,
        TokenVerifier(DEV_SECRET),
        registry=CollectorRegistry(),
        access_log=False,
    )
    await server.start()
    channel = grpc.aio.insecure_channel(
        server.address, options=[("grpc.max_send_message_length", 32 * 1024 * 1024)]
    )
    assert app.client is not None
    try:
        yield Served(
            app, server, pb_grpc.CatalogServiceStub(channel), app.client.get_default_database()
        )
    finally:
        await channel.close()
        await server.stop(0)
        app.client.drop_database(app.client.get_default_database().name)
        app.close()


@pytest.fixture(scope="module")
async def relay(settings: CatalogSettings, kafka_server) -> AsyncIterator[OutboxRelay]:
    """The outbox relay of the module's database, running in-process against Kafka."""
    await ensure_topics(kafka_server.bootstrap, TOPICS, partitions=3)
    relay_settings = RelaySettings(
        service="catalog",
        mongodb_uri=settings.mongodb_uri,
        kafka_bootstrap=kafka_server.bootstrap,
        kafka_local_profile=kafka_server.local,
        outbox_poll_seconds=0.05,
        outbox_lease_seconds=3.0,
        outbox_publish_timeout_seconds=1.0,
    )
    client = make_client(relay_settings)
    running = OutboxRelay.from_settings(relay_settings, client)
    stop = asyncio.Event()
    task = asyncio.create_task(running.run(stop))
    try:
        yield running
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
        client.close()


@pytest.fixture
def auth():
    """token_metadata(subject, *roles, org=, instance=): gRPC metadata with a dev token."""
    return token_metadata
