"""The search dashboard queries metrics the search processes actually export."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import REGISTRY

import ssg.search.events.activity
import ssg.search.events.indexer
import ssg.search.service
import ssg.search.store.writer  # noqa: F401  (registers the metrics)

DASHBOARD = (
    Path(__file__).resolve().parents[3] / "deploy" / "monitoring" / "dashboards" / "search.json"
)


def exported() -> set[str]:
    names: set[str] = set()
    for collector in list(REGISTRY._collector_to_names):
        for metric in collector.collect():
            names |= {s.name for s in metric.samples}
    return names


def test_every_search_metric_on_the_dashboard_is_exported():
    panels = json.loads(DASHBOARD.read_text())["panels"]
    used = {
        name
        for panel in panels
        for target in panel["targets"]
        for name in re.findall(r"\bssg_search_[a-z_]+", target["expr"])
    }
    assert "ssg_search_zero_results_total" in used
    # Labelled metrics export samples only once a label set is used: compare metric families.
    families = {n.removesuffix("_total").removesuffix("_bucket") for n in exported()}
    families |= {name.removesuffix("_total") for name in REGISTRY._names_to_collectors}
    missing = {u for u in used if u.removesuffix("_total").removesuffix("_bucket") not in families}
    assert not missing
