"""The local stack: servers and services under honcho, on the fixed ports of deploy/local/ports.toml.

    python deploy/local/stack.py up|down|status [--ports FILE] [--run-dir DIR] [--no-demo-data]

Two honcho process groups: ``servers`` (Kafka, MongoDB, OpenSearch, and Prometheus when it is
installed and the ports file gives it a port) and ``services``, so `down` stops the services before
the servers they use. Everything binds 127.0.0.1.

Every service process, and MongoDB (its data is on disk), runs under deploy/local/supervise.py:
one that crashes is started again with backoff and a ``[supervise]`` line in the log, instead of
honcho stopping the whole group. Kafka and OpenSearch keep their data in memory only, so a crash
of either stops the stack (a restart would come back empty).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shlex
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import yaml
from rich.console import Console

from ssg.cli.config import PORTS_FILE_ENV, ServiceEntry, StackConfig, load_stack_config
from ssg.cli.status import (
    CheckResult,
    check_all,
    check_server,
    check_service,
    format_result,
    server_installed,
)
from ssg.platform.auth.tokens import DEV_SECRET
from ssg.platform.events.topics import TopicAdminError, ensure_topics
from ssg.testing.servers import (
    ServerStartError,
    ensure_rabbitmq,
    osmem_binary,
    port_open,
    secantus_command,
    tansu_binary,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]
TOPICS_FILE = ROOT / "deploy" / "local" / "topics.txt"
DEFAULT_PORTS = ROOT / "deploy" / "local" / "ports.toml"
PROMETHEUS_TEMPLATE = ROOT / "deploy" / "local" / "prometheus.yml"
PROMETHEUS_RULE = ROOT / "deploy" / "monitoring" / "prometheusrule.yaml"
DATA_SERVERS = ("kafka", "mongodb", "opensearch")
SUPERVISE = ROOT / "deploy" / "local" / "supervise.py"
SUPERVISED_SERVERS = ("mongodb",)  # restartable without losing data
PARTITIONS = 3
GROUPS = ("servers", "services")  # start order; stopped in reverse
STOP_TIMEOUT = 20.0
READY_TIMEOUT = 60.0
_CRASHED = re.compile(r"\[supervise\] (?P<name>[\w.-]+): pid \d+ (?:exited|killed)")
_STARTED = re.compile(r"\|\s*(?P<name>[\w.-]+)\s+started \(pid=(?P<pid>\d+)\)")


@dataclass(frozen=True)
class Stack:
    """Where the stack's configuration and its run-time files are."""

    config: StackConfig
    run_dir: Path

    @property
    def log(self) -> Path:
        """Combined honcho output of both groups."""
        return self.run_dir / "stack.log"

    def pid_file(self, group: str) -> Path:
        """Pid of the honcho process running group."""
        return self.run_dir / f"honcho.{group}.pid"

    def procfile(self, group: str) -> Path:
        """Generated Procfile of group."""
        return self.run_dir / f"Procfile.{group}"

    @property
    def prometheus_dir(self) -> Path:
        """Rendered Prometheus config and rules, and its storage (data/)."""
        return self.run_dir / "prometheus"

    @property
    def runs_prometheus(self) -> bool:
        """True when the ports file gives Prometheus a port and its binary is installed."""
        return "prometheus" in self.config.servers and server_installed("prometheus")

    @property
    def server_names(self) -> list[str]:
        """The servers the ``servers`` group runs, in start order."""
        return [*DATA_SERVERS, *(["prometheus"] if self.runs_prometheus else [])]

    @property
    def pid_dir(self) -> Path:
        """Where each supervised process's current pid is kept (``<name>.pid``)."""
        return self.run_dir / "pids"

    def process_pid(self, name: str) -> int | None:
        """Current pid of a supervised process, or None while it has none."""
        try:
            return int((self.pid_dir / f"{name}.pid").read_text().strip())
        except (OSError, ValueError):
            return None


def say(message: str) -> None:
    """Progress line for the operator."""
    print(f"[stack] {message}", flush=True)


def server_commands(stack: Stack, services: list[ServiceEntry]) -> dict[str, list[str]]:
    """Command line of each server process (loopback only)."""
    host, ports = stack.config.host, stack.config.servers
    kafka_url = f"tcp://{host}:{ports['kafka']}"
    commands = {
        "kafka": [
            tansu_binary(),
            "broker",
            "--listener-url",
            kafka_url,
            "--advertised-listener-url",
            kafka_url,
            "--storage-engine",
            "memory://tansu/",
        ],
        # Durable commits: the fault test kills MongoDB, and an acknowledged write must survive
        # that as it would on a replica set (ADR 0061).
        "mongodb": secantus_command(
            host, ports["mongodb"], str(stack.run_dir / "mongodb"), durable_commits=True
        ),
        "opensearch": [
            osmem_binary(),
            "-addr",
            f"{host}:{ports['opensearch']}",
            "-no-stdin-watch",
            "-no-ja",
        ],
    }
    if stack.runs_prometheus:
        commands["prometheus"] = [
            "prometheus",
            f"--config.file={write_prometheus_config(stack, services)}",
            f"--web.listen-address={stack.config.address('prometheus')}",
            f"--storage.tsdb.path={stack.prometheus_dir / 'data'}",
        ]
    return {
        name: supervised(stack, name, argv) if name in SUPERVISED_SERVERS else argv
        for name, argv in commands.items()
    }


def write_prometheus_config(stack: Stack, services: list[ServiceEntry]) -> Path:
    """deploy/local/prometheus.yml on this stack's ports, with the alert rules; its path."""
    folder = stack.prometheus_dir
    folder.mkdir(parents=True, exist_ok=True)
    rules = folder / "ssg.rules.yml"
    spec = yaml.safe_load(PROMETHEUS_RULE.read_text())["spec"]
    rules.write_text(yaml.safe_dump(spec, sort_keys=False))
    template = yaml.safe_load(PROMETHEUS_TEMPLATE.read_text())
    default = load_stack_config(DEFAULT_PORTS)
    config = scrape_config(template, default, stack.config, services)
    config["rule_files"] = [str(rules)]
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def port_names(config: StackConfig) -> dict[str, int]:
    """Every port of a ports file by what listens on it (``kafka``, ``catalog.metrics``, ...)."""
    names = dict(config.servers)
    for entry in config.services:
        names[f"{entry.name}.metrics"] = entry.metrics_port
        if entry.grpc_port is not None:
            names[f"{entry.name}.grpc"] = entry.grpc_port
    return names


def scrape_config(
    template: dict[str, Any],
    default: StackConfig,
    active: StackConfig,
    services: list[ServiceEntry],
) -> dict[str, Any]:
    """The scrape config with each target moved from its port in the default ports file to the
    same process's port in the active one; targets of processes not running are left out."""
    by_port = {port: name for name, port in port_names(default).items()}
    running = {"prometheus", *(f"{entry.name}.metrics" for entry in services)}
    ports = port_names(active)
    config = dict(template)
    jobs = []
    for job in template["scrape_configs"]:
        groups = []
        for group in job["static_configs"]:
            targets = []
            for target in group["targets"]:
                old = int(target.rpartition(":")[2])
                name = by_port.get(old)
                if name is None:
                    targets.append(target)  # not a stack port: kept as written
                elif name in running and name in ports:
                    targets.append(f"{active.host}:{ports[name]}")
            if targets:
                groups.append({**group, "targets": targets})
        if groups:
            jobs.append({**job, "static_configs": groups})
    config["scrape_configs"] = jobs
    return config


def supervised(stack: Stack, name: str, argv: list[str]) -> list[str]:
    """argv run under deploy/local/supervise.py: restarted with backoff when it exits."""
    return [
        sys.executable,
        str(SUPERVISE),
        "--name",
        name,
        "--pid-dir",
        str(stack.pid_dir),
        "--",
        *argv,
    ]


def service_environment(stack: Stack, entry: ServiceEntry) -> dict[str, str]:
    """SSG_* settings of one service process on the local stack."""
    config = stack.config
    env = {
        "SSG_ENV": "local",
        "SSG_SERVICE": entry.service,
        "SSG_INSTANCE": "global",
        "SSG_GRPC_HOST": config.host,
        "SSG_METRICS_HOST": config.host,
        "SSG_METRICS_PORT": str(entry.metrics_port),
        "SSG_MONGODB_URI": config.mongodb_uri(entry.service),
        "SSG_KAFKA_BOOTSTRAP": config.kafka_bootstrap,
        "SSG_KAFKA_LOCAL_PROFILE": "true",
        "SSG_OPENSEARCH_URL": config.opensearch_url,
        "SSG_AMQP_URL": config.amqp_url,
        "SSG_JWT_SECRET": DEV_SECRET,
        "PYTHONUNBUFFERED": "1",
    }
    if entry.grpc_port is not None:
        env["SSG_GRPC_PORT"] = str(entry.grpc_port)
    return env | entry.env


def service_commands(stack: Stack, entries: list[ServiceEntry]) -> dict[str, list[str]]:
    """Command line of each service process: env settings, then python -m module."""
    commands = {}
    for entry in entries:
        env = [f"{key}={value}" for key, value in service_environment(stack, entry).items()]
        argv = ["env", *env, sys.executable, "-m", entry.module]
        commands[entry.name] = supervised(stack, entry.name, argv)
    return commands


def write_procfile(path: Path, commands: dict[str, list[str]]) -> None:
    """A honcho Procfile; exec so that honcho's signals reach the process itself."""
    lines = [f"{name}: exec {shlex.join(argv)}" for name, argv in commands.items()]
    path.write_text("# generated by deploy/local/stack.py; do not edit\n" + "\n".join(lines) + "\n")


def start_group(stack: Stack, group: str, commands: dict[str, list[str]]) -> int:
    """Run honcho for one group in the background; return its pid (also in its pid file)."""
    import subprocess

    procfile = stack.procfile(group)
    write_procfile(procfile, commands)
    empty_env = stack.run_dir / "honcho.env"  # keeps honcho from reading a stray ./.env
    empty_env.touch()
    argv = [sys.executable, "-m", "honcho", "--no-colour", "-f", str(procfile)]
    argv += ["-d", str(ROOT), "-e", str(empty_env), "start"]
    with stack.log.open("ab") as log:
        process = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    stack.pid_file(group).write_text(f"{process.pid}\n")
    return process.pid


def running_pid(stack: Stack, group: str) -> int | None:
    """Pid of group's honcho when it is alive, else None (a stale pid file is removed)."""
    path = stack.pid_file(group)
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    if _alive(pid):
        return pid
    path.unlink(missing_ok=True)
    return None


def wait_ready(stack: Stack, group: str, check: Callable[[], CheckResult]) -> CheckResult:
    """Poll check until UP; fail early when the group's honcho has exited."""
    last: list[CheckResult] = []
    exited: list[bool] = []

    def ready_or_exited() -> bool:
        if running_pid(stack, group) is None or crashed_while_starting(stack):
            exited.append(True)
            return True
        last[:] = [check()]
        return last[0].up

    try:
        wait_until(ready_or_exited, READY_TIMEOUT, group)
    except ServerStartError:
        reason = last[0].detail if last else "no answer"
        raise ServerStartError(f"{reason}\n{tail(stack.log)}") from None
    if exited:
        what = ", ".join(crashed_while_starting(stack)) or f"honcho ({group})"
        raise ServerStartError(f"{what} exited; last lines of {stack.log}:\n{tail(stack.log)}")
    return last[0]


def crashed_while_starting(stack: Stack) -> list[str]:
    """Supervised processes that exited since `up` began (its log is new): a start-up failure."""
    try:
        text = stack.log.read_text(errors="replace")
    except OSError:
        return []
    return sorted({match["name"] for match in _CRASHED.finditer(text)})


def create_topics(config: StackConfig, names: list[str]) -> int:
    """Create each topic and its .dlq (existing ones are kept); return how many were new."""
    created = asyncio.run(ensure_topics(config.kafka_bootstrap, names, PARTITIONS))
    return len(created)


def read_topics(path: Path = TOPICS_FILE) -> list[str]:
    """Topic names from topics.txt (comments and blank lines skipped)."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def up(stack: Stack, demo_data: bool = True) -> int:
    """Start servers, topics, services; wait for health; seed demo data; print the endpoints."""
    services = installed_services(stack.config)
    wanted = [group for group in GROUPS if group == "servers" or services]
    running = [group for group in GROUPS if running_pid(stack, group)]
    if running and running != wanted:
        missing = ", ".join(g for g in wanted if g not in running)
        say(f"the local stack is only partly up ({missing} not running; see {stack.log})")
        say("run `make down`, then `make up`")
        return 1
    if running:
        say("the local stack is already up (`make down` stops it); endpoints:")
        print_endpoints(stack, services)
        return 0
    busy = [
        f"{name}:{port}" for name, port in _owned_ports(stack.config, services) if _in_use(port)
    ]
    if busy:
        say(f"ports already in use by something else: {', '.join(busy)}")
        return 1
    stack.run_dir.mkdir(parents=True, exist_ok=True)
    (stack.run_dir / "mongodb").mkdir(exist_ok=True)
    stack.pid_dir.mkdir(exist_ok=True)
    for stale in stack.pid_dir.glob("*.pid"):
        stale.unlink()
    if stack.log.exists():
        stack.log.replace(stack.run_dir / "stack.log.1")
    try:
        say(f"RabbitMQ: {ensure_rabbitmq(stack.config.amqp_url)}")
        if "prometheus" in stack.config.servers and not stack.runs_prometheus:
            say("prometheus: the Debian package is not installed; skipped (make system-packages)")
        start_group(stack, "servers", server_commands(stack, services))
        for name in stack.server_names:
            result = wait_ready(stack, "servers", partial(check_server, stack.config, name, 1.0))
            say(f"{name} is up ({result.detail})")
        created = create_topics(stack.config, read_topics())
        say(f"Kafka topics: {created} created ({PARTITIONS} partitions each, with .dlq topics)")
        for entry in stack.config.services:
            if entry not in services:
                say(f"{entry.name}: {entry.module} is not installed yet; skipped")
        if services:
            start_group(stack, "services", service_commands(stack, services))
            for entry in services:
                result = wait_ready(
                    stack, "services", partial(check_service, stack.config, entry, 1.0)
                )
                say(f"{entry.name} is up ({result.detail})")
    except (ServerStartError, TopicAdminError, OSError) as exc:
        say(f"start failed: {exc}")
        down(stack)
        return 1
    seeded = seed_demo_data(stack, services) if demo_data else True
    print_endpoints(stack, services)
    return 0 if seeded else 1


def seed_demo_data(stack: Stack, services: list[ServiceEntry]) -> bool:
    """Seed every running service that has demo data (idempotent); False if seeding failed.

    A failed seeding leaves the stack up: the services work, and `uv run ssg seed` retries.
    """
    from ssg.cli.seed import SeedError, seed_stack

    try:
        summaries = seed_stack(stack.config, only=[entry.name for entry in services])
    except (SeedError, grpc.aio.AioRpcError, OSError) as exc:
        reason = (
            f"{exc.code().name}: {exc.details()}" if isinstance(exc, grpc.aio.AioRpcError) else exc
        )
        say(f"demo data: seeding failed ({reason}); the stack stays up, retry: uv run ssg seed")
        return False
    if not summaries:
        say("demo data: no running service has demo data")
    for summary in summaries:
        say(f"demo data: {summary.line()}")
    return True


def down(stack: Stack) -> int:
    """Stop services, then servers (SIGTERM to honcho, SIGKILL after a timeout); check ports."""
    stopped_any = False
    for group in reversed(GROUPS):
        pid = running_pid(stack, group)
        if pid is None:
            continue
        stopped_any = True
        say(f"stopping {group} (honcho pid {pid})")
        children = honcho_children(stack.log, set(_group_names(stack, group)))
        os.kill(pid, signal.SIGTERM)
        try:
            wait_until(partial(_gone, pid), STOP_TIMEOUT, f"honcho ({group}) exit")
        except ServerStartError:
            say(f"{group} did not stop in {STOP_TIMEOUT:.0f}s; SIGKILL")
            _kill_group(pid)
            for child in children:
                _kill_group(child)
            for name in _group_names(stack, group):
                if (supervised_pid := stack.process_pid(name)) is not None:
                    _kill_group(supervised_pid)
        stack.pid_file(group).unlink(missing_ok=True)
    if not stopped_any:
        say("the local stack is not running")
    owned = _owned_ports(stack.config, stack.config.services)
    try:
        wait_until(lambda: not any(_in_use(port) for _, port in owned), 10, "free ports")
    except ServerStartError:
        still = [f"{name}:{port}" for name, port in owned if _in_use(port)]
        say(f"ports still in use: {', '.join(still)}")
        return 1
    if stopped_any:
        say("stopped; all stack ports are free")
    return 0


def status(stack: Stack) -> int:
    """Which honcho groups run, and the health of every server and service."""
    for group in GROUPS:
        pid = running_pid(stack, group)
        say(f"honcho {group}: " + (f"running (pid {pid})" if pid else "not running"))
    results = check_all(stack.config)
    console = Console(highlight=False, soft_wrap=True)
    for result in results:
        console.print(format_result(result))
    return 0 if all(r.ok for r in results) else 1


def print_endpoints(stack: Stack, services: list[ServiceEntry]) -> None:
    """Where everything answers, and how to get a token."""
    config = stack.config
    print("\nLocal stack (127.0.0.1 only):")
    print(f"  Kafka bootstrap  {config.kafka_bootstrap}")
    print(f"  MongoDB          {config.mongodb_uri('<db>')}")
    print(f"  OpenSearch       {config.opensearch_url}")
    print(f"  RabbitMQ         {config.amqp_url}")
    if stack.runs_prometheus:
        print(f"  Prometheus       {config.prometheus_url}")
    for entry in services:
        grpc = f"gRPC {config.host}:{entry.grpc_port}  " if entry.grpc_port else ""
        print(f"  {entry.name:<16} {grpc}metrics http://{config.host}:{entry.metrics_port}/metrics")
    print(f"  logs             {stack.log}")
    print("\nDev token:  uv run ssg token --role member --org demo-org --subject alice")
    print("Health:     make status        Stop: make down\n")


def installed_services(config: StackConfig) -> list[ServiceEntry]:
    """Services of the ports file whose code exists in this environment."""
    return [entry for entry in config.services if entry.installed()]


def honcho_children(log: Path, names: set[str]) -> list[int]:
    """Pids honcho reported starting for the named processes (from its log)."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return []
    pids = []
    for match in _STARTED.finditer(text):
        if match["name"].rsplit(".", 1)[0] in names:
            pids.append(int(match["pid"]))
    return pids


def tail(path: Path, lines: int = 15) -> str:
    """Last lines of a log file."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _group_names(stack: Stack, group: str) -> list[str]:
    if group == "servers":
        return stack.server_names
    return [entry.name for entry in stack.config.services]


def _owned_ports(
    config: StackConfig, services: list[ServiceEntry] | tuple[ServiceEntry, ...]
) -> list[tuple[str, int]]:
    owned = [
        (name, port)
        for name, port in config.servers.items()
        if name != "rabbitmq" and server_installed(name)
    ]
    for entry in services:
        owned.append((f"{entry.name}.metrics", entry.metrics_port))
        if entry.grpc_port is not None:
            owned.append((f"{entry.name}.grpc", entry.grpc_port))
    return owned


def _in_use(port: int) -> bool:
    return port_open(port)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours has exited; reap it
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == 0


def _gone(pid: int) -> bool:
    return not _alive(pid)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run up, down or status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument(
        "--ports",
        type=Path,
        help=f"ports file (default ${PORTS_FILE_ENV} or deploy/local/ports.toml)",
    )
    parser.add_argument(
        "--run-dir", type=Path, default=Path(os.environ.get("SSG_RUN_DIR", ROOT / ".run"))
    )
    parser.add_argument(
        "--no-demo-data",
        action="store_true",
        help="up: start without seeding (seed later with `uv run ssg seed`)",
    )
    args = parser.parse_args(argv)
    config = load_stack_config(args.ports or _default_ports())
    stack = Stack(config, args.run_dir.resolve())
    if args.command == "up":
        return up(stack, demo_data=not args.no_demo_data)
    return {"down": down, "status": status}[args.command](stack)


def _default_ports() -> Path:
    return Path(os.environ.get(PORTS_FILE_ENV) or ROOT / "deploy" / "local" / "ports.toml")


if __name__ == "__main__":
    sys.exit(main())
