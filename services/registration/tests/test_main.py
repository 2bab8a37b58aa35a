"""``python -m ssg.registration`` as a real process: serves health SERVING with MongoDB up,
answers calls, and drains and exits 0 on SIGTERM; bad configuration exits 2 naming the variable."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ssg.contracts.registration.v1 import registration_service_pb2 as pb
from ssg.contracts.registration.v1 import registration_service_pb2_grpc as pb_grpc
from ssg.platform.auth.tokens import DEV_SECRET
from ssg.testing.servers import free_port


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSG_")}
    return {**env, **extra}


async def test_serves_health_and_stops_cleanly_on_sigterm(mongodb_server, tmp_path):
    port = free_port()
    log = (tmp_path / "registration.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ssg.registration",
        env=_env(
            SSG_GRPC_PORT=str(port),
            SSG_METRICS_PORT=str(free_port()),
            SSG_MONGODB_URI=mongodb_server.uri("registration-main-test"),
            SSG_JWT_SECRET=DEV_SECRET,
            SSG_HEALTH_INTERVAL_SECONDS="0.2",
            SSG_EXPIRY_SWEEP_SECONDS="1",
            SSG_GRACE_SECONDS="1",
        ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            deadline = time.monotonic() + 20
            status = None
            while time.monotonic() < deadline:
                try:
                    reply = await health.Check(
                        health_pb2.HealthCheckRequest(
                            service="ssg.registration.v1.RegistrationService"
                        ),
                        timeout=1,
                    )
                    status = reply.status
                    if status == health_pb2.HealthCheckResponse.SERVING:
                        break
                except grpc.aio.AioRpcError:
                    pass
                assert proc.returncode is None, (tmp_path / "registration.log").read_text()
                await asyncio.sleep(0.1)
            assert status == health_pb2.HealthCheckResponse.SERVING
            listed = await pb_grpc.RegistrationServiceStub(channel).ListOrganizations(
                pb.ListOrganizationsRequest(), timeout=5
            )
            assert list(listed.organizations) == []
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 20)
        assert code == 0, (tmp_path / "registration.log").read_text()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        log.close()


def test_missing_jwt_secret_exits_2_naming_the_variable():
    result = subprocess.run(
        [sys.executable, "-m", "ssg.registration"],
        env=_env(SSG_MONGODB_URI="mongodb://127.0.0.1:1/registration"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "SSG_JWT_SECRET" in result.stderr
