"""Business gauges of the registration datastore, recounted beside the API (ssg.platform.gauges)."""

from __future__ import annotations

from prometheus_client import Gauge

from ssg.platform.gauges import StoreGauge, with_zeros
from ssg.registration.domain.model import OrganizationStatus
from ssg.registration.store.ports import Store

ORGANIZATIONS = Gauge(
    "ssg_registration_organizations",
    "Organizations by status, counted in the datastore (every replica reports the same: use max).",
    ["status"],
)


def registration_gauges(store: Store) -> list[StoreGauge]:
    """The gauges the registration API keeps current from store."""
    statuses = [status.value for status in OrganizationStatus]
    return [
        StoreGauge(ORGANIZATIONS, lambda: with_zeros(store.organizations_by_status(), statuses))
    ]
