"""The local stack for the end-to-end tests: deploy/local/stack.py's, started once per session on
free ports in a scratch directory (the ports of deploy/local/ports.toml are remapped) and a
RabbitMQ vhost of its own, with its demo data, and stopped by ``stack.py down`` at the end."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest

from ssg.cli.config import ServiceEntry, StackConfig, load_stack_config
from ssg.testing.rabbitmq import Vhost, temporary_vhost
from ssg.testing.receivers import HttpSink, SmtpSink
from ssg.testing.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "deploy" / "local" / "stack.py"
PORTS = ROOT / "deploy" / "local" / "ports.toml"
RABBITMQ_PORT = 5672  # the machine's own: never remapped


@dataclass(frozen=True)
class LocalStack:
    """A running local stack of the tests: its ports file (old port -> new port in mapping), run
    directory, RabbitMQ vhost, and the SMTP and webhook receivers its notifications reach."""

    ports_file: Path
    mapping: dict[int, int]
    run_dir: Path
    vhost: Vhost
    smtp: SmtpSink
    http: HttpSink

    @property
    def config(self) -> StackConfig:
        """The remapped ports file, parsed as the CLI and stack.py read it."""
        return load_stack_config(self.ports_file)

    def table(self) -> dict[str, Any]:
        """The remapped ports.toml."""
        return tomllib.loads(self.ports_file.read_text())

    def grpc_address(self, process: str) -> str:
        """host:port of a process's gRPC API, e.g. grpc_address("catalog")."""
        return f"{self.config.host}:{self.entry(process).grpc_port}"

    def entry(self, process: str) -> ServiceEntry:
        """The ports-file entry of a process."""
        return next(e for e in self.config.services if e.name == process)

    def pid(self, process: str) -> int | None:
        """Current pid of a supervised process (a service, or mongodb)."""
        try:
            return int((self.run_dir / "pids" / f"{process}.pid").read_text())
        except (OSError, ValueError):
            return None


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


def run_stack(command: str, ports: Path, run_dir: Path, *extra: str) -> CompletedProcess[str]:
    """``stack.py command`` on a ports file and run directory."""
    argv = [sys.executable, str(STACK), command, "--ports", str(ports), "--run-dir", str(run_dir)]
    return subprocess.run([*argv, *extra], capture_output=True, text=True, timeout=600, check=False)


@contextmanager
def stack_instance(tmp_path: Path, amqp_url: str, stem: str, *up_args: str) -> Iterator[LocalStack]:
    """A whole stack on free ports, a vhost of its own and e-mail to a local SMTP receiver,
    started with ``stack.py up *up_args`` and stopped afterwards."""
    smtp, http = SmtpSink(), HttpSink()
    smtp.start()
    try:
        with temporary_vhost(amqp_url, stem) as vhost:
            ports, mapping = remapped_ports(
                tmp_path, rabbitmq_vhost=vhost.name, env={"SSG_SMTP_PORT": str(smtp.port)}
            )
            run_dir = tmp_path / "run"
            try:
                started = run_stack("up", ports, run_dir, *up_args)
                assert started.returncode == 0, started.stdout + started.stderr
                yield LocalStack(ports, mapping, run_dir, vhost, smtp, http)
            finally:
                stopped = run_stack("down", ports, run_dir)
                assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    finally:
        http.stop()
        smtp.stop()


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory, amqp_url: str) -> Iterator[LocalStack]:
    """The whole local stack with its demo data, shared by the session; on a vhost of its own,
    so a developer's `make up` or another test session on this machine takes none of its
    messages."""
    with stack_instance(tmp_path_factory.mktemp("local-stack"), amqp_url, "ssg-e2e") as stack:
        yield stack
