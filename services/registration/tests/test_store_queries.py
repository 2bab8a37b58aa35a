"""The store's queries are index-backed (the real SecantusDB's planner says which index it scans),
and pages over several scope clauses and tied names come out whole and in order."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ssg.registration.domain.authorization import ALL_ORG_STATUSES, Scope
from ssg.registration.domain.model import Organization, OrganizationProfile, OrganizationType
from ssg.registration.domain.model import OrganizationStatus as S
from ssg.registration.service import utc_now
from ssg.registration.store.mongo import (
    duplicate_signals,
    list_key,
    organization_doc,
    organization_filters,
)
from ssg.registration.store.ports import OrganizationQuery
from ssg.testing.plans import unindexed

PUBLIC = (Scope(frozenset({S.VERIFIED.value})),)
REVIEWER = (*PUBLIC, Scope(ALL_ORG_STATUSES, instance="africa"))
OPERATOR = (Scope(ALL_ORG_STATUSES),)
SORT = [("list_key", 1)]


def test_list_key_orders_as_the_pair_of_name_and_id():
    pairs = [("ab", "2"), ("ab", "10"), ("a", "9"), ("abc", "1"), ("b", "0"), ("a b", "5")]
    assert sorted(pairs) == sorted(pairs, key=lambda p: list_key(*p))


# The callers' common shapes: every filter of each is equalities, at most one $in or range, and
# an index holds exactly those fields (the stand-in's planner reports IXSCAN only then; with more
# fields than an index holds, it scans the index of the first field that leads one).
AFTER = ("kenya water", "abc")
CASES = [
    (OrganizationQuery(PUBLIC), None),
    (OrganizationQuery(PUBLIC), AFTER),
    (OrganizationQuery(PUBLIC, type="NGO"), None),
    (OrganizationQuery(PUBLIC, type="NGO"), AFTER),
    (OrganizationQuery(PUBLIC, country="KEN"), AFTER),
    (OrganizationQuery(PUBLIC, region="AFRICA"), AFTER),
    (OrganizationQuery(PUBLIC, sdg=5), AFTER),
    (OrganizationQuery(REVIEWER), None),
    (OrganizationQuery(REVIEWER, status="PENDING"), AFTER),
    (OrganizationQuery(OPERATOR), None),
    (OrganizationQuery(OPERATOR, type="NGO"), None),
]


@pytest.mark.parametrize(("query", "after"), CASES, ids=repr)
def test_every_list_filter_is_served_by_an_index(served, query, after):
    filters = organization_filters(query, after)
    assert filters
    assert unindexed(served.db.organizations, filters, SORT) == []


def test_duplicate_pool_filters_are_served_by_an_index(served):
    filters = duplicate_signals("KEN", ["n:wate", "a:kwa"], "water.example.org")
    assert len(filters) == 2
    assert unindexed(served.db.organizations, filters, [("_id", 1)]) == []


def test_pages_over_two_scopes_and_tied_names_are_whole_and_ordered(served, suffix):
    now = utc_now()
    name = f"Tied Name {suffix}"
    orgs = [
        Organization(
            f"t{suffix}{i:02}",
            OrganizationProfile(name=name, type=OrganizationType.NGO, headquarters_country="GHA"),
            instance,
            status,
            1,
            now,
            now + timedelta(seconds=i),
        )
        for i, (instance, status) in enumerate(
            [("africa", S.PENDING), ("asia", S.VERIFIED), ("asia", S.PENDING)] * 3
            + [("africa", S.VERIFIED), ("africa", S.MERGED)]
        )
    ]
    served.db.organizations.insert_many([organization_doc(o) for o in orgs])
    # A reviewer of africa sees verified ones anywhere and africa's own (merged ones redirect).
    visible = sorted(
        o.id
        for o in orgs
        if o.status is not S.MERGED and (o.status is S.VERIFIED or o.instance == "africa")
    )
    store = served.app.store
    query = OrganizationQuery(REVIEWER, country="GHA")
    seen: list[str] = []
    after = None
    while True:
        page = store.list_organizations(query, after, 2)
        page = [o for o in page if o.profile.name == name]
        if not page:
            break
        seen += [o.id for o in page]
        after = (page[-1].profile.name.casefold(), page[-1].id)
    assert seen == visible


def test_list_keys_are_backfilled_once(served, suffix):
    org = Organization(
        f"old{suffix}",
        OrganizationProfile(
            name=f"Old {suffix}", type=OrganizationType.NGO, headquarters_country="GHA"
        ),
        "africa",
        S.VERIFIED,
        1,
        utc_now(),
        utc_now(),
    )
    doc = organization_doc(org)
    del doc["list_key"]  # as stored before list keys existed
    served.db.organizations.insert_one(doc)
    served.app.store.ensure_indexes()  # this database has run the backfill: not again
    assert "list_key" not in served.db.organizations.find_one({"_id": org.id})
    served.db.migrations.delete_one({"_id": "list_key"})  # a database from before it
    served.app.store.ensure_indexes()
    stored = served.db.organizations.find_one({"_id": org.id})
    assert stored["list_key"] == list_key(f"old {suffix}", org.id)
    assert served.db.migrations.find_one({"_id": "list_key"}) is not None
