"""Against real MongoDB and a real Kafka-protocol broker: the review flow's events reach the
topic once each (outbox relay in-process); the worker learns a suspension from a real
registration envelope and blocks new submissions; replaying the registration topic from the
start into a fresh database rebuilds the same read model."""

from __future__ import annotations

import asyncio
import time
import uuid

import grpc
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from ssg.catalog.events.publisher import SOLUTION_TOPIC
from ssg.catalog.settings import CatalogSettings
from ssg.catalog.store.mongo import MongoStore
from ssg.catalog.worker import organizations_consumer
from ssg.contracts.catalog.v1 import catalog_service_pb2 as pb
from ssg.contracts.catalog.v1 import events_pb2
from ssg.contracts.registration.v1 import events_pb2 as reg
from ssg.contracts.registration.v1 import organization_pb2
from ssg.platform.auth.tokens import DEV_SECRET, Role
from ssg.platform.events.envelope import parse_envelope, unpack_payload
from ssg.platform.events.organizations import ORGANIZATION_TOPIC
from ssg.platform.events.topics import ensure_topics
from ssg.platform.mongo import make_client
from ssg.platform.settings import load_settings
from ssg.testing.waiting import eventually

from .helpers import organization_event, passing_review, solution_msg


async def read_solution_events(bootstrap: str, key: str, want: int, within: float = 30.0):
    """(event_type, version, envelope) of every message of key, until want arrived and a quiet
    spell followed (so a duplicate would be seen too)."""
    consumer = AIOKafkaConsumer(
        SOLUTION_TOPIC, bootstrap_servers=bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    seen = []
    deadline = time.monotonic() + within
    quiet_until = None
    try:
        while time.monotonic() < deadline:
            for messages in (await consumer.getmany(timeout_ms=300)).values():
                for msg in messages:
                    env = parse_envelope(msg.value)
                    if env.aggregate_id == key:
                        seen.append((env.event_type, env.aggregate_version, env))
            if len(seen) >= want:
                quiet_until = quiet_until or time.monotonic() + 1.5
                if time.monotonic() > quiet_until:
                    break
    finally:
        await consumer.stop()
    return seen


async def test_review_flow_publishes_each_event_once(served, relay, kafka_server, auth):
    org = served.add_organization()
    member, reviewer = auth("mem", Role.MEMBER, org=org), auth("rev", Role.REVIEWER)
    stub = served.stub
    s = (
        await stub.CreateSolution(
            pb.CreateSolutionRequest(solution=solution_msg(org)), metadata=member, timeout=10
        )
    ).solution
    await stub.SubmitSolution(pb.SubmitSolutionRequest(id=s.id), metadata=member, timeout=10)
    await stub.StartSolutionReview(
        pb.StartSolutionReviewRequest(id=s.id), metadata=reviewer, timeout=10
    )
    await stub.ReviewSolution(
        pb.ReviewSolutionRequest(id=s.id, review=passing_review()), metadata=reviewer, timeout=10
    )
    done = (
        await stub.PublishSolution(
            pb.PublishSolutionRequest(id=s.id), metadata=reviewer, timeout=10
        )
    ).solution
    await stub.ArchiveSolution(
        pb.ArchiveSolutionRequest(id=s.id, reason="superseded"), metadata=member, timeout=10
    )

    seen = await read_solution_events(kafka_server.bootstrap, s.id, want=4)
    assert [t for t, _, _ in seen] == [
        "catalog.SolutionSubmitted",
        "catalog.SolutionReviewRecorded",
        "catalog.SolutionPublished",
        "catalog.SolutionArchived",
    ]
    versions = [v for _, v, _ in seen]
    assert versions == sorted(set(versions))
    submitted = unpack_payload(seen[0][2], events_pb2.SolutionSubmitted)
    assert submitted.solution_id == s.id and submitted.organization_id == org
    published = unpack_payload(seen[2][2], events_pb2.SolutionPublished).solution
    assert published.title == done.title and published.version == done.version
    assert published.sdg_targets[0].code == "6.4"


async def produce(bootstrap: str, envelopes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_batch_size=1, linger_ms=0)
    await producer.start()
    try:
        for env in envelopes:
            await producer.send_and_wait(
                ORGANIZATION_TOPIC, env.SerializeToString(), key=env.aggregate_id.encode()
            )
    finally:
        await producer.stop()


async def run_worker(settings: CatalogSettings, store: MongoStore):
    consumer = organizations_consumer(settings, store)
    task = asyncio.create_task(consumer.run())
    return consumer, task


def worker_settings(base: CatalogSettings, kafka_server, uri: str, group: str) -> CatalogSettings:
    return load_settings(
        CatalogSettings,
        instance=base.instance,
        mongodb_uri=uri,
        kafka_bootstrap=kafka_server.bootstrap,
        kafka_local_profile=kafka_server.local,
        jwt_secret=DEV_SECRET,
        organizations_group=group,
        event_retry_base_seconds=0.05,
    )


async def test_suspension_learned_from_its_event_blocks_submission_and_replay_rebuilds(
    served, settings, kafka_server, mongodb_server, auth
):
    await ensure_topics(kafka_server.bootstrap, [ORGANIZATION_TOPIC], partitions=3)
    a, b, c = (uuid.uuid4().hex for _ in range(3))
    V, S, M = (
        organization_pb2.ORGANIZATION_STATUS_VERIFIED,
        organization_pb2.ORGANIZATION_STATUS_SUSPENDED,
        organization_pb2.ORGANIZATION_STATUS_MERGED,
    )
    P = organization_pb2.ORGANIZATION_STATUS_PENDING
    history = [
        organization_event(reg.OrganizationRegistered, a, P, 1),
        organization_event(reg.OrganizationVerified, a, V, 2),
        organization_event(reg.OrganizationRegistered, b, P, 1),
        organization_event(reg.OrganizationVerified, b, V, 2),
        organization_event(reg.OrganizationRegistered, c, P, 1),
        organization_event(reg.OrganizationMerged, c, M, 3, merged_into=b),
        # Out of order and replayed: an older state after a newer one changes nothing.
        organization_event(reg.OrganizationVerified, c, V, 2),
    ]
    await produce(kafka_server.bootstrap, history)
    store = served.app.store
    assert isinstance(store, MongoStore)
    live = worker_settings(
        settings, kafka_server, settings.mongodb_uri, f"catalog-{uuid.uuid4().hex[:6]}"
    )
    consumer, task = await run_worker(live, store)
    try:
        # The three live on different partitions: wait for each, not just the last one sent.
        learned = {a: "VERIFIED", b: "VERIFIED", c: "MERGED"}
        await eventually(
            lambda: all(
                (o := store.get_organization(org)) is not None and o.status == status
                for org, status in learned.items()
            ),
            "read model",
            40,
        )
        member = auth("mem", Role.MEMBER, org=a)
        s = (
            await served.stub.CreateSolution(
                pb.CreateSolutionRequest(solution=solution_msg(a)), metadata=member, timeout=10
            )
        ).solution

        await produce(
            kafka_server.bootstrap, [organization_event(reg.OrganizationSuspended, a, S, 3)]
        )
        await eventually(
            lambda: (o := store.get_organization(a)) is not None and o.status == "SUSPENDED",
            "suspension",
            30,
        )
        try:
            await served.stub.SubmitSolution(
                pb.SubmitSolutionRequest(id=s.id), metadata=member, timeout=10
            )
            raise AssertionError("a suspended organization's member submitted")
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "SUSPENDED" in (exc.details() or "")
        # A member of b acts for c's records: merged ids redirect.
        draft = (
            await served.stub.CreateSolution(
                pb.CreateSolutionRequest(solution=solution_msg(c)),
                metadata=auth("m2", Role.MEMBER, org=b),
                timeout=10,
            )
        ).solution
        assert draft.provenance.vouching_organization_verified
    finally:
        await consumer.stop()
        await asyncio.wait_for(task, 20)

    # Replay from the start into a fresh database with a new group: the same read model.
    fresh_uri = mongodb_server.uri(f"catalog-replay-{uuid.uuid4().hex[:6]}")
    client = make_client(live)
    fresh_client = make_client(worker_settings(settings, kafka_server, fresh_uri, "x"))
    fresh = MongoStore(fresh_client, fresh_client.get_default_database())
    replay = worker_settings(
        settings, kafka_server, fresh_uri, f"catalog-replay-{uuid.uuid4().hex[:6]}"
    )
    consumer, task = await run_worker(replay, fresh)
    try:
        ours = {a, b, c}
        expected = [o for o in store.organizations() if o.id in ours]
        await eventually(
            lambda: [o for o in fresh.organizations() if o.id in ours] == expected,
            "rebuilt read model",
            40,
        )
        by_id = {o.id: o for o in expected}
        assert (by_id[a].status, by_id[b].status, by_id[c].status) == (
            "SUSPENDED",
            "VERIFIED",
            "MERGED",
        )
        assert by_id[c].merged_into == b and by_id[c].version == 3
    finally:
        await consumer.stop()
        await asyncio.wait_for(task, 20)
        fresh_client.drop_database(fresh_client.get_default_database().name)
        fresh_client.close()
        client.close()
