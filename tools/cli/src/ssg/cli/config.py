"""The local stack's ports file (deploy/local/ports.toml): where every server and service listens."""

from __future__ import annotations

import importlib.util
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

PORTS_FILE_ENV = "SSG_PORTS_FILE"
PORTS_FILE = Path("deploy/local/ports.toml")
SERVER_NAMES = ("kafka", "mongodb", "opensearch", "rabbitmq")
# Servers the stack runs only when the ports file gives them a port (and their binary exists).
OPTIONAL_SERVER_NAMES = ("prometheus",)


class StackConfigError(Exception):
    """The ports file is missing or does not say what the stack needs."""


@dataclass(frozen=True)
class ServiceEntry:
    """One service process of the local stack."""

    name: str
    module: str
    service: str
    metrics_port: int
    grpc_port: int | None = None
    env: dict[str, str] = field(default_factory=dict)

    def installed(self) -> bool:
        """True when the process's module can be imported in this environment."""
        try:
            return importlib.util.find_spec(self.module) is not None
        except ModuleNotFoundError:
            return False


@dataclass(frozen=True)
class StackConfig:
    """Ports of the local servers and services, all on one loopback host."""

    source: Path
    host: str
    servers: dict[str, int]
    services: tuple[ServiceEntry, ...]
    rabbitmq_vhost: str = "/"

    def address(self, server: str) -> str:
        """host:port of a server."""
        return f"{self.host}:{self.servers[server]}"

    @property
    def kafka_bootstrap(self) -> str:
        """Kafka bootstrap servers."""
        return self.address("kafka")

    def mongodb_uri(self, database: str = "admin") -> str:
        """MongoDB URI of database on the local replica set."""
        return f"mongodb://{self.address('mongodb')}/{database}?replicaSet=secantus"

    @property
    def opensearch_url(self) -> str:
        """Base URL of OpenSearch."""
        return f"http://{self.address('opensearch')}"

    @property
    def amqp_url(self) -> str:
        """AMQP URL of RabbitMQ (the machine's default guest user, loopback only)."""
        vhost = "/" if self.rabbitmq_vhost == "/" else quote(self.rabbitmq_vhost, safe="")
        return f"amqp://guest:guest@{self.address('rabbitmq')}/{vhost}"

    @property
    def prometheus_url(self) -> str | None:
        """Base URL of the stack's Prometheus, or None when the ports file gives it no port."""
        return f"http://{self.address('prometheus')}" if "prometheus" in self.servers else None


def find_ports_file(explicit: Path | None = None, start: Path | None = None) -> Path:
    """The ports file: explicit, else $SSG_PORTS_FILE, else deploy/local/ports.toml above start."""
    if explicit is not None:
        return explicit
    if from_env := os.environ.get(PORTS_FILE_ENV):
        return Path(from_env)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / PORTS_FILE
        if candidate.is_file():
            return candidate
    raise StackConfigError(
        f"no {PORTS_FILE} in {here} or above; run from the repository or set {PORTS_FILE_ENV}"
    )


def load_stack_config(path: Path | None = None) -> StackConfig:
    """Read and validate the ports file (see find_ports_file for where it is looked up)."""
    source = find_ports_file(path)
    try:
        raw = tomllib.loads(source.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise StackConfigError(f"{source}: {exc}") from None
    servers = raw.get("servers", {})
    missing = [name for name in SERVER_NAMES if name not in servers]
    if missing:
        raise StackConfigError(f"{source}: [servers] lacks {', '.join(missing)}")
    ports = {name: _port(source, f"servers.{name}", servers[name]) for name in SERVER_NAMES}
    ports |= {
        name: _port(source, f"servers.{name}", servers[name])
        for name in OPTIONAL_SERVER_NAMES
        if name in servers
    }
    services = tuple(
        _service(source, name, table) for name, table in raw.get("services", {}).items()
    )
    _no_duplicate_ports(source, ports, services)
    # A stack of its own on the machine's shared RabbitMQ (e.g. a fault test) names its vhost.
    vhost = str(raw.get("rabbitmq_vhost", "/"))
    return StackConfig(source, str(raw.get("host", "127.0.0.1")), ports, services, vhost)


def _service(source: Path, name: str, table: dict[str, object]) -> ServiceEntry:
    where = f"services.{name}"
    if not isinstance(table.get("module"), str):
        raise StackConfigError(f"{source}: {where}.module is required")
    grpc = table.get("grpc")
    env = table.get("env", {})
    if not isinstance(env, dict):
        raise StackConfigError(f"{source}: {where}.env must be a table")
    return ServiceEntry(
        name=name,
        module=str(table["module"]),
        service=str(table.get("service", name)),
        metrics_port=_port(source, f"{where}.metrics", table.get("metrics")),
        grpc_port=None if grpc is None else _port(source, f"{where}.grpc", grpc),
        env={str(k): str(v) for k, v in env.items()},
    )


def _port(source: Path, where: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise StackConfigError(f"{source}: {where} must be a port number 1-65535, got {value!r}")
    return value


def _no_duplicate_ports(
    source: Path, servers: dict[str, int], services: tuple[ServiceEntry, ...]
) -> None:
    seen: dict[int, str] = {}
    claims = [(port, name) for name, port in servers.items()]
    for entry in services:
        claims.append((entry.metrics_port, f"{entry.name}.metrics"))
        if entry.grpc_port is not None:
            claims.append((entry.grpc_port, f"{entry.name}.grpc"))
    for port, name in claims:
        if port in seen:
            raise StackConfigError(f"{source}: port {port} used by both {seen[port]} and {name}")
        seen[port] = name
