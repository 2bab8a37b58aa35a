"""The organizations-by-status gauge, counted in the real store."""

from __future__ import annotations

from prometheus_client import REGISTRY

from ssg.platform.auth.tokens import DEV_SECRET
from ssg.platform.settings import load_settings
from ssg.registration.bootstrap import build_service
from ssg.registration.domain.model import OrganizationStatus
from ssg.registration.gauges import registration_gauges
from ssg.registration.settings import RegistrationSettings
from ssg.registration.store.mongo import MongoStore

from .test_service import ALICE, OPS, draft


def shown(status: str) -> float | None:
    return REGISTRY.get_sample_value("ssg_registration_organizations", {"status": status})


async def test_the_gauge_counts_organizations_by_status_with_zeros(
    mongo_client, fresh_database
) -> None:
    store = MongoStore(mongo_client, fresh_database)
    store.ensure_indexes()
    settings = load_settings(RegistrationSettings, jwt_secret=DEV_SECRET, instance="global")
    service = build_service(settings, store)
    orgs = [
        (await service.register_organization(ALICE, f"g{i}", draft(f"Gauge Org {i}"))).organization
        for i in range(3)
    ]
    await service.verify_organization(OPS, orgs[0].id, 0, "", "")

    assert store.organizations_by_status() == {"PENDING": 2, "VERIFIED": 1}
    (gauge,) = registration_gauges(store)
    gauge.refresh()
    assert shown("PENDING") == 2 and shown("VERIFIED") == 1
    assert all(
        shown(s.value) == 0 for s in OrganizationStatus if s.value not in ("PENDING", "VERIFIED")
    )

    await service.verify_organization(OPS, orgs[1].id, 0, "", "")
    gauge.refresh()
    assert (shown("PENDING"), shown("VERIFIED")) == (1, 2)
