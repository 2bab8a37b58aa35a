"""deploy/monitoring: rules pass promtool, alerts link the runbook, dashboards are well formed, and
every metric they name is one a running platform process exports on /metrics."""

from __future__ import annotations

import importlib
import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from ssg.contracts.diagnostics.v1 import diagnostics_pb2_grpc as pb_grpc
from ssg.platform.diagnostics import DiagnosticsServicer
from ssg.platform.grpc.server import build_server
from ssg.platform.metrics import start_metrics_server, stop_metrics_server
from ssg.platform.settings import PlatformSettings, load_settings

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"
RULE = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
DASHBOARDS = sorted((MONITORING / "dashboards").glob("*.json"))
# Modules whose metrics every process kind registers at import (the relay, the consumer).
METRIC_MODULES = ["ssg.platform.events.relay", "ssg.platform.events.consumer"]
# Made by Prometheus itself for every target, not by the code.
PROMETHEUS_SERIES = {"up"}
NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
    "summary": ("", "_count", "_sum", "_created"),
}


def rules() -> Iterator[dict[str, Any]]:
    for group in RULE["spec"]["groups"]:
        yield from group["rules"]


def alerts() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "alert" in rule]


def dashboard_exprs() -> Iterator[tuple[str, str]]:
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel["targets"]:
                yield f"{path.name}: {panel['title']}", target["expr"]
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                yield f"{path.name}: ${variable['name']}", variable["query"]["query"]


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression reads: identifiers followed by a selector or range,
    and ours by prefix (recording rules carry a colon)."""
    without_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    names = set()
    for match in NAME.finditer(without_strings):
        token, after = match.group(), without_strings[match.end() : match.end() + 1]
        selected = after != "" and after in "{["
        if selected or token.startswith(("ssg_", "grpc_server_")) or ":" in token:
            names.add(token)
    return names


@pytest.fixture(scope="module")
def exported() -> set[str]:
    """Series names read from a live /metrics of a platform gRPC server whose process also
    loaded the relay's and the consumer's metrics (families without samples included)."""
    for module in METRIC_MODULES:
        importlib.import_module(module)
    settings = load_settings(
        PlatformSettings, service="metrics-names", grpc_host="127.0.0.1", grpc_port=0
    )
    build_server(
        settings, [(pb_grpc.add_DiagnosticsServiceServicer_to_server, DiagnosticsServicer())]
    )
    port = start_metrics_server("127.0.0.1", 0, registry=REGISTRY)
    assert port is not None
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    finally:
        stop_metrics_server(port)
    return series_names(text)


def series_names(exposition: str) -> set[str]:
    """Every series name an exposition's metric families stand for."""
    names = set()
    for family in text_string_to_metric_families(exposition):
        names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
        names |= {sample.name for sample in family.samples}
    return names


def test_promtool_checks_and_unit_tests_pass(manifests: Any, tmp_path: Path) -> None:
    assert manifests.check_rules(tmp_path) == []


def test_promtool_unit_tests_catch_a_changed_threshold(manifests: Any, tmp_path: Path) -> None:
    rules_file = manifests.write_rules(tmp_path)
    text = rules_file.read_text().replace(
        "ssg_outbox_oldest_unsent_age_seconds) > 300",
        "ssg_outbox_oldest_unsent_age_seconds) > 3000",
    )
    rules_file.write_text(text)
    status, output = manifests.run(["promtool", "test", "rules", "alerts.test.yml"], cwd=tmp_path)
    assert status != 0 and "SsgOutboxBacklogOld" in output


def test_every_alert_is_unit_tested_firing_and_quiet() -> None:
    tests = yaml.safe_load((MONITORING / "rules-tests" / "alerts.test.yml").read_text())["tests"]
    cases = [case for test in tests for case in test.get("alert_rule_test", [])]
    for alert in alerts():
        mine = [case for case in cases if case["alertname"] == alert["alert"]]
        assert any(case["exp_alerts"] for case in mine), f"{alert['alert']} never fires"
        assert any(not case["exp_alerts"] for case in mine), f"{alert['alert']} never quiet"


def test_every_alert_links_its_runbook_section() -> None:
    headings = re.findall(r"^#+ (.+)$", (ROOT / "docs" / "runbook.md").read_text(), re.M)
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}
    for alert in alerts():
        path, _, anchor = alert["annotations"]["runbook_url"].partition("#")
        assert path == "docs/runbook.md"
        assert anchor == alert["alert"].lower() and anchor in anchors, alert["alert"]
        assert alert["labels"]["severity"] in ("warning", "critical")
        assert alert["annotations"]["summary"] and alert["annotations"]["description"]


def test_dashboards_are_grafana_json_with_unique_ids() -> None:
    uids = set()
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        assert board["uid"] not in uids
        uids.add(board["uid"])
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)) and ids
        for panel in board["panels"]:
            assert panel["targets"] and panel["datasource"]["uid"] == "${datasource}"


def test_the_metric_name_reader_finds_names(exported: set[str]) -> None:
    expr = 'sum by (service) (rate(foo_total{a="b:c"}[5m])) / ssg:x:rate5m + up{job="j"}'
    assert metric_names(expr) == {"foo_total", "ssg:x:rate5m", "up"}
    assert {"grpc_server_handled_total", "ssg_outbox_backlog", "ssg_health_serving"} <= exported
    assert "grpc_server_handling_seconds_bucket" in exported


def test_alerts_and_dashboards_read_only_what_the_code_exports(exported: set[str]) -> None:
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    known = exported | recorded | PROMETHEUS_SERIES
    used = [(f"rule {r.get('alert') or r.get('record')}", r["expr"]) for r in rules()]
    used += list(dashboard_exprs())
    unknown = {(where, name) for where, expr in used for name in metric_names(expr) - known}
    assert unknown == set()
    assert sum(1 for _, expr in used if metric_names(expr)) == len(used)
