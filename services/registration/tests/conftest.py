"""Fixtures for the registration tests: the real service on a real MongoDB (and Kafka when a
test asks for the relay), served by the platform gRPC server on 127.0.0.1:0."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
from pymongo.database import Database

from ssg.contracts.registration.v1 import registration_service_pb2_grpc as pb_grpc
from ssg.platform.auth.tokens import DEV_SECRET, DevTokenIssuer, Role
from ssg.platform.events.relay import OutboxRelay
from ssg.platform.grpc.server import PlatformServer
from ssg.platform.mongo import Doc
from ssg.platform.settings import load_settings
from ssg.registration.bootstrap import POLICY, App, bootstrap
from ssg.registration.events.publisher import EXPERT_TOPIC, ORGANIZATION_TOPIC
from ssg.registration.settings import RegistrationSettings
from ssg.testing.services import running_relay, serving

ISSUER = DevTokenIssuer()
INSTANCE = "africa"


@dataclass
class Served:
    """A running registration API and what a test needs to talk to it."""

    app: App
    server: PlatformServer
    stub: pb_grpc.RegistrationServiceStub
    db: Database[Doc]


def token_metadata(
    subject: str,
    *roles: Role,
    org: str = "",
    instance: str = INSTANCE,
) -> tuple[tuple[str, str], ...]:
    """gRPC metadata carrying a dev token for the given identity."""
    token = ISSUER.issue(subject, roles or (Role.PUBLIC,), organization_id=org, instance=instance)
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture(scope="module")
def db_name() -> str:
    """A database of the test module's own."""
    return f"registration-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def settings(mongodb_server, db_name: str) -> RegistrationSettings:
    """Service settings on the session's MongoDB, any free port, no background sweep."""
    return load_settings(
        RegistrationSettings,
        instance=INSTANCE,
        instance_id="test-api",
        grpc_host="127.0.0.1",
        grpc_port=0,
        mongodb_uri=mongodb_server.uri(db_name),
        jwt_secret=DEV_SECRET,
        health_interval_seconds=0.2,
        expiry_sweep_seconds=0,
    )


@pytest.fixture(scope="module")
async def served(settings: RegistrationSettings) -> AsyncIterator[Served]:
    """The registration API served on 127.0.0.1 with the real interceptor stack."""
    app = bootstrap(settings)
    async with serving(app, POLICY, app.store.ensure_indexes) as running:
        stub = pb_grpc.RegistrationServiceStub(running.channel)
        yield Served(app, running.server, stub, running.db)


@pytest.fixture(scope="module")
async def relay(settings: RegistrationSettings, kafka_server) -> AsyncIterator[OutboxRelay]:
    """The outbox relay of the module's database, running in-process against Kafka."""
    topics = [ORGANIZATION_TOPIC, EXPERT_TOPIC]
    async with running_relay("registration", settings.mongodb_uri, kafka_server, topics) as r:
        yield r


@pytest.fixture
def auth():
    """token_metadata(subject, *roles, org=, instance=): gRPC metadata with a dev token."""
    return token_metadata


@pytest.fixture
def suffix() -> Iterator[str]:
    """A short unique suffix for names in one test."""
    yield uuid.uuid4().hex[:6]
