"""Fixtures for the catalog tests: the real service on a real MongoDB (and Kafka when a test
asks for the relay or the worker), served by the platform gRPC server on 127.0.0.1:0."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from pymongo.database import Database

from ssg.catalog.bootstrap import POLICY, App, bootstrap
from ssg.catalog.domain.model import OrganizationRef, OrganizationStatus
from ssg.catalog.events.publisher import TOPICS
from ssg.catalog.settings import CatalogSettings
from ssg.contracts.catalog.v1 import catalog_service_pb2_grpc as pb_grpc
from ssg.platform.auth.tokens import DEV_SECRET, DevTokenIssuer, Role
from ssg.platform.events.relay import OutboxRelay
from ssg.platform.grpc.server import PlatformServer
from ssg.platform.mongo import Doc
from ssg.platform.settings import load_settings
from ssg.testing.services import running_relay, serving

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
    async with serving(app, POLICY, app.store.ensure_indexes) as running:
        stub = pb_grpc.CatalogServiceStub(running.channel)
        yield Served(app, running.server, stub, running.db)


@pytest.fixture(scope="module")
async def relay(settings: CatalogSettings, kafka_server) -> AsyncIterator[OutboxRelay]:
    """The outbox relay of the module's database, running in-process against Kafka."""
    async with running_relay("catalog", settings.mongodb_uri, kafka_server, TOPICS) as r:
        yield r


@pytest.fixture
def auth():
    """token_metadata(subject, *roles, org=, instance=): gRPC metadata with a dev token."""
    return token_metadata
