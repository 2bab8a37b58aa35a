"""Service-layer tests: the use cases end to end on the real store (a fresh MongoDB database
each), without the gRPC layer."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from ssg.catalog import mapping
from ssg.catalog.bootstrap import build_service
from ssg.catalog.domain.model import (
    CriterionScore,
    FundingContent,
    KnowledgeContent,
    KnowledgeStatus,
    NeedContent,
    NeedStatus,
    OrganizationRef,
    OrganizationStatus,
    Partner,
    Period,
    SolutionStatus,
)
from ssg.catalog.gauges import catalog_gauges
from ssg.catalog.service import CatalogService, Filters, ImportRow
from ssg.catalog.settings import CatalogSettings
from ssg.catalog.store.documents import page_key
from ssg.catalog.store.mongo import MongoStore, query_filters
from ssg.catalog.store.ports import Query, Visibility
from ssg.contracts.catalog.v1 import events_pb2
from ssg.platform.auth.tokens import DEV_SECRET, Identity, Role
from ssg.platform.errors import (
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    ValidationError,
    VersionConflict,
)
from ssg.platform.events.envelope import unpack_payload
from ssg.testing.fixtures import outbox_events
from ssg.testing.plans import unindexed

from .helpers import solution_msg

INSTANCE = "africa"
ORG = "org-verified"
SUSPENDED = "org-suspended"
MERGED = "org-merged"


def who(subject: str, *roles: Role, org: str = "", instance: str = INSTANCE) -> Identity:
    return Identity(subject, frozenset({Role.PUBLIC, Role.SIGNED_IN, *roles}), org, instance)


MEMBER = who("mem", Role.MEMBER, org=ORG)
REVIEWER = who("rev", Role.REVIEWER)
OPERATOR = who("ops", Role.OPERATOR)
PUBLIC = Identity("anonymous", authenticated=False)
CHECKLIST = tuple(
    CriterionScore(c, 4, "fine")
    for c in (
        "EVIDENCE_OF_RESULTS",
        "REPLICABILITY",
        "PARTNERSHIP",
        "SUSTAINABILITY",
        "INNOVATION",
        "SDG_ALIGNMENT",
    )
)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(mongo_client, fresh_database) -> MongoStore:
    s = MongoStore(mongo_client, fresh_database)
    s.ensure_indexes()
    for org_id, status in (
        (ORG, OrganizationStatus.VERIFIED),
        (SUSPENDED, OrganizationStatus.SUSPENDED),
        ("partner", OrganizationStatus.VERIFIED),
    ):
        s.apply_organization(OrganizationRef(org_id, org_id, status, INSTANCE, version=1))
    s.apply_organization(
        OrganizationRef(
            MERGED, MERGED, OrganizationStatus.MERGED, INSTANCE, merged_into=ORG, version=2
        )
    )
    return s


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(store: MongoStore, clock: Clock) -> CatalogService:
    settings = CatalogSettings(instance=INSTANCE, jwt_secret=DEV_SECRET)
    svc = build_service(settings, store)
    svc.clock = clock
    return svc


def content(**fields):
    return mapping.solution_content(solution_msg(ORG, **fields))


async def published(service: CatalogService) -> str:
    s = await service.create_solution(MEMBER, ORG, content())
    await service.submit_solution(MEMBER, s.id, 0)
    await service.start_review(REVIEWER, s.id, 0)
    await service.review_solution(REVIEWER, s.id, 0, CHECKLIST, "APPROVE", "")
    await service.publish_solution(REVIEWER, s.id, 0)
    return s.id


def events(store: MongoStore):
    return outbox_events(store.db)


def event_types(store: MongoStore) -> list[str]:
    return [env.event_type for _, env in events(store)]


async def test_review_flow_emits_one_event_per_public_step_and_no_draft_content(service, store):
    s = await service.create_solution(MEMBER, ORG, content())
    assert s.status is SolutionStatus.DRAFT and events(store) == []
    await service.update_solution(
        MEMBER, s.id, s.version, content(title="Solar pumps, revised"), ["title"]
    )
    assert events(store) == []  # drafts never leave the service
    await service.submit_solution(MEMBER, s.id, 0)
    await service.start_review(REVIEWER, s.id, 0)
    review, after = await service.review_solution(REVIEWER, s.id, 0, CHECKLIST, "APPROVE", "")
    assert review.passed and review.total_score == 24 and after.status is SolutionStatus.IN_REVIEW
    done = await service.publish_solution(REVIEWER, s.id, 0)
    assert done.status is SolutionStatus.PUBLISHED and done.provenance.reviewed_by == "rev"
    assert event_types(store) == [
        "catalog.SolutionSubmitted",
        "catalog.SolutionReviewRecorded",
        "catalog.SolutionPublished",
    ]
    submitted = unpack_payload(events(store)[0][1], events_pb2.SolutionSubmitted)
    assert submitted.solution_id == s.id
    published_event = unpack_payload(events(store)[2][1], events_pb2.SolutionPublished)
    assert published_event.solution.title == "Solar pumps, revised"
    assert published_event.solution.provenance.vouching_organization_verified
    assert [env.aggregate_version for _, env in events(store)] == sorted(
        env.aggregate_version for _, env in events(store)
    )


async def test_publish_needs_a_passing_review(service):
    s = await service.create_solution(MEMBER, ORG, content())
    await service.submit_solution(MEMBER, s.id, 0)
    await service.start_review(REVIEWER, s.id, 0)
    with pytest.raises(FailedPrecondition, match="no passing review"):
        await service.publish_solution(REVIEWER, s.id, 0)
    low = tuple(replace(c, score=2) for c in CHECKLIST)
    with pytest.raises(ValidationError) as err:
        await service.review_solution(REVIEWER, s.id, 0, low, "APPROVE", "")
    assert err.value.violations[0].field == "review.outcome"
    with pytest.raises(ValidationError, match="missing: INNOVATION, SDG_ALIGNMENT"):
        await service.review_solution(REVIEWER, s.id, 0, CHECKLIST[:4], "APPROVE", "")


async def test_changes_requested_then_resubmitted(service, store):
    s = await service.create_solution(MEMBER, ORG, content())
    await service.submit_solution(MEMBER, s.id, 0)
    await service.start_review(REVIEWER, s.id, 0)
    _, after = await service.review_solution(
        REVIEWER, s.id, 0, CHECKLIST, "REQUEST_CHANGES", "more data"
    )
    assert after.status is SolutionStatus.CHANGES_REQUESTED
    await service.update_solution(
        MEMBER, s.id, after.version, content(results="Yields up 30%."), ["results"]
    )
    again = await service.submit_solution(MEMBER, s.id, 0)
    assert again.status is SolutionStatus.SUBMITTED
    resubmitted = unpack_payload(events(store)[-1][1], events_pb2.SolutionSubmitted)
    assert resubmitted.resubmission


async def test_only_members_of_a_verified_organization_submit(service, store):
    member_of_suspended = who("m2", Role.MEMBER, org=SUSPENDED)
    draft = await service.create_solution(
        member_of_suspended, SUSPENDED, content(organization_id=SUSPENDED)
    )
    with pytest.raises(FailedPrecondition, match="SUSPENDED"):
        await service.submit_solution(member_of_suspended, draft.id, 0)
    s = await service.create_solution(MEMBER, ORG, content())
    with pytest.raises(NotFound):  # another organization's draft is invisible to its members
        await service.submit_solution(who("x", Role.MEMBER, org="partner"), s.id, 0)
    with pytest.raises(NotFound):
        await service.get_solution(PUBLIC, s.id)


async def test_a_member_of_the_survivor_acts_for_a_merged_organization(service):
    s = await service.create_solution(OPERATOR, MERGED, content())
    assert (await service.submit_solution(MEMBER, s.id, 0)).status is SolutionStatus.SUBMITTED


async def test_reviewers_review_only_in_their_own_instance(service):
    s = await service.create_solution(MEMBER, ORG, content())
    await service.submit_solution(MEMBER, s.id, 0)
    with pytest.raises(NotFound):  # a submitted solution is not visible to other instances
        await service.start_review(who("r2", Role.REVIEWER, instance="asia-pacific"), s.id, 0)
    with pytest.raises(PermissionDenied):
        await service.start_review(MEMBER, s.id, 0)


async def test_bad_inputs_name_their_fields_and_write_nothing(service, store):
    good = content()
    bad = replace(
        good,
        summary="x" * (5 * 1024 * 1024),
        sdg_targets=("6.9", "3.1"),
        period=Period("2022-01-01", "2021-01-01"),
        partners=(Partner("ghost", "PROVIDER"),),
    )
    with pytest.raises(ValidationError) as err:
        await service.create_solution(MEMBER, ORG, bad)
    fields = {v.field for v in err.value.violations}
    assert {
        "solution.sdg_targets[0]",
        "solution.sdg_targets[1]",
        "solution.period.end_date",
        "solution.summary",
        "solution.partners[0].organization_id",
    } <= fields
    assert (await service.list_solutions(OPERATOR, Filters(), 0, "")).items == []


async def test_optimistic_concurrency(service):
    s = await service.create_solution(MEMBER, ORG, content())
    await service.update_solution(
        MEMBER, s.id, s.version, content(title="First edit wins"), ["title"]
    )
    with pytest.raises(VersionConflict):
        await service.update_solution(
            MEMBER, s.id, s.version, content(title="Second edit"), ["title"]
        )


async def test_stale_after_24_months_once_even_when_swept_twice(service, store, clock):
    solution_id = await published(service)
    clock.now += timedelta(days=729)
    assert await service.sweep() == (0, 0)
    clock.now += timedelta(days=2)
    assert await service.sweep() == (1, 0)
    assert await service.sweep() == (0, 0)
    assert event_types(store).count("catalog.SolutionStale") == 1
    confirmed = await service.confirm_solution(MEMBER, solution_id, 0)
    assert not confirmed.stale


async def test_funding_closes_itself_after_its_deadline(service, store, clock):
    draft = FundingContent(
        title="Water innovation grants",
        sdgs=(6,),
        deadline=clock.now + timedelta(days=10),
        url="https://example.org/call",
    )
    f = await service.create_funding(MEMBER, ORG, draft)
    await service.publish_funding(MEMBER, f.id, 0)
    clock.now += timedelta(days=11)
    assert await service.sweep() == (0, 1)
    assert await service.sweep() == (0, 0)
    closed = await service.get_funding(PUBLIC, f.id)
    assert closed.close_reason == "deadline"
    assert event_types(store)[-2:] == ["catalog.FundingPublished", "catalog.FundingClosed"]


async def test_import_keeps_good_rows_reports_bad_ones_and_is_idempotent(service, store):
    rows = [
        ImportRow("col:1", ORG, content(title="Imported practice one")),
        ImportRow("col:2", ORG, replace(content(), sdg_targets=("6.9",))),
        ImportRow("col:3", "nobody", content(title="Imported practice three")),
        ImportRow("col:4", ORG, content(title="Imported practice four")),
    ]
    report = await service.import_solutions(OPERATOR, rows, publish=True)
    assert [r.outcome for r in report.results] == ["CREATED", "REJECTED", "REJECTED", "CREATED"]
    assert report.results[1].violations[0][0] == "solution.sdg_targets[0]"
    assert report.results[2].violations[0][0] == "solution.organization_id"
    assert event_types(store).count("catalog.SolutionPublished") == 2
    again = await service.import_solutions(OPERATOR, rows, publish=True)
    assert [r.outcome for r in again.results] == ["EXISTING", "REJECTED", "REJECTED", "EXISTING"]
    assert again.results[0].solution_id == report.results[0].solution_id
    assert event_types(store).count("catalog.SolutionPublished") == 2


async def test_import_all_or_nothing_writes_nothing_on_a_bad_row(service, store):
    rows = [
        ImportRow("b:1", ORG, content()),
        ImportRow("b:2", ORG, replace(content(), language="zz")),
    ]
    report = await service.import_solutions(OPERATOR, rows, publish=False, all_or_nothing=True)
    assert [r.outcome for r in report.results] == ["NOT_WRITTEN", "REJECTED"]
    page = await service.list_solutions(OPERATOR, Filters(), 0, "")
    assert page.items == []
    with pytest.raises(PermissionDenied):
        await service.import_solutions(REVIEWER, rows, publish=False)


async def test_lists_filter_and_page(service):
    ids = [await published(service) for _ in range(3)]
    page = await service.list_solutions(PUBLIC, Filters(sdg_target="6.4"), 2, "")
    assert len(page.items) == 2 and page.next_page_token
    rest = await service.list_solutions(PUBLIC, Filters(sdg_target="6.4"), 2, page.next_page_token)
    assert {s.id for s in page.items + rest.items} == set(ids)
    assert (await service.list_solutions(PUBLIC, Filters(country="BRA"), 0, "")).items == []
    with pytest.raises(ValidationError):
        await service.list_solutions(
            PUBLIC, Filters(sdg_target="6.4"), 2, page.next_page_token + "x"
        )


def need_content(country: str = "KEN", **fields) -> NeedContent:
    base = NeedContent(
        title="Cold storage for smallholder dairy",
        problem_statement="Milk spoils before it reaches the collection centres.",
        sdgs=(2, 12),
        country=country,
        support_kinds=("TECHNOLOGY_TRANSFER",),
        deadline="2031-06-30",
    )
    return replace(base, **fields)


async def test_need_lifecycle_moves_forward_only_and_emits_its_events(service, store):
    need = await service.post_need(MEMBER, ORG, need_content())
    assert need.status is NeedStatus.OPEN
    matched = await service.update_need(MEMBER, need.id, 1, need_content(), "MATCHED", ["status"])
    started = await service.update_need(
        MEMBER, need.id, matched.version, need_content(), "IN_PROGRESS", ["status"]
    )
    assert started.status is NeedStatus.IN_PROGRESS
    with pytest.raises(FailedPrecondition, match="forward"):
        await service.update_need(
            MEMBER, need.id, started.version, need_content(), "OPEN", ["status"]
        )
    with pytest.raises(VersionConflict):
        await service.update_need(
            MEMBER, need.id, 1, need_content(title="Stale edit"), "", ["title"]
        )
    closed = await service.close_need(REVIEWER, need.id, started.version, "partner found")
    assert (closed.status, closed.close_reason) == (NeedStatus.CLOSED, "partner found")
    with pytest.raises(FailedPrecondition):
        await service.update_need(MEMBER, need.id, closed.version, need_content(), "", ["title"])
    assert event_types(store) == [
        "catalog.NeedPosted",
        "catalog.NeedUpdated",
        "catalog.NeedUpdated",
        "catalog.NeedClosed",
    ]
    with pytest.raises(FailedPrecondition, match="verified"):
        await service.post_need(who("s", Role.MEMBER, org=SUSPENDED), SUSPENDED, need_content())


async def test_needs_filter_by_the_region_of_their_country(service, store):
    kenya = await service.post_need(MEMBER, ORG, need_content("KEN"))
    egypt = await service.post_need(MEMBER, ORG, need_content("EGY"))
    nepal = await service.post_need(MEMBER, ORG, need_content("NPL"))

    async def region(name: str) -> set[str]:
        return {n.id for n in (await service.list_needs(PUBLIC, Filters(region=name), 0, "")).items}

    assert await region("AFRICA") == {kenya.id}
    assert await region("ARAB_STATES") == {egypt.id}  # Egypt is an Arab League member
    assert await region("ASIA_PACIFIC") == {nepal.id}
    assert await region("NORTH_AMERICA") == set()
    # Needs stored before the filter existed get their regions when the store starts (a
    # database of that time has no record that the backfill ran).
    store.db.needs.update_many({}, {"$unset": {"ix.regions": ""}})
    store.db.migrations.delete_one({"_id": "needs.ix.regions"})
    assert await region("AFRICA") == set()
    store.ensure_indexes()
    assert await region("AFRICA") == {kenya.id}


def knowledge_content(**fields) -> KnowledgeContent:
    base = KnowledgeContent(
        title="Community seed banks: a practitioner's toolkit",
        type="TOOLKIT",
        authors=("A. Mensah", "L. Quispe"),
        year=2024,
        abstract="How farmer groups set up and run seed banks, with templates.",
        sdgs=(2, 15),
        url="https://example.org/seed-banks",
        language="en",
    )
    return replace(base, **fields)


async def test_knowledge_product_lifecycle_and_events(service, store):
    draft = await service.create_knowledge(MEMBER, ORG, knowledge_content())
    assert draft.status is KnowledgeStatus.DRAFT and events(store) == []  # drafts stay inside
    with pytest.raises(NotFound):
        await service.get_knowledge(PUBLIC, draft.id)
    edited = await service.update_knowledge(
        MEMBER, draft.id, draft.version, knowledge_content(year=2025), ["year"]
    )
    assert edited.content.year == 2025 and events(store) == []
    published = await service.publish_knowledge(MEMBER, draft.id, edited.version)
    assert (await service.get_knowledge(PUBLIC, draft.id)).status is KnowledgeStatus.PUBLISHED
    with pytest.raises(FailedPrecondition):
        await service.publish_knowledge(MEMBER, draft.id, published.version)
    archived = await service.archive_knowledge(REVIEWER, draft.id, published.version)
    with pytest.raises(FailedPrecondition):
        await service.update_knowledge(
            MEMBER, draft.id, archived.version, knowledge_content(year=2026), ["year"]
        )
    assert event_types(store) == [
        "catalog.KnowledgeProductPublished",
        "catalog.KnowledgeProductArchived",
    ]
    with pytest.raises(ValidationError) as bad:
        await service.create_knowledge(MEMBER, ORG, knowledge_content(type="NOVEL", year=1200))
    fields = {v.field for v in bad.value.violations}
    assert {"knowledge_product.type", "knowledge_product.year"} <= fields


def test_page_key_orders_as_the_pair_of_update_and_id():
    at = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    pairs = [
        (at, "b"),
        (at, "ab"),
        (at + timedelta(microseconds=1), "a"),
        (at - timedelta(days=400), "z"),
        (at.replace(microsecond=0) + timedelta(seconds=1), ""),
    ]
    assert sorted(pairs) == sorted(pairs, key=lambda p: page_key(*p))


PUBLIC_STATUSES = ("PUBLISHED",)
MINE = Visibility(PUBLIC_STATUSES, (ORG,), INSTANCE)
NEXT = ("2026-05-01T12:00:00+00:00", "x")
# The callers' common shapes: each filter is equalities and at most one $in or range besides the
# page key, and an index holds exactly those fields (the stand-in's planner reports IXSCAN only
# then; otherwise it scans the index of the first field that leads one, e.g. the organization
# clause of a member's second page, whose index has the status between).
LIST_CASES = [
    (Query(Visibility(PUBLIC_STATUSES)), None),
    (Query(Visibility(PUBLIC_STATUSES)), NEXT),
    (Query(Visibility(PUBLIC_STATUSES), sdg=6, status="PUBLISHED"), None),
    (Query(Visibility(PUBLIC_STATUSES), sdg=6, status="PUBLISHED"), NEXT),
    (Query(MINE, sdg=6, status="PUBLISHED"), NEXT),
    (Query(Visibility(PUBLIC_STATUSES), organization_id=ORG), NEXT),
    (Query(Visibility(PUBLIC_STATUSES), sdg_target="6.4"), NEXT),
    (Query(Visibility(PUBLIC_STATUSES), country="KEN"), NEXT),
    (Query(MINE), None),
]


@pytest.mark.parametrize(("query", "after"), LIST_CASES, ids=repr)
def test_list_filters_are_served_by_an_index(store, query, after):
    # The open_to_all alternative of a country filter matches funding opportunities only.
    filters = [f for f in query_filters(query, after) if "ix.open_to_all" not in f]
    assert filters
    assert unindexed(store.db.solutions, filters, [("ix.page", -1)]) == []


async def test_pages_over_tied_update_times_and_two_visibility_clauses(service, clock):
    published_rows = [ImportRow(f"tie:p{n}", ORG, content()) for n in range(5)]
    drafts = [ImportRow(f"tie:d{n}", ORG, content()) for n in range(4)]
    # One batch shares one update time: the page key's id part orders the ties.
    await service.import_solutions(OPERATOR, published_rows, publish=True)
    await service.import_solutions(OPERATOR, drafts, publish=False)
    everything = (await service.list_solutions(OPERATOR, Filters(), 0, "")).items
    assert len(everything) == 9
    # The member sees the published ones (public) and its organization's drafts.
    seen: list[str] = []
    token = ""
    while True:
        page = await service.list_solutions(MEMBER, Filters(), 2, token)
        seen += [s.id for s in page.items]
        token = page.next_page_token
        if not token:
            break
    expected = sorted(everything, key=lambda s: (s.update_time, s.id), reverse=True)
    assert seen == [s.id for s in expected]


async def test_published_solutions_gauge_counts_each_sdg_and_region(service, store) -> None:
    await published(service)
    await published(service)
    await service.create_solution(MEMBER, ORG, content())  # a draft counts nowhere
    counts = store.published_solutions_by_sdg_region()
    regions = {region for _, region in counts}
    assert len(regions) == 1 and "" not in regions
    (region,) = regions
    assert counts == {(6, region): 2, (7, region): 2}

    (gauge,) = catalog_gauges(store)
    gauge.refresh()
    sample = REGISTRY.get_sample_value(
        "ssg_catalog_published_solutions", {"sdg": "6", "region": region}
    )
    assert sample == 2
