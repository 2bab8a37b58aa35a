"""deploy/monitoring: rules pass promtool, alerts link the runbook, dashboards are well formed, and
every metric they name is one a running platform process exports on /metrics."""

from __future__ import annotations

import asyncio
import importlib
import json
import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

from ssg.contracts.diagnostics.v1 import diagnostics_pb2_grpc as pb_grpc
from ssg.platform.diagnostics import DiagnosticsServicer
from ssg.platform.grpc.server import build_server
from ssg.platform.metrics import start_metrics_server, stop_metrics_server
from ssg.platform.settings import PlatformSettings, load_settings

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"
DASHBOARDS = sorted((MONITORING / "dashboards").glob("*.json"))
# Modules whose metrics every process kind registers at import (the relay, the consumer).
METRIC_MODULES = [
    "ssg.platform.events.relay",
    "ssg.platform.events.consumer",
    # The search dashboard's series (deploy/monitoring/dashboards/search.json).
    "ssg.search.service",
    "ssg.search.events.activity",
    "ssg.search.events.indexer",
    "ssg.search.store.writer",
    # The matchmaking, notifications and business dashboards' series.
    "ssg.recommendation.funnel",
    "ssg.notifications.delivery.metrics",
    "ssg.notifications.events.results",
    "ssg.notifications.events.dispatcher",
    "ssg.ingress.metrics",
    "ssg.registration.gauges",
    "ssg.catalog.gauges",
]
# Made by Prometheus itself for every target, not by the code.
PROMETHEUS_SERIES = {"up"}


def alerts(manifests: Any) -> list[dict[str, Any]]:
    return [rule for rule in manifests.rules() if "alert" in rule]


@pytest.fixture(scope="module")
async def exported(manifests: Any) -> set[str]:
    """Series names read from a live /metrics of a platform gRPC server whose process also
    loaded the relay's, the consumer's and the search service's metrics (families without
    samples included).

    Async so that the grpc.aio server is built on the running test loop, whatever loop state
    earlier tests left behind.
    """
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
        text = await asyncio.to_thread(_scrape, port)
    finally:
        stop_metrics_server(port)
    return set(manifests.exposition_names(text))


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


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


def test_every_alert_is_unit_tested_firing_and_quiet(manifests: Any) -> None:
    tests = yaml.safe_load((MONITORING / "rules-tests" / "alerts.test.yml").read_text())["tests"]
    cases = [case for test in tests for case in test.get("alert_rule_test", [])]
    for alert in alerts(manifests):
        mine = [case for case in cases if case["alertname"] == alert["alert"]]
        assert any(case["exp_alerts"] for case in mine), f"{alert['alert']} never fires"
        assert any(not case["exp_alerts"] for case in mine), f"{alert['alert']} never quiet"


def test_every_alert_links_its_runbook_section(manifests: Any) -> None:
    headings = re.findall(r"^#+ (.+)$", (ROOT / "docs" / "runbook.md").read_text(), re.M)
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}
    for alert in alerts(manifests):
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


def test_the_metric_name_reader_finds_names(manifests: Any, exported: set[str]) -> None:
    expr = 'sum by (service) (rate(foo_total{a="b:c"}[5m])) / ssg:x:rate5m + up{job="j"} > bar'
    assert manifests.promql_metric_names(expr) == {"foo_total", "ssg:x:rate5m", "up"}
    assert {"grpc_server_handled_total", "ssg_outbox_backlog", "ssg_health_serving"} <= exported
    assert "grpc_server_handling_seconds_bucket" in exported


def test_alerts_and_dashboards_read_only_what_the_code_exports(
    manifests: Any, exported: set[str]
) -> None:
    recorded = {rule["record"] for rule in manifests.rules() if "record" in rule}
    known = exported | recorded | PROMETHEUS_SERIES
    used = list(manifests.monitoring_queries())
    unknown = {
        (where, name)
        for where, expr in used
        for name in manifests.promql_metric_names(expr) - known
    }
    assert unknown == set()
    assert all(manifests.promql_metric_names(expr) for _, expr in used)
