"""The entry points as the local stack runs them: ``python -m ssg.notifications`` reports
SERVING on the standard health service, ``python -m ssg.notifications.worker`` answers
/healthz and /metrics; both stop with exit status 0 on SIGTERM, and bad configuration exits 2."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from kombu import Connection

from ssg.notifications.domain.retry import Backoff
from ssg.notifications.queues import Topology
from ssg.platform.auth.tokens import DEV_SECRET
from ssg.testing import servers


def env_for(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSG_")}
    env.update({f"SSG_{k.upper()}": v for k, v in values.items()})
    return env


def start(module: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-W", "ignore", "-m", module],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.terminate()
    try:
        return proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        raise


def serving(port: int) -> bool:
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=1
            )
            return reply.status == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        return False


def healthz(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as reply:
            return reply.status == 200
    except OSError:
        return False


def test_api_and_worker_processes_serve_and_stop(mongodb_server, kafka_server, amqp_url, tmp_path):
    prefix = f"test.processes.{uuid.uuid4().hex[:8]}"
    common = dict(
        mongodb_uri=mongodb_server.uri(f"notifications-proc-{uuid.uuid4().hex[:8]}"),
        kafka_bootstrap=kafka_server.bootstrap,
        kafka_local_profile="true" if kafka_server.local else "false",
        amqp_url=amqp_url,
        jwt_secret=DEV_SECRET,
        queue_prefix=prefix,
        matcher_group=f"{prefix}-matcher",
        health_interval_seconds="0.2",
    )
    grpc_port, api_metrics, worker_metrics = (
        servers.free_port(),
        servers.free_port(),
        servers.free_port(),
    )
    api = start(
        "ssg.notifications",
        env_for(**common, grpc_port=str(grpc_port), metrics_port=str(api_metrics)),
        tmp_path / "api.log",
    )
    worker = start(
        "ssg.notifications.worker",
        env_for(**common, metrics_port=str(worker_metrics)),
        tmp_path / "worker.log",
    )
    try:
        servers.wait_until(lambda: serving(grpc_port), 60, "the API to be SERVING")
        servers.wait_until(lambda: healthz(worker_metrics), 60, "the worker's /healthz")
        with urllib.request.urlopen(
            f"http://127.0.0.1:{worker_metrics}/metrics", timeout=2
        ) as reply:
            assert b"ssg_notifications_indexed_subscriptions" in reply.read()
        assert stop(worker) == 0
        assert stop(api) == 0
    finally:
        for proc in (worker, api):
            if proc.poll() is None:
                proc.kill()
        with Connection(amqp_url) as conn:
            for name in Topology(prefix, tuple(Backoff().delays_ms())).names():
                conn.default_channel.queue_delete(name)


def test_bad_configuration_exits_2(tmp_path):
    for module in ("ssg.notifications", "ssg.notifications.worker", "ssg.notifications.delivery"):
        proc = subprocess.run(
            [sys.executable, "-W", "ignore", "-m", module],
            env=env_for(mongodb_uri="", amqp_url="", kafka_bootstrap=""),
            capture_output=True,
            timeout=60,
        )
        assert proc.returncode == 2, (module, proc.stderr)
        assert b"SSG_" in proc.stderr
