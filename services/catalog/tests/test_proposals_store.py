"""The proposal intake on the real store (a fresh MongoDB database): two replicas taking the
same proposal at once make one draft, and a revision naming another organization is refused."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from pymongo.errors import PyMongoError

from ssg.catalog import mapping
from ssg.catalog.domain.model import OrganizationRef, OrganizationStatus
from ssg.catalog.proposals import SOLUTION_PROPOSALS, ProposalIntake
from ssg.catalog.store.mongo import MongoStore
from ssg.platform.proposals import Decision, InvalidProposal, Taken, get_link, proposal

from .helpers import solution_msg

ORG, OTHER = "org-a", "org-b"


@pytest.fixture
def store(mongo_client, fresh_database) -> MongoStore:
    s = MongoStore(mongo_client, fresh_database)
    s.ensure_indexes()
    for org_id in (ORG, OTHER):
        s.apply_organization(
            OrganizationRef(org_id, org_id, OrganizationStatus.VERIFIED, "africa", version=1)
        )
    return s


def _taken_with_retries(intake: ProposalIntake, revision: int, ext: str) -> Taken:
    """As the consumer does: a failed unit (a conflict with the other replica) is retried."""
    content = mapping.solution_content(solution_msg(ORG))
    for _ in range(20):
        try:
            return intake.take(
                SOLUTION_PROPOSALS, proposal("solution", "pm", ext, revision), ORG, content
            )
        except PyMongoError:
            time.sleep(0.05)
    raise AssertionError("still conflicting after 20 attempts")


def test_two_replicas_taking_one_proposal_at_once_make_one_draft(store: MongoStore):
    ext = f"S-{uuid.uuid4().hex[:6]}"
    intakes = [ProposalIntake(store, instance="africa") for _ in range(2)]
    results: list[Taken] = []
    start = threading.Barrier(2)

    def run(intake: ProposalIntake) -> None:
        start.wait()
        results.append(_taken_with_retries(intake, 1, ext))

    threads = [threading.Thread(target=run, args=(i,)) for i in intakes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(r.decision for r in results) == [Decision.CREATE, Decision.STALE]
    assert len({r.record_id for r in results}) == 1
    assert store.db.solutions.count_documents({"provenance.external_id": ext}) == 1
    link = get_link(store.db, f"solution:pm:{ext}")
    assert link is not None and link.entity_id == results[0].record_id


def test_a_revision_may_not_move_a_draft_to_another_organization(store: MongoStore):
    ext = f"S-{uuid.uuid4().hex[:6]}"
    intake = ProposalIntake(store, instance="africa")
    first = intake.take(
        SOLUTION_PROPOSALS,
        proposal("solution", "pm", ext, 1),
        ORG,
        mapping.solution_content(solution_msg(ORG)),
    )
    assert first.decision is Decision.CREATE
    with pytest.raises(InvalidProposal, match="the draft belongs to org-a"):
        intake.take(
            SOLUTION_PROPOSALS,
            proposal("solution", "pm", ext, 2),
            OTHER,
            mapping.solution_content(solution_msg(OTHER)),
        )
    link = get_link(store.db, f"solution:pm:{ext}")
    assert link is not None and link.revision == 1
