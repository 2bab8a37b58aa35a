"""Dependency checks against the real local servers, and against ports nobody listens on."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from ssg.platform.health import (
    DependencyDown,
    kafka_check,
    mongodb_check,
    opensearch_check,
    read_client_check,
)
from ssg.platform.mongo import default_read_database, make_read_client
from ssg.platform.settings import ConfigError, PlatformSettings, load_settings
from ssg.testing.servers import free_port, mongodb_uri
from ssg.testing.tls_proxy import certificate_authority


async def test_mongodb_check_passes_against_a_live_server(mongodb_server):
    await mongodb_check(mongodb_server.uri("health"))()


async def test_mongodb_check_fails_fast_when_nothing_listens():
    check = mongodb_check(mongodb_uri(free_port(), "health"), timeout_seconds=0.3)
    started = time.monotonic()
    with pytest.raises(Exception):  # noqa: B017 - pymongo's own error type is the point
        await check()
    assert time.monotonic() - started < 3


def _read_settings(uri: str) -> PlatformSettings:
    return load_settings(PlatformSettings, service="health", mongodb_uri=uri)


async def test_read_client_check_passes_and_the_read_client_has_the_common_options(mongodb_server):
    uri = mongodb_server.uri("health-reads")
    client = make_read_client(_read_settings(uri))
    try:
        await read_client_check(client)()
        db = default_read_database(client)
        assert db.name == "health-reads"
        await db.things.insert_one({"_id": "t", "at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)})
        doc = await db.things.find_one({"_id": "t"})
        assert doc is not None and doc["at"].tzinfo is not None  # tz_aware, as make_client
    finally:
        await client.close()


async def test_read_client_check_fails_fast_when_nothing_listens():
    client = make_read_client(_read_settings(mongodb_uri(free_port(), "health")))
    try:
        started = time.monotonic()
        with pytest.raises(Exception):  # noqa: B017 - pymongo's own error type is the point
            await read_client_check(client, timeout_seconds=0.3)()
        assert time.monotonic() - started < 3
    finally:
        await client.close()


def test_read_client_needs_a_uri_naming_a_database():
    with pytest.raises(ConfigError, match="SSG_MONGODB_URI"):
        make_read_client(load_settings(PlatformSettings, service="health", mongodb_uri=""))
    client = make_read_client(_read_settings(f"mongodb://127.0.0.1:{free_port()}"))
    with pytest.raises(ConfigError, match="must name a database"):
        default_read_database(client)


async def test_kafka_check_passes_against_the_broker(kafka_server):
    await kafka_check(kafka_server.bootstrap)()


async def test_kafka_check_tries_every_bootstrap_address(kafka_server):
    dead = f"127.0.0.1:{free_port()}"
    await kafka_check(f"{dead},{kafka_server.bootstrap}")()
    with pytest.raises(DependencyDown, match=dead):
        await kafka_check(dead, timeout_seconds=0.3)()


def test_kafka_check_needs_an_address():
    with pytest.raises(ValueError):
        kafka_check(" , ")


def _opensearch_settings(url: str, **extra: str) -> PlatformSettings:
    return load_settings(PlatformSettings, service="health", opensearch_url=url, **extra)


async def test_opensearch_check_passes_against_the_server(opensearch_url):
    await opensearch_check(_opensearch_settings(opensearch_url))()


async def test_opensearch_check_fails_when_nothing_listens():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(DependencyDown, match="opensearch unreachable"):
        await opensearch_check(_opensearch_settings(url), timeout_seconds=0.3)()


async def test_opensearch_check_passes_through_tls_and_credentials(secured_opensearch):
    secured = _opensearch_settings(
        secured_opensearch.url,
        opensearch_username=secured_opensearch.username,
        opensearch_password=secured_opensearch.password,
        opensearch_ca_file=secured_opensearch.ca_file,
    )
    await opensearch_check(secured)()


async def test_opensearch_check_names_refused_credentials(secured_opensearch):
    wrong = _opensearch_settings(
        secured_opensearch.url,
        opensearch_username=secured_opensearch.username,
        opensearch_password="not-the-password",
        opensearch_ca_file=secured_opensearch.ca_file,
    )
    with pytest.raises(DependencyDown, match="refused the credentials"):
        await opensearch_check(wrong)()


async def test_opensearch_check_names_an_untrusted_certificate(secured_opensearch, tmp_path):
    stranger = certificate_authority(tmp_path, "unknown-ca")
    untrusting = _opensearch_settings(
        secured_opensearch.url,
        opensearch_username=secured_opensearch.username,
        opensearch_password=secured_opensearch.password,
        opensearch_ca_file=str(stranger.cert_file),
    )
    with pytest.raises(DependencyDown, match="TLS certificate not trusted"):
        await opensearch_check(untrusting)()
