"""Dependency checks against the real local servers, and against ports nobody listens on."""

from __future__ import annotations

import time

import pytest

from ssg.platform.health import (
    DependencyDown,
    kafka_check,
    mongodb_check,
    opensearch_check,
)
from ssg.testing.servers import free_port, mongodb_uri


async def test_mongodb_check_passes_against_a_live_server(mongodb_server):
    await mongodb_check(mongodb_server.uri("health"))()


async def test_mongodb_check_fails_fast_when_nothing_listens():
    check = mongodb_check(mongodb_uri(free_port(), "health"), timeout_seconds=0.3)
    started = time.monotonic()
    with pytest.raises(Exception):  # noqa: B017 - pymongo's own error type is the point
        await check()
    assert time.monotonic() - started < 3


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


async def test_opensearch_check_passes_against_the_server(opensearch_url):
    await opensearch_check(opensearch_url)()


async def test_opensearch_check_fails_when_nothing_listens():
    with pytest.raises(OSError):
        await opensearch_check(f"http://127.0.0.1:{free_port()}", timeout_seconds=0.3)()
