"""Business gauges of the catalog datastore, recounted beside the API (ssg.platform.gauges)."""

from __future__ import annotations

from prometheus_client import Gauge

from ssg.catalog.store.ports import Store
from ssg.platform.gauges import Counts, StoreGauge

PUBLISHED_SOLUTIONS = Gauge(
    "ssg_catalog_published_solutions",
    "Published solutions by SDG and region (a solution counts under each of its SDGs and "
    "regions; region is empty when it names none). Every replica reports the same: use max.",
    ["sdg", "region"],
)


def published_counts(store: Store) -> Counts:
    """Published solutions keyed by (sdg, region) label values."""
    counts = store.published_solutions_by_sdg_region()
    return {(str(sdg), region): float(n) for (sdg, region), n in counts.items()}


def catalog_gauges(store: Store) -> list[StoreGauge]:
    """The gauges the catalog API keeps current from store."""
    return [StoreGauge(PUBLISHED_SOLUTIONS, lambda: published_counts(store))]
