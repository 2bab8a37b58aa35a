"""Health checks of the local servers (by their own protocol) and services (gRPC health)."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import socket
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import grpc
import pymongo
from aiokafka.client import AIOKafkaClient
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ssg.cli.config import ServiceEntry, StackConfig

AMQP_0_9_1_HEADER = b"AMQP\x00\x00\x09\x01"


class CheckFailed(Exception):
    """The target answered, but not as a healthy server does."""


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one check: UP with a detail, or DOWN with the reason."""

    name: str
    address: str
    up: bool
    latency_ms: float
    detail: str
    skipped: bool = False

    @property
    def state(self) -> str:
        """UP, DOWN, or SKIP for a service whose code is not installed yet."""
        if self.skipped:
            return "SKIP"
        return "UP" if self.up else "DOWN"

    @property
    def ok(self) -> bool:
        """False only when the target should answer and does not."""
        return self.up or self.skipped


def check_kafka(host: str, port: int, timeout: float) -> str:
    """Fetch cluster metadata from a Kafka-protocol broker."""
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # the result carries the reason

    async def metadata() -> str:
        client = AIOKafkaClient(
            bootstrap_servers=f"{host}:{port}", request_timeout_ms=int(timeout * 1000)
        )
        try:
            await asyncio.wait_for(client.bootstrap(), timeout)
            return f"{len(client.cluster.brokers())} broker(s), {len(client.cluster.topics())} topic(s)"
        finally:
            await client.close()

    return asyncio.run(metadata())


def check_mongodb(host: str, port: int, timeout: float) -> str:
    """Send a MongoDB ping."""
    ms = int(timeout * 1000)
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
        host,
        port,
        directConnection=True,
        serverSelectionTimeoutMS=ms,
        connectTimeoutMS=ms,
        socketTimeoutMS=ms,
    )
    try:
        client.admin.command("ping")
        hello = client.admin.command("hello")
        return f"ping ok, replica set {hello.get('setName', '-')}"
    finally:
        client.close()


def check_opensearch(host: str, port: int, timeout: float) -> str:
    """GET / of an OpenSearch-protocol server and read its version."""
    with urllib.request.urlopen(f"http://{host}:{port}/", timeout=timeout) as response:
        body = json.loads(response.read() or b"{}")
    return f"version {body.get('version', {}).get('number', '?')}"


def check_rabbitmq(host: str, port: int, timeout: float) -> str:
    """Open an AMQP 0-9-1 connection far enough to receive Connection.Start."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(AMQP_0_9_1_HEADER)
        frame = _recv_exactly(sock, 11)
    # frame type 1 (method) on channel 0, then class 10 / method 10 (connection.start)
    if frame[0] != 1 or frame[7:11] != b"\x00\x0a\x00\x0a":
        raise CheckFailed(f"not an AMQP 0-9-1 server (got {frame[:11]!r})")
    return "AMQP 0-9-1 handshake ok"


def check_grpc_health(host: str, port: int, timeout: float) -> str:
    """Call grpc.health.v1.Health/Check (whole server) with a deadline."""
    with grpc.insecure_channel(f"{host}:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else None
            raise CheckFailed(f"health check failed: {code.name if code else exc}") from None
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        raise CheckFailed(status)
    return status


def check_metrics(host: str, port: int, timeout: float) -> str:
    """GET /metrics of a process (for workers without a gRPC API)."""
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=timeout) as response:
        size = len(response.read())
    return f"/metrics ok ({size} bytes)"


def check_prometheus(host: str, port: int, timeout: float) -> str:
    """Ask Prometheus for its scrape targets and count those up."""
    url = f"http://{host}:{port}/api/v1/targets?state=active"
    with urllib.request.urlopen(url, timeout=timeout) as response:
        targets = json.loads(response.read())["data"]["activeTargets"]
    up = sum(1 for target in targets if target["health"] == "up")
    return f"{up}/{len(targets)} targets up"


SERVER_CHECKS: dict[str, Callable[[str, int, float], str]] = {
    "kafka": check_kafka,
    "mongodb": check_mongodb,
    "opensearch": check_opensearch,
    "rabbitmq": check_rabbitmq,
    "prometheus": check_prometheus,
}
# Optional servers whose binary must be installed for the stack to run them.
SERVER_BINARIES = {"prometheus": "prometheus"}


def server_installed(name: str) -> bool:
    """False for an optional server whose binary is not on PATH (the stack skips it)."""
    binary = SERVER_BINARIES.get(name)
    return binary is None or shutil.which(binary) is not None


def run_check(
    name: str, host: str, port: int, check: Callable[[str, int, float], str], timeout: float
) -> CheckResult:
    """Run one check, timing it; any failure becomes DOWN with its reason."""
    started = time.perf_counter()
    try:
        _accepts_connections(host, port, timeout)
        detail, up = check(host, port, timeout), True
    except Exception as exc:  # every failure is reported, none escapes
        detail, up = _reason(exc), False
    latency = (time.perf_counter() - started) * 1000
    return CheckResult(name, f"{host}:{port}", up, latency, detail)


def check_server(config: StackConfig, name: str, timeout: float) -> CheckResult:
    """Check one server of the stack by its protocol (SKIP for an optional one not installed)."""
    if not server_installed(name):
        address = config.address(name)
        detail = f"{SERVER_BINARIES[name]} is not installed (the stack does not run it)"
        return CheckResult(name, address, False, 0.0, detail, skipped=True)
    return run_check(name, config.host, config.servers[name], SERVER_CHECKS[name], timeout)


def check_service(config: StackConfig, entry: ServiceEntry, timeout: float) -> CheckResult:
    """Check one service: gRPC health when it has a gRPC port, /metrics otherwise."""
    if not entry.installed():
        port = entry.grpc_port or entry.metrics_port
        detail = f"{entry.module} is not installed (the stack does not run it)"
        return CheckResult(entry.name, f"{config.host}:{port}", False, 0.0, detail, skipped=True)
    if entry.grpc_port is not None:
        return run_check(entry.name, config.host, entry.grpc_port, check_grpc_health, timeout)
    return run_check(entry.name, config.host, entry.metrics_port, check_metrics, timeout)


def check_all(config: StackConfig, timeout: float = 2.0) -> list[CheckResult]:
    """Check every server and every service of the stack concurrently, in file order."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        servers = [pool.submit(check_server, config, name, timeout) for name in config.servers]
        services = [pool.submit(check_service, config, e, timeout) for e in config.services]
        return [future.result() for future in (*servers, *services)]


def format_result(result: CheckResult, width: int = 14) -> str:
    """One status line (rich markup): name, address, state, latency, detail."""
    colour = "yellow" if result.skipped else "green" if result.up else "red"
    return (
        f"{result.name:<{width}} {result.address:<21} [{colour}]{result.state:<4}[/{colour}] "
        f"{result.latency_ms:7.1f} ms  {result.detail}"
    )


def _accepts_connections(host: str, port: int, timeout: float) -> None:
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except ConnectionRefusedError:
        raise CheckFailed("nothing listens (connection refused)") from None
    except TimeoutError:
        raise CheckFailed(f"no answer to connect within {timeout:g}s") from None


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise CheckFailed("connection closed during the AMQP handshake")
        data += chunk
    return data


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, CheckFailed):
        return text
    return f"{type(exc).__name__}: {text}"[:160] if text else type(exc).__name__
