"""``python -m ssg.platform.diagnostics`` as a real process: SIGTERM drains in-flight calls."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import urllib.request

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from ssg.contracts.diagnostics.v1 import diagnostics_pb2 as pb
from ssg.contracts.diagnostics.v1 import diagnostics_pb2_grpc as pb_grpc
from ssg.platform.auth.tokens import DEV_SECRET
from ssg.testing.servers import free_port
from ssg.testing.waiting import eventually


@pytest.fixture
def diagnostics_process(tmp_path):
    port, metrics_port = free_port(), free_port()
    env = {
        **os.environ,
        "SSG_SERVICE": "diagnostics",
        "SSG_GRPC_HOST": "127.0.0.1",
        "SSG_GRPC_PORT": str(port),
        "SSG_METRICS_PORT": str(metrics_port),
        "SSG_JWT_SECRET": DEV_SECRET,
        "SSG_GRACE_SECONDS": "10",
    }
    env.pop("SSG_MONGODB_URI", None)
    log = (tmp_path / "diagnostics.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ssg.platform.diagnostics"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    log.close()
    try:
        yield proc, f"127.0.0.1:{port}", metrics_port, tmp_path / "diagnostics.log"
    finally:
        if proc.poll() is None:
            proc.kill()  # by pid, only if the test left it running
            proc.wait(10)


async def _serving(address: str) -> bool:
    try:
        async with grpc.aio.insecure_channel(address) as ch:
            response = await health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=1
            )
    except grpc.aio.AioRpcError:
        return False
    return response.status == health_pb2.HealthCheckResponse.SERVING


async def test_sigterm_lets_the_in_flight_call_finish_then_exits_zero(diagnostics_process):
    proc, address, metrics_port, log_path = diagnostics_process
    await eventually(lambda: _serving(address), what="diagnostics process serving")

    async with grpc.aio.insecure_channel(address) as ch:
        stub = pb_grpc.DiagnosticsServiceStub(ch)
        slow = asyncio.ensure_future(
            stub.Echo(pb.EchoRequest(message="drain me", delay_ms=1500), timeout=10)
        )

        # SIGTERM only once the server has the call: the process's own started counter says so.
        async def in_flight() -> bool:
            started = await asyncio.to_thread(_echo_started, metrics_port)
            assert not slow.done()
            return started >= 1

        await eventually(in_flight, what="slow call in flight")
        os.kill(proc.pid, signal.SIGTERM)

        response = await slow
        assert response.message == "drain me"

    exit_code = await asyncio.to_thread(proc.wait, 15)
    assert exit_code == 0, log_path.read_text()

    async with grpc.aio.insecure_channel(address) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await pb_grpc.DiagnosticsServiceStub(ch).Echo(
                pb.EchoRequest(message="too late"), timeout=1
            )
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE
    log = log_path.read_text()
    assert '"shutdown requested"' in log
    assert "Traceback" not in log


def _echo_started(metrics_port: int) -> float:
    """grpc_server_started_total for Echo, read from the process's own /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2) as r:
        text = r.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "grpc_server_started_total"
                and sample.labels.get("grpc_method") == "Echo"
            ):
                return sample.value
    return 0.0
