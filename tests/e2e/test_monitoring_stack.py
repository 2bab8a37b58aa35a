"""The real Prometheus scrapes the running local stack: every target up, the rules load, and every
metric the alerts and dashboards read is one the running processes export.

The stack is the session's (conftest.local_stack: stack.py's on remapped free ports, with its
demo data); Prometheus gets
deploy/monitoring/prometheus-local.yml with the same remapping and the PrometheusRule's rules.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from ssg.testing.servers import free_port
from ssg.testing.waiting import eventually

from .conftest import LocalStack

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_LOCAL = ROOT / "deploy" / "monitoring" / "prometheus-local.yml"


def prometheus_config(tmp_path: Path, mapping: dict[int, int], port: int, rules: Path) -> Path:
    """prometheus-local.yml with the remapped targets, a fast scrape and the platform's rules."""
    config = yaml.safe_load(PROMETHEUS_LOCAL.read_text())
    config["global"]["scrape_interval"] = "1s"
    config["global"]["scrape_timeout"] = "900ms"
    config["rule_files"] = [str(rules)]
    mapping = {**mapping, 9090: port}
    for job in config["scrape_configs"]:
        for group in job["static_configs"]:
            targets = []
            for target in group["targets"]:
                host, _, old = target.rpartition(":")
                targets.append(f"{host}:{mapping[int(old)]}")
            group["targets"] = targets
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def prometheus(tmp_path: Path, local_stack: LocalStack, manifests: ModuleType) -> Iterator[str]:
    """The Debian Prometheus on a free loopback port scraping the stack; yields its URL."""
    port = free_port()
    rules = manifests.write_rules(tmp_path / "rules")
    config = prometheus_config(tmp_path, local_stack.mapping, port, rules)
    log = (tmp_path / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def api(url: str, path: str, **params: str) -> Any:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    with urllib.request.urlopen(f"{url}{path}{query}", timeout=5) as response:
        return json.loads(response.read())["data"]


def exported_names(url: str, tool: ModuleType) -> set[str]:
    """Series names of every target's /metrics, as Prometheus found the targets."""
    names: set[str] = set()
    for target in api(url, "/api/v1/targets")["activeTargets"]:
        with urllib.request.urlopen(target["scrapeUrl"], timeout=5) as response:
            names |= tool.exposition_names(response.read().decode())
    return names


def _all_up(url: str, expected: int) -> bool:
    try:
        targets = api(url, "/api/v1/targets")["activeTargets"]
    except OSError:
        return False
    return len(targets) == expected and all(t["health"] == "up" for t in targets)


@pytest.mark.timeout(420)
async def test_prometheus_sees_every_process_up_and_every_metric_it_is_asked_for(
    prometheus: str, manifests: ModuleType
) -> None:
    config = yaml.safe_load(PROMETHEUS_LOCAL.read_text())
    targets = [
        t for job in config["scrape_configs"] for g in job["static_configs"] for t in g["targets"]
    ]
    await eventually(
        lambda: _all_up(prometheus, len(targets)), what="every target up", within=60, interval=0.5
    )

    # The rules loaded into the real server, with nothing failing to evaluate.
    groups = api(prometheus, "/api/v1/rules")["groups"]
    assert sum(len(g["rules"]) for g in groups) == len(manifests.rules())
    assert all(rule["health"] != "err" for g in groups for rule in g["rules"])

    # Names every running process exports (families without samples too), read off /metrics.
    exported = await asyncio.to_thread(exported_names, prometheus, manifests)
    recorded = {rule["record"] for rule in manifests.rules() if "record" in rule}
    unknown = {
        (where, name)
        for where, expr in manifests.monitoring_queries()
        for name in manifests.promql_metric_names(expr) - exported - recorded - {"up"}
    }
    assert unknown == set()

    # The series carry the target labels the rules group by, and the seeding was seen.
    handled = api(
        prometheus, "/api/v1/query", query="sum by (service, process) (grpc_server_handled_total)"
    )["result"]
    assert {(r["metric"]["service"], r["metric"]["process"]) for r in handled} >= {
        ("registration", "api"),
        ("catalog", "api"),
    }
    serving = api(prometheus, "/api/v1/query", query='ssg_health_serving{process="api"}')["result"]
    assert serving and all(r["value"][1] == "1" for r in serving)
