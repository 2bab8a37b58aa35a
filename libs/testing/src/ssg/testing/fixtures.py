"""pytest fixtures (a pytest11 plugin): the real local servers, started once per session.

Set SSG_TEST_KAFKA_BOOTSTRAP, SSG_TEST_MONGODB_URI, SSG_TEST_OPENSEARCH_URL or SSG_TEST_AMQP_URL
to run against servers that are already running (real Kafka, MongoDB, OpenSearch) instead.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pymongo import AsyncMongoClient, MongoClient
from pymongo.database import Database

from ssg.contracts.events.v1 import envelope_pb2
from ssg.platform.events.outbox import OUTBOX_COLLECTION
from ssg.platform.mongo import Doc, client_options
from ssg.platform.settings import PlatformSettings
from ssg.testing import servers, tls_proxy


@dataclass(frozen=True)
class KafkaServer:
    """Where the test Kafka broker is; local=True for the Tansu stand-in."""

    bootstrap: str
    local: bool


@dataclass(frozen=True)
class MongoServer:
    """Where the test MongoDB is."""

    base_uri: str

    def uri(self, db: str) -> str:
        """URI of database db on this server (keeps query options such as replicaSet)."""
        head, _, query = self.base_uri.partition("?")
        host = head.rstrip("/").rsplit("/", 1)[0] if head.count("/") > 2 else head.rstrip("/")
        return f"{host}/{db}" + (f"?{query}" if query else "")


@pytest.fixture(scope="session")
def server_workdir() -> Iterator[Path]:
    """Scratch directory for server data and logs, removed at the end."""
    path = servers.scratch_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka_server(server_workdir: Path) -> Iterator[KafkaServer]:
    """A Kafka-protocol broker for the whole session."""
    if external := os.environ.get("SSG_TEST_KAFKA_BOOTSTRAP"):
        yield KafkaServer(external, local=False)
        return
    proc = servers.start_kafka(server_workdir)
    try:
        yield KafkaServer(f"{servers.LOOPBACK}:{proc.port}", local=True)
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def mongodb_server(server_workdir: Path) -> Iterator[MongoServer]:
    """A MongoDB-protocol replica set for the whole session."""
    if external := os.environ.get("SSG_TEST_MONGODB_URI"):
        yield MongoServer(external)
        return
    proc = servers.start_mongodb(server_workdir)
    try:
        yield MongoServer(servers.mongodb_uri(proc.port, "test"))
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def mongo_client(mongodb_server: MongoServer) -> Iterator[MongoClient[Doc]]:
    """One pymongo client on the session's MongoDB, with the services' client options."""
    client: MongoClient[Doc] = MongoClient(
        mongodb_server.uri("test"), **client_options(PlatformSettings(service="tests"))
    )
    yield client
    client.close()


@pytest.fixture(scope="session")
async def read_client(mongodb_server: MongoServer) -> AsyncIterator[AsyncMongoClient[Doc]]:
    """One asyncio pymongo client on the session's MongoDB (the Get calls' read client), with
    the services' client options."""
    client: AsyncMongoClient[Doc] = AsyncMongoClient(
        mongodb_server.uri("test"), **client_options(PlatformSettings(service="tests"))
    )
    yield client
    await client.close()


@pytest.fixture
def fresh_database(mongo_client: MongoClient[Doc], unique_name: str) -> Iterator[Database[Doc]]:
    """An empty database of this test's own on the session's MongoDB, dropped afterwards."""
    db = mongo_client[unique_name]
    yield db
    mongo_client.drop_database(db.name)


def outbox_events(db: Database[Doc]) -> list[tuple[str, envelope_pb2.Envelope]]:
    """(topic, envelope) of every row in a service's outbox, oldest first."""
    rows = db[OUTBOX_COLLECTION].find({}, {"topic": 1, "value": 1}).sort("seq", 1)
    return [(row["topic"], envelope_pb2.Envelope.FromString(row["value"])) for row in rows]


@pytest.fixture
def own_mongodb(server_workdir: Path) -> Iterator[servers.ServerProcess]:
    """A MongoDB-protocol server of the test's own, which the test may stop or kill (its
    acknowledged commits survive that)."""
    proc = servers.start_mongodb(server_workdir, durable_commits=True)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def opensearch_url(server_workdir: Path) -> Iterator[str]:
    """Base URL of an OpenSearch-protocol server for the whole session."""
    if external := os.environ.get("SSG_TEST_OPENSEARCH_URL"):
        yield external
        return
    proc = servers.start_opensearch(server_workdir)
    try:
        yield f"http://{servers.LOOPBACK}:{proc.port}"
    finally:
        proc.stop()


@dataclass(frozen=True)
class SecuredOpenSearch:
    """OpenSearch behind TLS and basic authentication, as a production cluster answers."""

    url: str
    username: str
    password: str
    ca_file: str


@pytest.fixture(scope="session")
def secured_opensearch(opensearch_url: str, server_workdir: Path) -> Iterator[SecuredOpenSearch]:
    """The session's OpenSearch behind a TLS + basic-auth proxy with a CA of its own."""
    tls_dir = server_workdir / "tls"
    ca = tls_proxy.certificate_authority(tls_dir)
    certificate = tls_proxy.server_certificate(ca, tls_dir)
    username, password = "ssg-search", uuid.uuid4().hex
    proc = servers.start_tls_proxy(server_workdir, opensearch_url, certificate, username, password)
    try:
        yield SecuredOpenSearch(
            f"https://{servers.LOOPBACK}:{proc.port}", username, password, str(ca.cert_file)
        )
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def amqp_url() -> str:
    """AMQP URL of RabbitMQ (the machine's server, started if stopped)."""
    if external := os.environ.get("SSG_TEST_AMQP_URL"):
        return external
    return servers.ensure_rabbitmq()


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """A name unique to this test (topics, databases, queues), safe as a Kafka topic."""
    stem = "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:40]
    return f"t-{stem}-{uuid.uuid4().hex[:8]}"


def load_script(path: Path, name: str) -> ModuleType:
    """A script of the repository (not in a package) imported as module name."""
    if (loaded := sys.modules.get(name)) is not None:
        return loaded
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered first: dataclasses resolve their annotations through sys.modules.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def manifests(pytestconfig: pytest.Config) -> ModuleType:
    """The repository's tools/manifests.py (a script, not a package) as a module."""
    return load_script(pytestconfig.rootpath / "tools" / "manifests.py", "ssg_manifests_tool")


@pytest.fixture(scope="session")
def rendered(manifests: ModuleType) -> dict[str, list[dict[str, Any]]]:
    """Overlay name -> the objects `kubectl kustomize` renders for it."""
    return {name: manifests.render(manifests.OVERLAYS_DIR / name) for name in manifests.overlays()}
