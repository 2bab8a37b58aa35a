"""`ssg status` against real servers: UP for what answers, DOWN (exit 1) for what does not."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from typer.testing import CliRunner

from ssg.testing.fixtures import KafkaServer, MongoServer
from ssg.testing.servers import free_port

runner = CliRunner()


def _host_port(address: str) -> tuple[str, int]:
    parsed = urllib.parse.urlsplit(address if "://" in address else f"//{address}")
    assert parsed.hostname and parsed.port, address
    return parsed.hostname, parsed.port


@pytest.fixture
def servers_ports(
    kafka_server: KafkaServer, mongodb_server: MongoServer, opensearch_url: str, amqp_url: str
) -> str:
    """The [servers] part of a ports file for the session's real servers."""
    addresses = {
        "kafka": _host_port(kafka_server.bootstrap.split(",")[0]),
        "mongodb": _host_port(mongodb_server.base_uri),
        "opensearch": _host_port(opensearch_url),
        "rabbitmq": _host_port(amqp_url),
    }
    hosts = {host for host, _ in addresses.values()}
    if hosts != {"127.0.0.1"}:
        pytest.skip(f"ports files describe one loopback host; servers are on {hosts}")
    body = "\n".join(f"{name} = {port}" for name, (_, port) in addresses.items())
    return f'host = "127.0.0.1"\n[servers]\n{body}\n'


@pytest.fixture
def health_server() -> Iterator[tuple[int, health.HealthServicer]]:
    """A gRPC server with the standard health service on a free loopback port."""
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    server.start()
    try:
        yield port, servicer
    finally:
        server.stop(None)


def _status(tmp_path: Path, text: str) -> tuple[int, dict[str, str]]:
    """Run `ssg status` on a ports file; return exit code and each target's line."""
    from ssg.cli.main import app

    path = tmp_path / "ports.toml"
    path.write_text(text)
    result = runner.invoke(app, ["status", "--ports", str(path), "--timeout", "2"])
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    return result.exit_code, lines


def test_servers_up(tmp_path: Path, servers_ports: str) -> None:
    code, lines = _status(tmp_path, servers_ports)
    assert code == 0, lines
    for name in ("kafka", "mongodb", "opensearch", "rabbitmq"):
        assert lines[name].split()[2] == "UP", lines[name]
        assert lines[name].split()[3].replace(".", "").isdigit()  # latency in ms
    assert "broker" in lines["kafka"]
    assert "ping ok" in lines["mongodb"]


def test_service_on_a_silent_port_is_down(tmp_path: Path, servers_ports: str) -> None:
    silent = free_port()
    services = f'[services.ghost]\nmodule = "json"\ngrpc = {silent}\nmetrics = {free_port()}\n'
    code, lines = _status(tmp_path, servers_ports + services)
    assert code == 1
    assert lines["ghost"].split()[1:3] == [f"127.0.0.1:{silent}", "DOWN"]
    assert "connection refused" in lines["ghost"]
    assert lines["kafka"].split()[2] == "UP"


def test_server_on_a_silent_port_is_down(tmp_path: Path, servers_ports: str) -> None:
    silent = free_port()
    text = servers_ports.replace("\nopensearch = ", f"\nopensearch = {silent}\n# was ")
    code, lines = _status(tmp_path, text)
    assert code == 1
    assert lines["opensearch"].split()[1:3] == [f"127.0.0.1:{silent}", "DOWN"]


def test_service_health_serving_and_not_serving(
    tmp_path: Path, servers_ports: str, health_server: tuple[int, health.HealthServicer]
) -> None:
    port, servicer = health_server
    services = f'[services.probe]\nmodule = "json"\ngrpc = {port}\nmetrics = {free_port()}\n'
    code, lines = _status(tmp_path, servers_ports + services)
    assert code == 0, lines
    assert "UP" in lines["probe"] and "SERVING" in lines["probe"]
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    code, lines = _status(tmp_path, servers_ports + services)
    assert code == 1
    assert "DOWN" in lines["probe"] and "NOT_SERVING" in lines["probe"]


def test_service_not_installed_is_skipped(tmp_path: Path, servers_ports: str) -> None:
    services = f'[services.later]\nmodule = "ssg.nowhere.api"\ngrpc = {free_port()}\nmetrics = {free_port()}\n'
    code, lines = _status(tmp_path, servers_ports + services)
    assert code == 0, lines
    assert lines["later"].split()[2] == "SKIP"


def test_missing_ports_file_is_a_clear_error(tmp_path: Path) -> None:
    from ssg.cli.main import app

    result = runner.invoke(app, ["status", "--ports", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2
    assert "nope.toml" in result.stderr
