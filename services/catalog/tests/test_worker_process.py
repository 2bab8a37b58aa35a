"""``python -m ssg.catalog.worker`` as a real process on real Kafka and MongoDB: its two
consumer groups run side by side (a proposal produced before its organization's registration
event waits for it and becomes a draft once it arrives), and on SIGTERM both leave their groups
and the process exits 0."""

from __future__ import annotations

import uuid

from pymongo import MongoClient

from ssg.catalog.events.proposals import PROPOSAL_TOPICS
from ssg.contracts.ingress.v1 import events_pb2 as ingress
from ssg.contracts.ingress.v1 import proposals_pb2
from ssg.contracts.registration.v1 import events_pb2 as reg
from ssg.contracts.registration.v1 import organization_pb2
from ssg.platform.events.organizations import ORGANIZATION_TOPIC
from ssg.platform.events.proposals import SOLUTION_PROPOSAL_TOPIC
from ssg.platform.events.topics import ensure_topics
from ssg.platform.proposals import get_link
from ssg.testing.kafka import produce_envelopes, proposal_envelope, start_group_at_end
from ssg.testing.process import worker_process
from ssg.testing.waiting import eventually

from .helpers import organization_event, solution_msg


async def test_the_process_drafts_a_proposal_once_its_organization_is_known_and_stops_cleanly(
    mongodb_server, kafka_server, tmp_path
):
    db_name = f"catalog-worker-{uuid.uuid4().hex[:6]}"
    suffix = uuid.uuid4().hex[:6]
    # Other tests' proposals name organizations of their own databases: they would each wait
    # the bound here. A deployed group starts where it left off; this one starts at the end.
    await ensure_topics(kafka_server.bootstrap, PROPOSAL_TOPICS)
    await start_group_at_end(kafka_server.bootstrap, f"catalog-proposals-{suffix}", PROPOSAL_TOPICS)
    env = {
        "SSG_MONGODB_URI": mongodb_server.uri(db_name),
        "SSG_KAFKA_BOOTSTRAP": kafka_server.bootstrap,
        "SSG_KAFKA_LOCAL_PROFILE": "true" if kafka_server.local else "false",
        "SSG_INSTANCE": "africa",
        "SSG_ORGANIZATIONS_GROUP": f"catalog-organizations-{suffix}",
        "SSG_PROPOSALS_GROUP": f"catalog-proposals-{suffix}",
        "SSG_EVENT_WAIT_SECONDS": "120",
    }
    org = uuid.uuid4().hex
    ext = f"SOL-{uuid.uuid4().hex[:8]}"
    proposal = proposal_envelope(
        ingress.SolutionProposed,
        proposals_pb2.SolutionProposal(external_id=ext, solution=solution_msg(org)),
    )
    log_path = tmp_path / "worker.log"

    def waits_logged() -> bool:
        lines = log_path.read_bytes().splitlines()
        return any(b"not known yet" in ln and proposal.event_id.encode() in ln for ln in lines)

    client: MongoClient = MongoClient(mongodb_server.uri(db_name))
    db = client[db_name]
    try:
        # Leaving the block sends SIGTERM and expects exit 0: both groups left, nothing hung.
        async with worker_process("ssg.catalog.worker", env, log_path) as proc:
            await produce_envelopes(kafka_server.bootstrap, SOLUTION_PROPOSAL_TOPIC, [proposal])
            await eventually(
                lambda: proc.returncode is None and waits_logged(),
                "the proposal to wait for its organization",
                120,
            )
            pending = organization_pb2.ORGANIZATION_STATUS_PENDING
            await produce_envelopes(
                kafka_server.bootstrap,
                ORGANIZATION_TOPIC,
                [organization_event(reg.OrganizationRegistered, org, pending, 1)],
            )
            link = await eventually(
                lambda: proc.returncode is None and get_link(db, f"solution:pm-system:{ext}"),
                "the draft once the organization is known",
                120,
            )
            stored = db.solutions.find_one({"_id": link.entity_id})
            assert stored is not None and stored["status"] == "DRAFT"
    finally:
        client.drop_database(db_name)
        client.close()
