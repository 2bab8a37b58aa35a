"""The Get calls' read path (ADR 0009): one read of the record with its organization (and a
solution's reviews for reviewers), through the asyncio read client, the sync client in the
thread pool, or the read caches kept by the change stream (ADR 0014); all give the same
answers as the rules say."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from ssg.catalog.domain.model import OrganizationRef, OrganizationStatus, ReviewOutcome
from ssg.catalog.service import CatalogService, SolutionView
from ssg.catalog.settings import CatalogSettings
from ssg.catalog.store.documents import SOLUTIONS
from ssg.catalog.store.mongo import MongoStore, ReadCaches, read_pipeline
from ssg.platform.auth.tokens import DEV_SECRET, Role
from ssg.platform.errors import NotFound
from ssg.platform.readcache import MISS

from . import test_service
from .test_service import (
    CHECKLIST,
    INSTANCE,
    MEMBER,
    MERGED,
    OPERATOR,
    ORG,
    PUBLIC,
    REVIEWER,
    Clock,
    content,
    who,
)

# test_service's fixtures, on this module's store.
clock = test_service.clock
service = test_service.service


@pytest.fixture(params=["asyncio", "threads", "cached"])
def store(request, mongo_client, read_client, fresh_database) -> Iterator[MongoStore]:
    reads = read_client[fresh_database.name] if request.param == "asyncio" else None
    caches = ReadCaches.from_settings(CACHED) if request.param == "cached" else None
    s = MongoStore(mongo_client, fresh_database, reads, caches)
    s.ensure_indexes()
    s.apply_organization(
        OrganizationRef(ORG, ORG, OrganizationStatus.VERIFIED, INSTANCE, version=1)
    )
    s.apply_organization(
        OrganizationRef(
            MERGED, MERGED, OrganizationStatus.MERGED, INSTANCE, merged_into=ORG, version=2
        )
    )
    feed = s.cache_feed(CACHED)
    if feed is None:
        yield s
        return
    halt = threading.Event()
    following = threading.Thread(target=feed.follow, args=(halt,), daemon=True)
    following.start()
    try:
        wait_for(lambda: s.caches is not None and s.caches.organizations.current, 10)
        yield s
    finally:
        halt.set()
        following.join(10)


CACHED = CatalogSettings(
    instance=INSTANCE, jwt_secret=DEV_SECRET, read_cache_max_staleness_seconds=1.0
)


def wait_for(predicate: Callable[[], bool], within: float) -> float:
    """Seconds until predicate held; fails after within."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < within, f"not within {within} s"
        time.sleep(0.01)
    return time.monotonic() - started


async def _reviewed_twice(service: CatalogService, clock: Clock) -> str:
    """A published solution with two reviews: changes requested, then approved."""
    s = await service.create_solution(MEMBER, ORG, content())
    await service.submit_solution(MEMBER, s.id, 0)
    await service.start_review(REVIEWER, s.id, 0)
    _, after = await service.review_solution(
        REVIEWER, s.id, 0, CHECKLIST, "REQUEST_CHANGES", "more data"
    )
    clock.now = clock.now.replace(day=2)
    await service.update_solution(
        MEMBER, s.id, after.version, content(results="Yields up 30%."), ["results"]
    )
    await service.submit_solution(MEMBER, s.id, 0)
    await service.start_review(REVIEWER, s.id, 0)
    await service.review_solution(REVIEWER, s.id, 0, CHECKLIST, "APPROVE", "")
    await service.publish_solution(REVIEWER, s.id, 0)
    return s.id


async def test_staff_get_the_reviews_oldest_first_and_nobody_else_does(service, clock):
    solution_id = await _reviewed_twice(service, clock)
    for staff in (REVIEWER, MEMBER, OPERATOR):  # read with the record / after it / after it
        view = await service.get_solution(staff, solution_id)
        assert [r.outcome for r in view.reviews] == [
            ReviewOutcome.REQUEST_CHANGES,
            ReviewOutcome.APPROVE,
        ], staff.subject
        assert view.solution.provenance.vouching_organization_verified
    elsewhere = who("r2", Role.REVIEWER, instance="asia-pacific")
    for outsider in (PUBLIC, who("x", Role.MEMBER, org="partner"), elsewhere):
        view = await service.get_solution(outsider, solution_id)
        assert view.reviews == () and view.solution.id == solution_id, outsider.subject


async def test_a_merged_organization_redirects_on_get(service, store):
    draft = await service.create_solution(OPERATOR, MERGED, content())
    # The survivor's member owns the merged organization's draft: found through the redirect,
    # and the record shows the survivor's verification.
    shown = (await service.get_solution(MEMBER, draft.id)).solution
    assert shown.id == draft.id and shown.provenance.vouching_organization_verified
    with pytest.raises(NotFound):
        await service.get_solution(PUBLIC, draft.id)
    store.apply_organization(
        OrganizationRef(ORG, ORG, OrganizationStatus.SUSPENDED, INSTANCE, version=5)
    )
    suspended = (await service.get_solution(MEMBER, draft.id)).solution
    assert not suspended.provenance.vouching_organization_verified


async def test_an_unknown_id_is_not_found(service):
    with pytest.raises(NotFound, match="solution nope not found"):
        await service.get_solution(REVIEWER, "nope")
    with pytest.raises(NotFound):
        await service.get_knowledge(PUBLIC, "nope")


async def test_read_record_brings_the_organization_and_reviews_when_asked(service, store, clock):
    solution_id = await _reviewed_twice(service, clock)
    pipeline = read_pipeline(SOLUTIONS, solution_id, with_reviews=True)
    assert pipeline[0] == {"$match": {"_id": solution_id}}
    fetched = await store.read_record(SOLUTIONS, solution_id, with_reviews=True)
    assert fetched is not None and fetched.record.id == solution_id
    assert fetched.organizations[ORG] is not None
    assert fetched.reviews is not None and len(fetched.reviews) == 2
    without = await store.read_record(SOLUTIONS, solution_id)
    assert without is not None and without.reviews is None


@pytest.mark.parametrize("store", ["cached"], indirect=True)
async def test_cached_gets_see_the_writers_update_at_once_and_others_changes_within_the_bound(
    service, store, clock
):
    assert store.caches is not None
    solution_id = await _reviewed_twice(service, clock)
    caches = store.caches

    def held() -> bool:
        record, reviews = caches.records["solutions"], caches.reviews
        return record.get(solution_id) is not MISS and reviews.get(solution_id) is not MISS

    async def view() -> SolutionView:
        return await service.get_solution(REVIEWER, solution_id)

    started = time.monotonic()
    while not held():  # fills that raced the stream's news of the writes keep nothing
        assert time.monotonic() - started < 5
        await view()
    # This replica's own write: the next Get reads it.
    await service.update_solution(
        MEMBER,
        solution_id,
        (await view()).solution.version,
        content(results="Yields up 40%."),
        ["results"],
    )
    assert (await view()).solution.content.results == "Yields up 40%."
    # What the worker writes to the read model (another process): within the bound.
    store.db.organizations.update_one(
        {"_id": ORG}, {"$set": {"status": "SUSPENDED"}, "$inc": {"version": 1}}
    )
    started = time.monotonic()
    while (await view()).solution.provenance.vouching_organization_verified:
        assert time.monotonic() - started < CACHED.read_cache_max_staleness_seconds + 1
    # A record deleted by hand is not found from memory after the bound.
    store.db.solutions.delete_one({"_id": solution_id})
    started = time.monotonic()
    while True:
        try:
            await view()
        except NotFound:
            break
        assert time.monotonic() - started < CACHED.read_cache_max_staleness_seconds + 1
