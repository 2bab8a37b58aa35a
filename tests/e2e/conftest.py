"""The local stack for the end-to-end tests: deploy/local/stack.py's, started once per session on
free ports in a scratch directory (the ports of deploy/local/ports.toml are remapped), with its
demo data, and stopped by ``stack.py down`` at the end."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ssg.testing.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "deploy" / "local" / "stack.py"
PORTS = ROOT / "deploy" / "local" / "ports.toml"
RABBITMQ_PORT = 5672  # the machine's own: never remapped


@dataclass(frozen=True)
class LocalStack:
    """A running local stack: its ports file and old port -> new port."""

    ports_file: Path
    mapping: dict[int, int]

    def table(self) -> dict[str, Any]:
        """The remapped ports.toml."""
        return tomllib.loads(self.ports_file.read_text())

    def grpc_address(self, process: str) -> str:
        """host:port of a process's gRPC API, e.g. grpc_address("catalog")."""
        table = self.table()
        return f"{table['host']}:{table['services'][process]['grpc']}"


def remapped_ports(
    tmp_path: Path, rabbitmq_vhost: str = "/", env: dict[str, str] | None = None
) -> tuple[Path, dict[int, int]]:
    """A copy of ports.toml with every port but RabbitMQ's free; and old port -> new port.

    rabbitmq_vhost names the stack's vhost; env replaces the values of those variables in the
    processes that set them (e.g. SSG_SMTP_PORT of the delivery worker).
    """
    table = tomllib.loads(PORTS.read_text())
    overrides = env or {}
    mapping: dict[int, int] = {}

    def new(port: int) -> int:
        if port != RABBITMQ_PORT and port not in mapping:
            # free_port() can hand out a port it handed out just before: keep them distinct.
            candidate = free_port()
            while candidate in mapping.values():
                candidate = free_port()
            mapping[port] = candidate
        return mapping.get(port, port)

    lines = [f'host = "{table["host"]}"', f"rabbitmq_vhost = {json.dumps(rabbitmq_vhost)}"]
    lines.append("[servers]")
    lines += [f"{name} = {new(port)}" for name, port in table["servers"].items()]
    for name, entry in table["services"].items():
        lines.append(f"[services.{name}]")
        for key, value in entry.items():
            if key in ("grpc", "metrics"):
                lines.append(f"{key} = {new(value)}")
            elif key == "env":
                merged = {k: overrides.get(k, v) for k, v in value.items()}
                pairs = ", ".join(f"{k} = {json.dumps(str(v))}" for k, v in merged.items())
                lines.append(f"env = {{ {pairs} }}")
            else:
                lines.append(f"{key} = {json.dumps(value)}")
    path = tmp_path / "ports.toml"
    path.write_text("\n".join(lines) + "\n")
    return path, mapping


def _stack(command: str, ports: Path, run_dir: Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, str(STACK), command, "--ports", str(ports), "--run-dir", str(run_dir)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory, amqp_url: str) -> Iterator[LocalStack]:
    """The whole local stack, up with demo data on free ports, shared by the session."""
    tmp_path = tmp_path_factory.mktemp("local-stack")
    ports, mapping = remapped_ports(tmp_path)
    run_dir = tmp_path / "run"
    try:
        started = _stack("up", ports, run_dir)
        assert started.returncode == 0, started.stdout + started.stderr
        yield LocalStack(ports, mapping)
    finally:
        stopped = _stack("down", ports, run_dir)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
