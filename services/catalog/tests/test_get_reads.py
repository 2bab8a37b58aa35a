"""The Get calls' read path (ADR 0009): one read of the record with its organization (and a
solution's reviews for reviewers), through the asyncio read client or, without one, the sync
client in the thread pool; both give the same answers as the rules say."""

from __future__ import annotations

import pytest

from ssg.catalog.domain.model import OrganizationRef, OrganizationStatus, ReviewOutcome
from ssg.catalog.service import CatalogService
from ssg.catalog.store.documents import SOLUTIONS
from ssg.catalog.store.mongo import MongoStore, read_pipeline
from ssg.platform.auth.tokens import Role
from ssg.platform.errors import NotFound

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


@pytest.fixture(params=["asyncio", "threads"])
def store(request, mongo_client, read_client, fresh_database) -> MongoStore:
    reads = read_client[fresh_database.name] if request.param == "asyncio" else None
    s = MongoStore(mongo_client, fresh_database, reads)
    s.ensure_indexes()
    s.apply_organization(
        OrganizationRef(ORG, ORG, OrganizationStatus.VERIFIED, INSTANCE, version=1)
    )
    s.apply_organization(
        OrganizationRef(
            MERGED, MERGED, OrganizationStatus.MERGED, INSTANCE, merged_into=ORG, version=2
        )
    )
    return s


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
