"""A service's API as a real process (``python -m <module>``) for tests of its entry point.

``api_process`` starts it on free loopback ports, waits until its standard health service says
SERVING for the given gRPC service, yields a channel, then sends SIGTERM and checks that the
process drained and exited 0. ``worker_process`` does the same for a process without gRPC (an
event consumer): it yields the process at once. ``run_until_exit`` runs one that should stop by
itself (a bad configuration).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ssg.platform.auth.tokens import DEV_SECRET
from ssg.testing.servers import free_port

SERVING = health_pb2.HealthCheckResponse.SERVING


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any SSG_ variable, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSG_")}
    return {**env, **extra}


@asynccontextmanager
async def api_process(
    module: str,
    health_service: str,
    env: Mapping[str, str],
    log_path: Path,
    *,
    ready_within: float = 30.0,
    stop_within: float = 20.0,
) -> AsyncIterator[grpc.aio.Channel]:
    """Run ``python -m module`` until SERVING; yield a channel; SIGTERM it and expect exit 0.

    env adds to a clean environment the port, metrics port and dev JWT secret, which it may
    override.
    """
    port = free_port()
    defaults = {
        "SSG_GRPC_HOST": "127.0.0.1",
        "SSG_GRPC_PORT": str(port),
        "SSG_JWT_SECRET": DEV_SECRET,
        "SSG_HEALTH_INTERVAL_SECONDS": "0.2",
        "SSG_GRACE_SECONDS": "1",
    }
    async with (
        worker_process(module, {**defaults, **env}, log_path, stop_within=stop_within) as proc,
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        await _wait_serving(channel, health_service, proc, log_path, ready_within)
        yield channel


@asynccontextmanager
async def worker_process(
    module: str, env: Mapping[str, str], log_path: Path, *, stop_within: float = 60.0
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Run ``python -m module`` (env added to a clean environment, metrics on a free loopback
    port unless env says otherwise); yield it; SIGTERM it and expect exit 0."""
    defaults = {"SSG_METRICS_HOST": "127.0.0.1", "SSG_METRICS_PORT": str(free_port())}
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            env=clean_env(**{**defaults, **env}),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield proc
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(proc.wait(), stop_within)
            if code != 0:
                raise AssertionError(f"{module} exited {code} on SIGTERM:\n{_tail(log_path)}")
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def _wait_serving(
    channel: grpc.aio.Channel,
    service: str,
    proc: asyncio.subprocess.Process,
    log_path: Path,
    within: float,
) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + within
    status = None
    while time.monotonic() < deadline:
        try:
            reply = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=1)
            status = reply.status
            if status == SERVING:
                return
        except grpc.aio.AioRpcError:
            pass
        if proc.returncode is not None:
            raise AssertionError(f"exited {proc.returncode}:\n{_tail(log_path)}")
        await asyncio.sleep(0.1)
    raise AssertionError(f"{service} not SERVING after {within:g}s (last: {status})")


def _tail(log_path: Path, chars: int = 4000) -> str:
    """The end of a process log, for a failure's message."""
    return log_path.read_text(errors="replace")[-chars:]


def run_until_exit(module: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``python -m module`` with env (in a clean environment) and return how it ended."""
    return subprocess.run(
        [sys.executable, "-m", module],
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )
