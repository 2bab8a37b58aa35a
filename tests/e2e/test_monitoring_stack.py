"""The real Prometheus that the local stack runs scrapes it: every target up, the rules load, and
every metric the alerts and dashboards read is one the running processes export.

The stack is the session's (conftest.local_stack: stack.py's on remapped free ports, with its
demo data); stack.py starts the Debian Prometheus with deploy/local/prometheus.yml moved to those
ports and the PrometheusRule's rules.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from ssg.testing.waiting import eventually

from .conftest import LocalStack

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_LOCAL = ROOT / "deploy" / "local" / "prometheus.yml"


@pytest.fixture
def prometheus(local_stack: LocalStack) -> str:
    """URL of the stack's own Prometheus."""
    table = local_stack.table()
    return f"http://{table['host']}:{table['servers']['prometheus']}"


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


def _value(url: str, query: str) -> float | None:
    result = api(url, "/api/v1/query", query=query)["result"]
    return float(result[0]["value"][1]) if result else None


@pytest.mark.timeout(300)
async def test_the_business_and_funnel_series_have_samples_from_the_seeded_stack(
    prometheus: str,
) -> None:
    """The business dashboards' series are not only declared: the stores' recount of the demo
    data reaches Prometheus (gauges refreshed every SSG_STORE_GAUGES_SECONDS, 30 s)."""

    def seeded() -> bool:
        verified = _value(prometheus, 'max(ssg_registration_organizations{status="VERIFIED"})')
        published = _value(
            prometheus, "sum(max by (sdg, region) (ssg_catalog_published_solutions))"
        )
        return bool(verified) and bool(published)

    await eventually(
        lambda: asyncio.to_thread(seeded), what="business gauges", within=150, interval=2
    )
    statuses = api(
        prometheus,
        "/api/v1/query",
        query="count by (status) (ssg_recommendation_match_steps_total)",
    )["result"]
    assert {"PROPOSED", "ACCEPTED", "AGREED", "IMPLEMENTED", "DECLINED"} <= {
        r["metric"]["status"] for r in statuses
    }
