"""The /metrics + /healthz HTTP server: serves the registry, fails soft on a taken port."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, Counter

from ssg.platform.metrics import start_metrics_server, stop_metrics_server


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def registry():
    registry = CollectorRegistry()
    Counter("ssg_test_things_total", "Things.", registry=registry).inc(3)
    return registry


def test_serves_metrics_and_healthz_on_its_own_port(registry):
    healthy = [True]
    port = start_metrics_server("127.0.0.1", 0, healthy=lambda: healthy[0], registry=registry)
    assert port
    try:
        status, body = get(port, "/metrics")
        assert status == 200
        assert "ssg_test_things_total 3.0" in body
        assert get(port, "/healthz") == (200, "ok\n")
        healthy[0] = False
        assert get(port, "/healthz")[0] == 503
        assert get(port, "/nope")[0] == 404
    finally:
        stop_metrics_server(port)


def test_taken_port_is_logged_not_raised(registry, caplog):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        assert start_metrics_server("127.0.0.1", taken, registry=registry) is None
    assert any("metrics server not started" in r.getMessage() for r in caplog.records)
