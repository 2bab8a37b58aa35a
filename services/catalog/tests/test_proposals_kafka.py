"""Against real MongoDB and a real Kafka-protocol broker: proposals on the ingress bridge's
topics become drafts of their organizations that members see and submit through the catalog
gRPC API; a repeat changes nothing, a newer revision updates the draft, an older one or one
after submission does not; a proposal the catalog's rules refuse is dead-lettered with its
reason and the next one is still taken in; a proposal naming an organization the read model has
not learned yet waits for its registration event (which keeps flowing meanwhile) and becomes a
draft once it arrives, or is dead-lettered after the bounded wait."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf import timestamp_pb2

from ssg.catalog.events.proposals import PROPOSAL_TOPICS
from ssg.catalog.settings import CatalogSettings
from ssg.catalog.store.documents import SOLUTIONS
from ssg.catalog.worker import build_consumers, proposals_consumer
from ssg.contracts.catalog.v1 import catalog_service_pb2 as pb
from ssg.contracts.catalog.v1 import (
    funding_pb2,
    knowledge_product_pb2,
    provenance_pb2,
    solution_pb2,
)
from ssg.contracts.common.v1 import sdg_pb2
from ssg.contracts.ingress.v1 import events_pb2 as ingress
from ssg.contracts.ingress.v1 import proposals_pb2
from ssg.contracts.registration.v1 import events_pb2 as reg
from ssg.contracts.registration.v1 import organization_pb2
from ssg.platform.auth.tokens import DEV_SECRET, Role
from ssg.platform.events.organizations import ORGANIZATION_TOPIC
from ssg.platform.events.proposals import (
    FUNDING_PROPOSAL_TOPIC,
    KNOWLEDGE_PROPOSAL_TOPIC,
    SOLUTION_PROPOSAL_TOPIC,
)
from ssg.platform.events.topics import ensure_topics
from ssg.platform.proposals import get_link
from ssg.platform.settings import load_settings
from ssg.testing.kafka import (
    dead_letters,
    produce_envelopes,
    proposal_envelope,
    start_group_at_end,
)
from ssg.testing.waiting import eventually

from .helpers import organization_event, solution_msg

# How long the module's proposals consumer waits for an organization it has not learned yet.
SHORT_WAIT = 3.0


def worker_settings(settings: CatalogSettings, kafka_server, wait: float) -> CatalogSettings:
    """The worker's settings on the module's database, with consumer groups of its own."""
    return load_settings(
        CatalogSettings,
        instance=settings.instance,
        mongodb_uri=settings.mongodb_uri,
        kafka_bootstrap=kafka_server.bootstrap,
        kafka_local_profile=kafka_server.local,
        jwt_secret=DEV_SECRET,
        organizations_group=f"catalog-organizations-{uuid.uuid4().hex[:6]}",
        proposals_group=f"catalog-proposals-{uuid.uuid4().hex[:6]}",
        event_retry_base_seconds=0.05,
        event_wait_seconds=wait,
    )


@pytest.fixture(scope="module")
async def worker(served, settings: CatalogSettings, kafka_server):
    """The catalog worker's proposals consumer on the module's database."""
    await ensure_topics(kafka_server.bootstrap, PROPOSAL_TOPICS)
    consumer = proposals_consumer(
        worker_settings(settings, kafka_server, SHORT_WAIT), served.app.store
    )
    task = asyncio.create_task(consumer.run())
    yield consumer
    await consumer.stop()
    await asyncio.wait_for(task, 20)


def solution_proposal(external_id: str, revision: int, org: str, title: str):
    body = proposals_pb2.SolutionProposal(
        external_id=external_id, revision=revision, solution=solution_msg(org, title=title)
    )
    return proposal_envelope(ingress.SolutionProposed, body)


def knowledge_proposal(external_id: str, org: str, **fields):
    values = {
        "publishing_organization_id": org,
        "title": "Irrigation rotas: a field guide",
        "type": knowledge_product_pb2.KNOWLEDGE_PRODUCT_TYPE_TOOLKIT,
        "year": 2024,
        "abstract": "How cooperatives schedule shared solar pumps across a season.",
        "url": "https://example.org/guide.pdf",
        "language": "en",
        "authors": ["A. Mwangi"],
        "sdgs": [sdg_pb2.SDG_CLEAN_WATER_AND_SANITATION],
    }
    product = knowledge_product_pb2.KnowledgeProduct(**{**values, **fields})
    body = proposals_pb2.KnowledgeProductProposal(
        external_id=external_id, knowledge_product=product
    )
    return proposal_envelope(ingress.KnowledgeProductProposed, body)


def funding_proposal(external_id: str, org: str):
    deadline = timestamp_pb2.Timestamp()
    deadline.FromDatetime(datetime.now(UTC) + timedelta(days=90))
    call = funding_pb2.FundingOpportunity(
        funder_organization_id=org,
        title="Small grants for water cooperatives",
        description="Grants for cooperatives that share irrigation equipment.",
        deadline=deadline,
        url="https://example.org/call",
        sdgs=[sdg_pb2.SDG_CLEAN_WATER_AND_SANITATION],
    )
    body = proposals_pb2.FundingOpportunityProposal(
        external_id=external_id, funding_opportunity=call
    )
    return proposal_envelope(ingress.FundingOpportunityProposed, body)


async def drafts_of(served, member, org: str) -> list[solution_pb2.Solution]:
    """The organization's draft solutions as its member lists them."""
    page = await served.stub.ListSolutions(
        pb.ListSolutionsRequest(organization_id=org, status=solution_pb2.SOLUTION_STATUS_DRAFT),
        metadata=member,
        timeout=10,
    )
    return list(page.solutions)


async def test_a_proposed_solution_becomes_one_draft_that_newer_revisions_update(
    served, worker, kafka_server, auth
):
    org = served.add_organization()
    member = auth("mem", Role.MEMBER, org=org)
    ext = f"SOL-{uuid.uuid4().hex[:8]}"
    first = solution_proposal(ext, 1, org, "Solar pumps, first edition")
    resent = solution_proposal(ext, 1, org, "Solar pumps, first edition")  # a new message id
    await produce_envelopes(
        kafka_server.bootstrap,
        SOLUTION_PROPOSAL_TOPIC,
        [first, first, resent, solution_proposal(ext, 2, org, "Solar pumps, second edition")],
    )
    # One key, one partition: once revision 2 shows, the repeats before it were handled.
    drafts = await eventually(
        lambda: _titled(drafts_of(served, member, org), "Solar pumps, second edition"),
        "the revised draft",
        40,
    )
    assert len(drafts) == 1
    draft = drafts[0]
    assert draft.status == solution_pb2.SOLUTION_STATUS_DRAFT and draft.version == 2
    assert draft.provenance.source == provenance_pb2.RECORD_SOURCE_INGRESS
    assert (draft.provenance.producer, draft.provenance.external_id) == ("pm-system", ext)
    assert draft.provenance.submitted_by == "ingress:pm-system"
    # Not public: an anonymous reader does not see it.
    public = await served.stub.ListSolutions(
        pb.ListSolutionsRequest(organization_id=org), timeout=10
    )
    assert not public.solutions

    # An older revision changes nothing: had it applied, revision 3 would make version 4.
    await produce_envelopes(
        kafka_server.bootstrap,
        SOLUTION_PROPOSAL_TOPIC,
        [first, solution_proposal(ext, 3, org, "Solar pumps, third edition")],
    )
    drafts = await eventually(
        lambda: _titled(drafts_of(served, member, org), "Solar pumps, third edition"),
        "revision 3",
        40,
    )
    assert [d.version for d in drafts] == [3]

    # The organization confirms it through the normal flow; later revisions no longer apply.
    submitted = (
        await served.stub.SubmitSolution(
            pb.SubmitSolutionRequest(id=draft.id, version=3), metadata=member, timeout=10
        )
    ).solution
    assert submitted.status == solution_pb2.SOLUTION_STATUS_SUBMITTED
    await produce_envelopes(
        kafka_server.bootstrap,
        SOLUTION_PROPOSAL_TOPIC,
        [solution_proposal(ext, 4, org, "Solar pumps, fourth edition")],
    )
    db = served.db
    link = await eventually(
        lambda: (got := get_link(db, f"solution:pm-system:{ext}")) and got.ignored_revision == 4,
        "revision 4 recorded as ignored",
        40,
    )
    assert link
    kept = served.app.store.get(SOLUTIONS, draft.id)
    assert kept is not None
    assert (kept.content.title, str(kept.status), kept.version) == (
        "Solar pumps, third edition",
        "SUBMITTED",
        4,
    )


async def _titled(drafts, title: str):
    found = await drafts
    return found if any(d.title == title for d in found) else None


async def test_refused_proposals_are_dead_lettered_with_their_reason_and_the_next_is_taken(
    served, worker, kafka_server, auth
):
    org = served.add_organization()
    unknown = uuid.uuid4().hex
    bad_org = knowledge_proposal(f"K-{uuid.uuid4().hex[:8]}", unknown)
    bad_body = knowledge_proposal(f"K-{uuid.uuid4().hex[:8]}", org, year=1200)
    good = knowledge_proposal(f"K-{uuid.uuid4().hex[:8]}", org)
    funding = funding_proposal(f"F-{uuid.uuid4().hex[:8]}", org)
    produced_at = datetime.now(UTC)
    await produce_envelopes(
        kafka_server.bootstrap, KNOWLEDGE_PROPOSAL_TOPIC, [bad_org, bad_body, good]
    )
    await produce_envelopes(kafka_server.bootstrap, FUNDING_PROPOSAL_TOPIC, [funding])

    member = auth("mem", Role.MEMBER, org=org)

    async def listed():
        k = await served.stub.ListKnowledgeProducts(
            pb.ListKnowledgeProductsRequest(organization_id=org), metadata=member, timeout=10
        )
        f = await served.stub.ListFundingOpportunities(
            pb.ListFundingOpportunitiesRequest(organization_id=org), metadata=member, timeout=10
        )
        return (
            (k.knowledge_products, f.funding_opportunities)
            if k.knowledge_products and f.funding_opportunities
            else None
        )

    products, calls = await eventually(listed, "the valid knowledge product and funding call", 40)
    assert [p.status for p in products] == [knowledge_product_pb2.KNOWLEDGE_PRODUCT_STATUS_DRAFT]
    assert products[0].provenance.source == provenance_pb2.RECORD_SOURCE_INGRESS
    assert [c.status for c in calls] == [funding_pb2.FUNDING_STATUS_DRAFT]
    assert calls[0].provenance.producer == "pm-system"

    unknown_dl = await dead_letters(
        kafka_server.bootstrap, KNOWLEDGE_PROPOSAL_TOPIC, bad_org.aggregate_id.encode(), 1
    )
    headers = dict(unknown_dl[0].headers)
    reason = headers["dlq-reason"].decode()
    assert "knowledge_product.publishing_organization_id" in reason
    assert f"unknown organization {unknown}" in reason
    # Retried for the bounded wait first (the organization never appeared), not refused at once.
    assert "still so after" in reason
    waited = datetime.fromisoformat(headers["dlq-failed-at"].decode()) - produced_at
    assert waited >= timedelta(seconds=SHORT_WAIT)
    assert worker.stats["waiting"] >= 2
    body_dl = await dead_letters(
        kafka_server.bootstrap, KNOWLEDGE_PROPOSAL_TOPIC, bad_body.aggregate_id.encode(), 1
    )
    assert "knowledge_product.year" in dict(body_dl[0].headers)["dlq-reason"].decode()
    assert worker.stats["dead_lettered"] >= 2


async def test_a_proposal_produced_before_its_organization_event_becomes_a_draft_once_it_arrives(
    served, settings: CatalogSettings, kafka_server, auth
):
    await ensure_topics(kafka_server.bootstrap, [ORGANIZATION_TOPIC], partitions=3)
    await ensure_topics(kafka_server.bootstrap, PROPOSAL_TOPICS)
    store = served.app.store
    # A generous bound: the test produces the organization's event as soon as the proposal waits.
    live = worker_settings(settings, kafka_server, 60.0)
    # Proposals other tests left (for other databases' organizations) would each wait the bound.
    await start_group_at_end(kafka_server.bootstrap, live.proposals_group, PROPOSAL_TOPICS)
    organizations, proposals = build_consumers(live, store)
    tasks = [asyncio.create_task(c.run()) for c in (organizations, proposals)]
    try:
        org, other = uuid.uuid4().hex, uuid.uuid4().hex
        external_id = f"S-{uuid.uuid4().hex[:8]}"
        proposal = solution_proposal(external_id, 1, org, "Drip kits for co-ops")
        await produce_envelopes(kafka_server.bootstrap, SOLUTION_PROPOSAL_TOPIC, [proposal])
        await eventually(
            lambda: proposals.stats["waiting"] >= 2, "the proposal to wait for its organization", 40
        )

        # Organization events flow while the proposal waits.
        registered = organization_pb2.ORGANIZATION_STATUS_PENDING
        await produce_envelopes(
            kafka_server.bootstrap,
            ORGANIZATION_TOPIC,
            [organization_event(reg.OrganizationRegistered, other, registered, 1)],
        )
        await eventually(
            lambda: store.get_organization(other) is not None, "another organization learned", 40
        )
        member = auth("mem", Role.MEMBER, org=org)
        assert not await drafts_of(served, member, org)
        waits_before = proposals.stats["waiting"]

        await produce_envelopes(
            kafka_server.bootstrap,
            ORGANIZATION_TOPIC,
            [organization_event(reg.OrganizationRegistered, org, registered, 1)],
        )

        async def drafted():
            return await drafts_of(served, member, org) or None

        # A draft proves the proposal was not dead-lettered (that would have committed it).
        (draft,) = await eventually(drafted, "the draft once the organization is known", 40)
        assert draft.provenance.external_id == external_id
        assert draft.title == "Drip kits for co-ops"
        assert proposals.stats["waiting"] >= waits_before

        # A redelivery after the wait changes nothing; a proposal behind it on the partition
        # shows it was taken.
        marker = solution_proposal(f"S-{uuid.uuid4().hex[:8]}", 1, org, "Seed banks")
        await produce_envelopes(kafka_server.bootstrap, SOLUTION_PROPOSAL_TOPIC, [proposal, marker])
        drafts = await eventually(
            lambda: _titled(drafts_of(served, member, org), "Seed banks"), "the marker", 40
        )
        (again,) = [d for d in drafts if d.provenance.external_id == external_id]
        assert len(drafts) == 2 and (again.id, again.version) == (draft.id, draft.version)
    finally:
        for consumer in (organizations, proposals):
            await consumer.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), 20)
