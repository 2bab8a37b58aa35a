"""``python -m ssg.registration.worker`` as a real process on real Kafka and MongoDB: it takes
an organization proposal in, and leaves its group and exits 0 on SIGTERM; without Kafka it
exits 2 naming the variable."""

from __future__ import annotations

import uuid

from pymongo import MongoClient

from ssg.contracts.common.v1 import organization_type_pb2 as ot
from ssg.contracts.ingress.v1 import events_pb2 as ingress
from ssg.contracts.ingress.v1 import proposals_pb2
from ssg.contracts.registration.v1 import organization_pb2
from ssg.platform.events.proposals import ORGANIZATION_PROPOSAL_TOPIC
from ssg.platform.proposals import get_link
from ssg.testing.kafka import produce_envelopes, proposal_envelope
from ssg.testing.process import run_until_exit, worker_process
from ssg.testing.waiting import eventually


def test_worker_without_kafka_exits_2_naming_the_variable():
    result = run_until_exit(
        "ssg.registration.worker", {"SSG_MONGODB_URI": "mongodb://127.0.0.1:1/registration"}
    )
    assert result.returncode == 2
    assert "SSG_KAFKA_BOOTSTRAP" in result.stderr


async def test_the_process_takes_a_proposal_in_and_stops_cleanly(
    mongodb_server, kafka_server, tmp_path
):
    db_name = f"registration-worker-{uuid.uuid4().hex[:6]}"
    env = {
        "SSG_MONGODB_URI": mongodb_server.uri(db_name),
        "SSG_KAFKA_BOOTSTRAP": kafka_server.bootstrap,
        "SSG_KAFKA_LOCAL_PROFILE": "true" if kafka_server.local else "false",
        "SSG_INSTANCE": "africa",
        "SSG_PROPOSALS_GROUP": f"registration-proposals-{uuid.uuid4().hex[:6]}",
    }
    ext = f"ORG-{uuid.uuid4().hex[:8]}"
    org = organization_pb2.Organization(
        name=f"Coastal Fisheries Council {ext}",
        type=ot.ORGANIZATION_TYPE_NGO,
        headquarters_country="SEN",
    )
    envelope = proposal_envelope(
        ingress.OrganizationProposed,
        proposals_pb2.OrganizationProposal(external_id=ext, organization=org),
        producer="partner-platform",
    )
    log_path = tmp_path / "worker.log"
    client: MongoClient = MongoClient(mongodb_server.uri(db_name))
    try:
        # Leaving the block sends SIGTERM and expects exit 0.
        async with worker_process("ssg.registration.worker", env, log_path) as proc:
            await produce_envelopes(kafka_server.bootstrap, ORGANIZATION_PROPOSAL_TOPIC, [envelope])
            db = client[db_name]
            link = await eventually(
                lambda: (
                    proc.returncode is None and get_link(db, f"organization:partner-platform:{ext}")
                ),
                "the proposal taken in by the process",
                120,
            )
            stored = db.organizations.find_one({"_id": link.entity_id})
            assert stored is not None and stored["status"] == "PENDING"
    finally:
        client.drop_database(db_name)
        client.close()
