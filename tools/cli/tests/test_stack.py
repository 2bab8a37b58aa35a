"""deploy/local/stack.py up, status, down for real, on free ports and a scratch run directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path

import yaml
from typer.testing import CliRunner

from ssg.cli.config import load_stack_config
from ssg.cli.main import app
from ssg.testing.fixtures import load_script
from ssg.testing.servers import free_port, port_open, wait_until

ROOT = Path(__file__).resolve().parents[3]
STACK = ROOT / "deploy" / "local" / "stack.py"
DEFAULT_PORTS = ROOT / "deploy" / "local" / "ports.toml"
TOPICS = ROOT / "deploy" / "local" / "topics.txt"


def _topics_created() -> int:
    """Each topic of topics.txt and its .dlq twin."""
    lines = (line.split("#", 1)[0].strip() for line in TOPICS.read_text().splitlines())
    return 2 * len([line for line in lines if line])


def _stack(command: str, ports: Path, run_dir: Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, str(STACK), command, "--ports", str(ports), "--run-dir", str(run_dir)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def _ports_file(tmp_path: Path, name: str, module: str) -> Path:
    ports = tmp_path / "ports.toml"
    ports.write_text(
        'host = "127.0.0.1"\n[servers]\n'
        f"kafka = {free_port()}\nmongodb = {free_port()}\nopensearch = {free_port()}\n"
        f"rabbitmq = 5672\nprometheus = {free_port()}\n"
        f'[services.{name}]\nmodule = "{module}"\n'
        f"grpc = {free_port()}\nmetrics = {free_port()}\n"
    )
    return ports


def _all_free(ports: Path) -> bool:
    config = load_stack_config(ports)
    owned = [*config.servers.values(), *(s.metrics_port for s in config.services)]
    owned += [s.grpc_port for s in config.services if s.grpc_port]
    return not any(port_open(port) for port in owned if port != 5672)


def _restarted(pid_file: Path, old: int) -> bool:
    try:
        return int(pid_file.read_text()) != old
    except (OSError, ValueError):
        return False


def test_up_status_down(tmp_path: Path, amqp_url: str) -> None:
    ports = _ports_file(tmp_path, "diagnostics", "ssg.platform.diagnostics")
    run_dir = tmp_path / "run"
    config = load_stack_config(ports)
    try:
        started = _stack("up", ports, run_dir)
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"Kafka topics: {_topics_created()} created" in started.stdout
        assert f"Kafka bootstrap  {config.kafka_bootstrap}" in started.stdout
        assert f"Prometheus       {config.prometheus_url}" in started.stdout
        rendered = yaml.safe_load((run_dir / "prometheus" / "prometheus.yml").read_text())
        scraped = {
            t
            for job in rendered["scrape_configs"]
            for g in job["static_configs"]
            for t in g["targets"]
        }
        metrics = config.services[0].metrics_port
        assert scraped == {config.address("prometheus"), f"127.0.0.1:{metrics}"}
        assert (run_dir / "honcho.servers.pid").is_file()

        again = _stack("up", ports, run_dir)
        assert again.returncode == 0
        assert "already up" in again.stdout

        status = CliRunner().invoke(app, ["status", "--ports", str(ports)])
        assert status.exit_code == 0, status.stdout
        assert status.stdout.count(" UP ") == 6
        assert "prometheus" in status.stdout
        assert _stack("status", ports, run_dir).returncode == 0

        # A crashed process is started again (with a log line), the rest of the stack stays up.
        for name in ("diagnostics", "mongodb"):
            pid_file = run_dir / "pids" / f"{name}.pid"
            killed = int(pid_file.read_text())
            os.kill(killed, signal.SIGKILL)
            wait_until(partial(_restarted, pid_file, killed), 30, f"{name} restarted")
            assert (
                f"[supervise] {name}: pid {killed} killed by SIGKILL"
                in (run_dir / "stack.log").read_text()
            )
        wait_until(lambda: _stack("status", ports, run_dir).returncode == 0, 60, "all up again")
    finally:
        stopped = _stack("down", ports, run_dir)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert "all stack ports are free" in stopped.stdout
    assert _all_free(ports)
    assert not list(run_dir.glob("honcho.*.pid"))
    after = CliRunner().invoke(app, ["status", "--ports", str(ports)])
    assert after.exit_code == 1


def test_a_service_that_dies_at_start_fails_up_and_stops_everything(
    tmp_path: Path, amqp_url: str
) -> None:
    ports = _ports_file(tmp_path, "broken", "json")  # `python -m json` exits at once
    run_dir = tmp_path / "run"
    try:
        started = _stack("up", ports, run_dir)
    finally:
        _stack("down", ports, run_dir)
    assert started.returncode == 1
    assert "broken exited" in started.stdout
    assert "No module named json.__main__" in started.stdout  # the log's tail shows why
    assert _all_free(ports)
    assert not list(run_dir.glob("honcho.*.pid"))


def test_the_scrape_config_follows_the_ports_file_in_use(tmp_path: Path) -> None:
    stack = load_script(STACK, "ssg_local_stack")
    ports = _ports_file(tmp_path, "registration", "ssg.registration")
    active = load_stack_config(ports)
    template = yaml.safe_load((ROOT / "deploy" / "local" / "prometheus.yml").read_text())
    config = stack.scrape_config(template, load_stack_config(DEFAULT_PORTS), active, [])
    groups = {job["job_name"]: job["static_configs"] for job in config["scrape_configs"]}
    # Nothing runs: only Prometheus itself, on its new port.
    assert groups == {"prometheus": [{"targets": [active.address("prometheus")]}]}

    (entry,) = active.services
    config = stack.scrape_config(template, load_stack_config(DEFAULT_PORTS), active, [entry])
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "ssg-services"]
    assert job["static_configs"] == [
        {
            "targets": [f"127.0.0.1:{entry.metrics_port}"],
            "labels": {"service": "registration", "process": "api"},
        }
    ]
    assert config["global"] == template["global"]
