"""Every command's event reaches its Kafka topic exactly once with the full state after the change
(real MongoDB, real Kafka-protocol broker, the platform outbox relay running in-process)."""

from __future__ import annotations

import time
from datetime import timedelta

from aiokafka import AIOKafkaConsumer
from google.protobuf import field_mask_pb2

from ssg.contracts.common.v1 import organization_type_pb2 as ot
from ssg.contracts.registration.v1 import events_pb2, expert_pb2, organization_pb2
from ssg.contracts.registration.v1 import registration_service_pb2 as pb
from ssg.platform.auth.tokens import Role
from ssg.platform.events.envelope import parse_envelope, unpack_payload
from ssg.registration.events.publisher import EXPERT_TOPIC, ORGANIZATION_TOPIC
from ssg.registration.service import utc_now

PAYLOADS = {
    f"registration.{cls.DESCRIPTOR.name}": cls
    for cls in (
        events_pb2.OrganizationRegistered,
        events_pb2.OrganizationUpdated,
        events_pb2.OrganizationVerified,
        events_pb2.OrganizationRejected,
        events_pb2.OrganizationSuspended,
        events_pb2.OrganizationMerged,
        events_pb2.VerificationExpired,
        events_pb2.ExpertRegistered,
        events_pb2.ExpertUpdated,
        events_pb2.ExpertErased,
    )
}


async def read_topic(bootstrap: str, topic: str, keys: set[str], want: int, within: float = 30.0):
    """(event_type, aggregate_id, version, payload) of every message of keys, from the start,
    until want messages arrived and no more came for a short while."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    seen = []
    deadline = time.monotonic() + within
    quiet_until = None
    try:
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for messages in batch.values():
                for msg in messages:
                    env = parse_envelope(msg.value)
                    if env.aggregate_id not in keys:
                        continue
                    assert msg.key == env.aggregate_id.encode()
                    payload = unpack_payload(env, PAYLOADS[env.event_type])
                    seen.append((env.event_type, env.aggregate_id, env.aggregate_version, payload))
            if len(seen) >= want:
                # Wait a little longer so that a duplicate would be caught too.
                quiet_until = quiet_until or time.monotonic() + 1.5
                if time.monotonic() > quiet_until:
                    break
    finally:
        await consumer.stop()
    return seen


def org(name: str, **fields) -> organization_pb2.Organization:
    return organization_pb2.Organization(
        name=name, type=ot.ORGANIZATION_TYPE_ACADEMIA, headquarters_country="GHA", **fields
    )


async def test_each_command_publishes_its_event_once_with_the_full_state(
    served, relay, kafka_server, auth, suffix
):
    stub = served.stub
    ops = auth("ops", Role.OPERATOR)
    reviewer = auth("rev", Role.REVIEWER)

    a = (
        await stub.RegisterOrganization(
            pb.RegisterOrganizationRequest(organization=org(f"Accra Policy Lab {suffix}")),
            metadata=ops,
            timeout=10,
        )
    ).organization
    a = (
        await stub.UpdateOrganization(
            pb.UpdateOrganizationRequest(
                organization=organization_pb2.Organization(
                    id=a.id, version=a.version, description="Research"
                ),
                update_mask=field_mask_pb2.FieldMask(paths=["description"]),
            ),
            metadata=ops,
            timeout=10,
        )
    ).organization
    a = (
        await stub.VerifyOrganization(
            pb.VerifyOrganizationRequest(id=a.id, version=a.version, evidence_note="registry"),
            metadata=reviewer,
            timeout=10,
        )
    ).organization
    a = (
        await stub.SuspendOrganization(
            pb.SuspendOrganizationRequest(id=a.id, reason="complaint"),
            metadata=reviewer,
            timeout=10,
        )
    ).organization
    a = (
        await stub.VerifyOrganization(
            pb.VerifyOrganizationRequest(id=a.id), metadata=reviewer, timeout=10
        )
    ).organization

    # The sweep of a replica whose clock is past the verification period flags it, once.
    later = served.app.service
    saved_clock = later.clock
    later.clock = lambda: utc_now() + timedelta(days=731)
    try:
        assert await later.expire_verification(a.id) is True
        assert await later.expire_verification(a.id) is False
    finally:
        later.clock = saved_clock
    a = (
        await stub.GetOrganization(pb.GetOrganizationRequest(id=a.id), metadata=ops, timeout=10)
    ).organization
    assert a.reconfirmation_required

    b = (
        await stub.RegisterOrganization(
            pb.RegisterOrganizationRequest(organization=org(f"Kumasi Tech Hub {suffix}")),
            metadata=ops,
            timeout=10,
        )
    ).organization
    b = (
        await stub.RejectOrganization(
            pb.RejectOrganizationRequest(id=b.id, reason="not an organization"),
            metadata=reviewer,
            timeout=10,
        )
    ).organization
    c = (
        await stub.RegisterOrganization(
            pb.RegisterOrganizationRequest(organization=org(f"Accra Policy Laboratory {suffix}")),
            metadata=ops,
            timeout=10,
        )
    ).organization
    merged = await stub.MergeOrganizations(
        pb.MergeOrganizationsRequest(source_id=c.id, target_id=a.id), metadata=reviewer, timeout=10
    )
    c = merged.source

    owner = auth(f"expert-{suffix}")
    e = (
        await stub.RegisterExpert(
            pb.RegisterExpertRequest(
                expert=expert_pb2.Expert(
                    display_name=f"Kofi {suffix}", visibility=expert_pb2.EXPERT_VISIBILITY_PUBLIC
                )
            ),
            metadata=owner,
            timeout=10,
        )
    ).expert
    e = (
        await stub.UpdateExpert(
            pb.UpdateExpertRequest(
                expert=expert_pb2.Expert(id=e.id, version=e.version, languages=["fr"]),
                update_mask=field_mask_pb2.FieldMask(paths=["languages"]),
            ),
            metadata=owner,
            timeout=10,
        )
    ).expert
    await stub.EraseExpert(pb.EraseExpertRequest(id=e.id), metadata=owner, timeout=10)

    orgs = await read_topic(kafka_server.bootstrap, ORGANIZATION_TOPIC, {a.id, b.id, c.id}, 10)
    experts = await read_topic(kafka_server.bootstrap, EXPERT_TOPIC, {e.id}, 3)

    def types(seen, key):
        return [t.removeprefix("registration.") for t, agg, _, _ in seen if agg == key]

    assert types(orgs, a.id) == [
        "OrganizationRegistered",
        "OrganizationUpdated",
        "OrganizationVerified",
        "OrganizationSuspended",
        "OrganizationVerified",
        "VerificationExpired",
    ]
    assert types(orgs, b.id) == ["OrganizationRegistered", "OrganizationRejected"]
    assert types(orgs, c.id) == ["OrganizationRegistered", "OrganizationMerged"]
    assert types(experts, e.id) == ["ExpertRegistered", "ExpertUpdated", "ExpertErased"]
    # Exactly once: no (aggregate, version) twice; versions 1..n in order per aggregate.
    for seen in (orgs, experts):
        for key in {agg for _, agg, _, _ in seen}:
            versions = [v for _, agg, v, _ in seen if agg == key]
            assert versions == list(range(1, len(versions) + 1))
    # Full state after the change: the last event of each aggregate equals what the API shows.
    last = {agg: payload for _, agg, _, payload in orgs}
    assert last[a.id].organization == a
    assert last[b.id].organization == b
    assert last[b.id].organization.status_reason == "not an organization"
    assert last[c.id].organization == c
    assert last[c.id].organization.merged_into == a.id
    updated = next(p for t, _, _, p in experts if t == "registration.ExpertUpdated")
    assert updated.expert == e
    erased = next(p for t, _, _, p in experts if t == "registration.ExpertErased")
    assert erased == events_pb2.ExpertErased(expert_id=e.id)
    # Updated events name what changed.
    changed = next(p for t, _, _, p in orgs if t == "registration.OrganizationUpdated")
    assert list(changed.changed_fields) == ["description"]
