"""Against real MongoDB and a real Kafka-protocol broker: organization proposals on the ingress
bridge's topic become PENDING organizations that reviewers verify through the registration gRPC
API, with the duplicate guard's candidates shown to them; expert proposals become profiles; a
repeat changes nothing, a newer revision updates, one after a reviewer's decision does not; a
proposal registration refuses is dead-lettered with its reason and the next one is taken in."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from ssg.contracts.common.v1 import organization_type_pb2 as ot
from ssg.contracts.common.v1 import sdg_pb2
from ssg.contracts.ingress.v1 import events_pb2 as ingress
from ssg.contracts.ingress.v1 import proposals_pb2
from ssg.contracts.registration.v1 import expert_pb2, organization_pb2
from ssg.contracts.registration.v1 import registration_service_pb2 as pb
from ssg.platform.auth.tokens import DEV_SECRET, Role
from ssg.platform.events.proposals import EXPERT_PROPOSAL_TOPIC, ORGANIZATION_PROPOSAL_TOPIC
from ssg.platform.events.topics import ensure_topics
from ssg.platform.proposals import get_link
from ssg.platform.settings import load_settings
from ssg.registration.events.proposals import PROPOSAL_TOPICS
from ssg.registration.settings import RegistrationSettings
from ssg.registration.worker import build_consumer
from ssg.testing.kafka import dead_letters, produce_envelopes, proposal_envelope
from ssg.testing.waiting import eventually

PRODUCER = "partner-platform"


@pytest.fixture(scope="module")
async def worker(served, settings: RegistrationSettings, kafka_server):
    """The registration worker's consumer on the module's database, with a group of its own."""
    await ensure_topics(kafka_server.bootstrap, PROPOSAL_TOPICS)
    live = load_settings(
        RegistrationSettings,
        instance=settings.instance,
        instance_id="test-worker",
        mongodb_uri=settings.mongodb_uri,
        kafka_bootstrap=kafka_server.bootstrap,
        kafka_local_profile=kafka_server.local,
        jwt_secret=DEV_SECRET,
        proposals_group=f"registration-proposals-{uuid.uuid4().hex[:6]}",
        event_retry_base_seconds=0.05,
    )
    consumer = build_consumer(live, served.app.store)
    task = asyncio.create_task(consumer.run())
    yield consumer
    await consumer.stop()
    await asyncio.wait_for(task, 20)


def organization(name: str, website: str, **fields) -> organization_pb2.Organization:
    values = {
        "name": name,
        "type": ot.ORGANIZATION_TYPE_NGO,
        "headquarters_country": "KEN",
        "sdgs": [sdg_pb2.SDG_CLEAN_WATER_AND_SANITATION],
        "languages": ["en"],
        "website": website,
        "contact_email": "info@example.org",
        **fields,
    }
    return organization_pb2.Organization(**values)


def organization_proposal(external_id: str, revision: int, org: organization_pb2.Organization):
    body = proposals_pb2.OrganizationProposal(
        external_id=external_id, revision=revision, organization=org
    )
    return proposal_envelope(ingress.OrganizationProposed, body, producer=PRODUCER)


def expert_proposal(external_id: str, revision: int, **fields):
    values = {
        "display_name": "Amina Odhiambo",
        "expertise_areas": ["irrigation"],
        "sdgs": [sdg_pb2.SDG_CLEAN_WATER_AND_SANITATION],
        "languages": ["en"],
        "countries": ["KEN"],
        "visibility": expert_pb2.EXPERT_VISIBILITY_PUBLIC,
        **fields,
    }
    body = proposals_pb2.ExpertProfile(
        external_id=external_id, revision=revision, expert=expert_pb2.Expert(**values)
    )
    return proposal_envelope(ingress.ExpertProfileProposed, body, producer=PRODUCER)


async def test_a_proposed_organization_is_pending_with_its_duplicates_shown_to_the_reviewer(
    served, worker, kafka_server, auth, suffix
):
    website = f"https://water-{suffix}.example.org"
    name = f"Lake Basin Water Network {suffix}"
    existing = (
        await served.stub.RegisterOrganization(
            pb.RegisterOrganizationRequest(organization=organization(name, website)),
            metadata=auth("founder"),
            timeout=10,
        )
    ).organization
    ext = f"ORG-{suffix}"
    first = organization_proposal(ext, 1, organization(name, website))
    second = organization_proposal(
        ext, 2, organization(name, website, description="Cooperatives sharing pumps.")
    )
    await produce_envelopes(
        kafka_server.bootstrap, ORGANIZATION_PROPOSAL_TOPIC, [first, first, second]
    )
    db = served.db
    # One key, one partition: once revision 2 is applied, the repeats before it were handled.
    link = await eventually(
        lambda: (
            (got := get_link(db, f"organization:{PRODUCER}:{ext}")) and got.revision == 2 and got
        ),
        "revision 2 applied",
        40,
    )
    reviewer = auth("rev", Role.REVIEWER)
    view = await served.stub.GetOrganization(
        pb.GetOrganizationRequest(id=link.entity_id), metadata=reviewer, timeout=10
    )
    org = view.organization
    assert org.status == organization_pb2.ORGANIZATION_STATUS_PENDING
    assert org.description == "Cooperatives sharing pumps." and org.version == 2
    # Reported to the reviewer, not merged.
    assert existing.id in {d.organization_id for d in view.possible_duplicates}
    assert [e.actor for e in view.audit_entries] == [f"ingress:{PRODUCER}"] * 2
    assert db.organizations.count_documents({"website": website}) == 2

    await served.stub.VerifyOrganization(
        pb.VerifyOrganizationRequest(id=org.id, version=2), metadata=reviewer, timeout=10
    )
    await produce_envelopes(
        kafka_server.bootstrap,
        ORGANIZATION_PROPOSAL_TOPIC,
        [organization_proposal(ext, 3, organization(f"Renamed {suffix}", website))],
    )
    await eventually(
        lambda: (got := get_link(db, link.key)) and got.ignored_revision == 3,
        "revision 3 recorded as ignored",
        40,
    )
    after = (
        await served.stub.GetOrganization(
            pb.GetOrganizationRequest(id=org.id), metadata=reviewer, timeout=10
        )
    ).organization
    assert after.status == organization_pb2.ORGANIZATION_STATUS_VERIFIED
    assert after.name == name and after.version == 3


async def test_experts_and_refused_proposals(served, worker, kafka_server, auth, suffix):
    ext = f"EXP-{suffix}"
    bad_org = organization_proposal(
        f"ORG-bad-{suffix}",
        1,
        organization(f"Bad {suffix}", "https://bad.example.org", headquarters_country="XXX"),
    )
    unknown = uuid.uuid4().hex
    bad_expert = expert_proposal(f"EXP-bad-{suffix}", 1, affiliation_organization_id=unknown)
    await produce_envelopes(kafka_server.bootstrap, ORGANIZATION_PROPOSAL_TOPIC, [bad_org])
    await produce_envelopes(
        kafka_server.bootstrap,
        EXPERT_PROPOSAL_TOPIC,
        [
            bad_expert,
            expert_proposal(ext, 1),
            expert_proposal(ext, 1),
            expert_proposal(ext, 2, biography="Twenty years of irrigation schemes."),
        ],
    )
    db = served.db
    link = await eventually(
        lambda: (got := get_link(db, f"expert:{PRODUCER}:{ext}")) and got.revision == 2 and got,
        "expert revision 2",
        40,
    )
    expert = (
        await served.stub.GetExpert(pb.GetExpertRequest(id=link.entity_id), timeout=10)
    ).expert
    assert expert.biography == "Twenty years of irrigation schemes." and expert.version == 2
    # The repeats made no second profile, and the outbox holds its two events only.
    assert db.experts.count_documents({"owner": f"ingress:{PRODUCER}"}) == 1
    assert db.outbox.count_documents({"key": link.entity_id}) == 2

    org_dl = await dead_letters(
        kafka_server.bootstrap, ORGANIZATION_PROPOSAL_TOPIC, bad_org.aggregate_id.encode(), 1
    )
    assert "organization.headquarters_country" in dict(org_dl[0].headers)["dlq-reason"].decode()
    expert_dl = await dead_letters(
        kafka_server.bootstrap, EXPERT_PROPOSAL_TOPIC, bad_expert.aggregate_id.encode(), 1
    )
    reason = dict(expert_dl[0].headers)["dlq-reason"].decode()
    assert f"expert.affiliation_organization_id: no organization {unknown}" in reason
    assert get_link(db, f"expert:{PRODUCER}:EXP-bad-{suffix}") is None
