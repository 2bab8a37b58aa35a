"""Against a real Kafka-protocol broker and real MongoDB: items kept from catalog events
(idempotent by version, poison messages dead-lettered), interactions recorded over gRPC change
recommendations, two workers and a restart keep exact counts, and posted needs become
MatchProposed events whose lifecycle only the two parties can move."""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from itertools import combinations

import grpc
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import REGISTRY

from ssg.contracts.catalog.v1 import events_pb2 as cat
from ssg.contracts.common.v1 import geography_pb2, sdg_pb2
from ssg.contracts.recommendation.v1 import events_pb2 as ev
from ssg.contracts.recommendation.v1 import interaction_pb2, match_pb2
from ssg.contracts.recommendation.v1 import recommendation_service_pb2 as pb
from ssg.contracts.registration.v1 import expert_pb2
from ssg.platform.auth.tokens import Role
from ssg.platform.events.envelope import Origin, dlq_topic, parse_envelope, unpack_payload
from ssg.platform.events.organizations import ORGANIZATION_TOPIC
from ssg.platform.events.topics import ensure_topics
from ssg.platform.mongo import make_client
from ssg.platform.settings import load_settings
from ssg.recommendation.domain.matches import MatchStatus
from ssg.recommendation.events.catalog import NEED_TOPIC, SOLUTION_TOPIC
from ssg.recommendation.events.publisher import INTERACTION_TOPIC, MATCH_TOPIC, EventFactory
from ssg.recommendation.events.registration import EXPERT_TOPIC
from ssg.recommendation.settings import RecommendationSettings
from ssg.testing.kafka import produce_envelopes as produce
from ssg.testing.waiting import eventually

from .builders import expert_event, need_event, organization_event, solution, solution_event
from .conftest import running_worker

pytestmark = pytest.mark.timeout(240)


async def read_topic(bootstrap: str, topic: str, keep, want: int, within: float = 30.0) -> list:
    """Messages of topic for which keep(message) is true, until want arrived (from the start)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    found: list = []
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline and len(found) < want:
            for messages in (await consumer.getmany(timeout_ms=300)).values():
                found.extend(m for m in messages if keep(m))
    finally:
        await consumer.stop()
    return found


async def test_catalog_events_keep_items_by_version_and_poison_goes_to_the_dlq(
    settings, kafka_server
):
    s1, s2 = (f"s-{uuid.uuid4().hex[:10]}" for _ in range(2))
    v2 = solution(s1, "Solar pumps v2", "solar irrigation pumps", [6, 7])
    old = solution(s1, "Solar pumps v1", "old text", [6])
    async with running_worker(settings) as (_, store):
        await produce(
            kafka_server.bootstrap,
            SOLUTION_TOPIC,
            [
                solution_event(cat.SolutionPublished, v2, 2),
                solution_event(cat.SolutionUpdated, old, 1),
            ],
        )
        producer = AIOKafkaProducer(
            bootstrap_servers=kafka_server.bootstrap, max_batch_size=1, linger_ms=0
        )
        await producer.start()
        poison = f"not an envelope {s1}".encode()
        try:
            await producer.send_and_wait(SOLUTION_TOPIC, poison, key=s1.encode())
        finally:
            await producer.stop()
        await produce(
            kafka_server.bootstrap,
            SOLUTION_TOPIC,
            [
                solution_event(
                    cat.SolutionPublished,
                    solution(s2, "Seed banks", "community seed banks", [2]),
                    1,
                ),
                solution_event(cat.SolutionArchived, v2, 3),
            ],
        )
        await eventually(
            lambda: store.get_item(s2) is not None, "the item after the poison message", 40
        )
        item = await eventually(
            lambda: (i := store.get_item(s1)) is not None and i.version == 3 and i,
            "archived item",
            40,
        )
        assert item.title == "Solar pumps v2" and not item.active and item.sdgs == (6, 7)
        # An interaction that names no person cannot be applied: dead-lettered with the reason.
        complete = interaction_pb2.Interaction(
            id=uuid.uuid4().hex,
            user_id=f"nobody-{s1}",
            item_id=s1,
            kind=interaction_pb2.INTERACTION_KIND_VIEW,
        )
        bad = EventFactory(Origin("recommendation", "africa", "test")).interaction_recorded(
            complete, datetime.now(UTC)
        )
        complete.user_id = ""
        bad.envelope.payload.Pack(ev.InteractionRecorded(interaction=complete))
        await produce(kafka_server.bootstrap, INTERACTION_TOPIC, [bad.envelope])
        dead_interaction = await read_topic(
            kafka_server.bootstrap,
            dlq_topic(INTERACTION_TOPIC),
            lambda m: m.key == f"nobody-{s1}".encode(),
            1,
        )
        assert dead_interaction, "the incomplete interaction was not dead-lettered"
        assert b"without user_id" in dict(dead_interaction[0].headers)["dlq-reason"]
        dead = await read_topic(
            kafka_server.bootstrap, dlq_topic(SOLUTION_TOPIC), lambda m: m.value == poison, 1
        )
        assert dead, "the poison message was not dead-lettered"
        headers = dict(dead[0].headers)
        assert b"not an Envelope" in headers["dlq-reason"] or b"Envelope" in headers["dlq-reason"]


async def test_recorded_interactions_change_recommendations(
    served, relay, settings, kafka_server, auth
):
    tag = uuid.uuid4().hex[:8]
    water = [
        solution(
            f"w1-{tag}", "Solar water pumps", "solar pumps bring irrigation water to farmers", [6]
        ),
        solution(
            f"w2-{tag}",
            "Borehole water committees",
            "village committees repair boreholes for water",
            [6],
        ),
    ]
    others = [
        solution(
            f"h1-{tag}",
            "Mobile clinics",
            "mobile clinics bring vaccines to remote districts",
            [3],
            age_days=1,
        ),
        solution(
            f"e1-{tag}",
            "Radio schooling",
            "radio lessons for children in remote schools",
            [4],
            age_days=1,
        ),
    ]
    user = f"user-{tag}"
    async with running_worker(settings) as (_, store):
        await produce(
            kafka_server.bootstrap,
            SOLUTION_TOPIC,
            [solution_event(cat.SolutionPublished, s, 1) for s in [*water, *others]],
        )
        await eventually(lambda: all(store.get_item(s.id) for s in [*water, *others]), "items", 40)
        me = auth(user)
        before = await served.stub.Recommend(
            pb.RecommendRequest(user_id=user, page_size=2), metadata=me, timeout=10
        )
        assert before.cold_start
        sent = time.monotonic()
        await served.stub.RecordInteraction(
            pb.RecordInteractionRequest(
                interaction=interaction_pb2.Interaction(
                    item_id=water[0].id, kind=interaction_pb2.INTERACTION_KIND_SAVE
                )
            ),
            metadata=me,
            timeout=10,
        )

        async def reflected():
            reply = await served.stub.Recommend(
                pb.RecommendRequest(user_id=user, page_size=2), metadata=me, timeout=10
            )
            return not reply.cold_start and reply

        after = await eventually(reflected, "the interaction in the recommendations", 30)
        lag = time.monotonic() - sent
        assert after.recommendations[0].item_id == water[1].id
        assert water[0].id not in [r.item_id for r in after.recommendations]
        assert lag < 30
        print(f"interaction -> recommendation lag {lag:.2f} s")
        # The worker stored the list in the interaction's transaction, and the API serves it
        # (once its own index, refreshed every few seconds, holds the listed items; until then
        # it computes the list, with scores of its own snapshot).
        stored = store.stored_recommendations(f"user:{user}")
        assert stored is not None
        listed = [(e[0], e[1]) for e in stored.entries[:2]]

        async def served_stored():
            reply = await served.stub.Recommend(
                pb.RecommendRequest(user_id=user, page_size=2), metadata=me, timeout=10
            )
            return [(r.item_id, r.score) for r in reply.recommendations] == listed

        await eventually(served_stored, "the stored list served", 30)


async def test_two_workers_and_a_restart_keep_exact_counts(settings, mongodb_server, kafka_server):
    own = load_settings(
        RecommendationSettings,
        **{
            **settings.model_dump(),
            "mongodb_uri": mongodb_server.uri(f"rec-counts-{uuid.uuid4().hex[:6]}"),
            "worker_group": f"rec-counts-{uuid.uuid4().hex[:6]}",
        },
    )
    await ensure_topics(kafka_server.bootstrap, [INTERACTION_TOPIC], partitions=3)
    rng = random.Random(7)
    tag = uuid.uuid4().hex[:6]
    users = [f"cu{n}-{tag}" for n in range(12)]
    items = [f"ci{n}-{tag}" for n in range(6)]
    factory = EventFactory(Origin("recommendation", "africa", "test"))
    start = datetime.now(UTC) - timedelta(hours=1)
    envelopes = []
    for n in range(90):
        i = interaction_pb2.Interaction(
            id=uuid.uuid4().hex,
            user_id=rng.choice(users),
            item_id=rng.choice(items),
            kind=interaction_pb2.InteractionKind.ValueType(rng.randint(1, 6)),
        )
        at = start + timedelta(seconds=n)
        i.occur_time.FromDatetime(at)
        envelopes.append(factory.interaction_recorded(i, at).envelope)
    first, second = envelopes[:45], envelopes[45:]
    ids = {e.event_id for e in envelopes}
    client = make_client(own)
    processed = client.get_default_database()["processed_events"]

    def done() -> int:
        return processed.count_documents({"event_id": {"$in": list(ids)}})

    try:
        # Redeliveries: every tenth event twice.
        await produce(kafka_server.bootstrap, INTERACTION_TOPIC, [*first, *first[::10]])
        async with running_worker(own) as (a, store):
            async with running_worker(own) as (b, _):
                await eventually(
                    lambda: a.assignment() and b.assignment(), "both workers in the group", 60
                )
                await eventually(lambda: done() >= len(first), "the first half", 60)
            # b left; a takes every partition and goes on.
            await produce(kafka_server.bootstrap, INTERACTION_TOPIC, second[:20])
            await eventually(lambda: done() >= len(first) + 20, "events after the leave", 60)
        # Both stopped; a restarted worker resumes from the committed offsets.
        await produce(kafka_server.bootstrap, INTERACTION_TOPIC, [*second[20:], *second[::7]])
        async with running_worker(own) as (_, store):
            await eventually(lambda: done() == len(envelopes), "every event", 60)

            facts = [unpack_payload(e, ev.InteractionRecorded).interaction for e in envelopes]
            per_item = Counter(f.item_id for f in facts)
            people: dict[str, set[str]] = defaultdict(set)
            for f in facts:
                people[f.item_id].add(f.user_id)
            for item_id in items:
                assert store.item_counts(item_id) == (per_item[item_id], len(people[item_id])), (
                    item_id
                )
            used: dict[str, set[str]] = defaultdict(set)
            for f in facts:
                used[f.user_id].add(f.item_id)
            for x, y in combinations(items, 2):
                both = sum(1 for u in users if {x, y} <= used[u])
                assert store.co_count(x, y) == both == store.co_count(y, x), (x, y)
            for u in users:
                doc = store.profiles.find_one({"_id": f"user:{u}"}) or {}
                assert doc.get("interactions", 0) == sum(1 for f in facts if f.user_id == u)
    finally:
        client.drop_database(client.get_default_database().name)
        client.close()


def match_steps() -> dict[str, float]:
    """The funnel counter's value per status (ssg.recommendation.funnel)."""
    return {
        status.value: REGISTRY.get_sample_value(
            "ssg_recommendation_match_steps_total", {"status": status.value}
        )
        or 0.0
        for status in MatchStatus
    }


async def test_a_posted_need_is_proposed_and_only_the_parties_move_the_match(
    served, relay, settings, kafka_server, auth
):
    tag = uuid.uuid4().hex[:8]
    before = match_steps()
    provider, seeker = f"prov-{tag}", f"seek-{tag}"
    await produce(
        kafka_server.bootstrap,
        ORGANIZATION_TOPIC,
        [
            organization_event(provider, True, languages=("fr",)),
            organization_event(seeker, True, languages=("fr",)),
        ],
    )
    good = solution(
        f"sol-{tag}",
        "Village borehole repair committees",
        "village water committees collect small fees and repair boreholes and hand pumps",
        [6],
        provider,
        countries=("NER",),
        language="fr",
    )
    need_id = f"need-{tag}"
    async with running_worker(settings) as (_, store):
        await produce(
            kafka_server.bootstrap, SOLUTION_TOPIC, [solution_event(cat.SolutionPublished, good, 1)]
        )
        await eventually(
            lambda: (
                store.get_item(good.id)
                and store.organizations_by_id([provider, seeker]).get(provider)
            ),
            "solution and provider",
            40,
        )
        await eventually(lambda: len(store.organizations_by_id([seeker])) == 1, "seeker", 40)
        await produce(
            kafka_server.bootstrap,
            NEED_TOPIC,
            [
                need_event(
                    need_id,
                    "Broken boreholes",
                    "our village boreholes and hand pumps break and nobody repairs them",
                    [6],
                    seeker,
                )
            ],
        )
        doc = await eventually(
            lambda: store.matches.find_one({"need_id": need_id}), "a proposed match", 40
        )
        assert doc["solution_id"] == good.id and doc["provider_organization_id"] == provider
        match_id = doc["_id"]
        proposed = await read_topic(
            kafka_server.bootstrap, MATCH_TOPIC, lambda m: m.key == match_id.encode(), 1
        )
        env = parse_envelope(proposed[0].value)
        assert env.event_type == "recommendation.MatchProposed"
        payload = unpack_payload(env, ev.MatchProposed).match
        assert payload.score >= settings.proposal_threshold
        assert {"verified_provider", "sdg_overlap", "development_context"} <= {
            r.code for r in payload.reasons
        }

        # A solution published later is proposed to the open need too.
        later = solution(
            f"sol2-{tag}",
            "Hand pump mechanics",
            "trained mechanics repair village hand pumps and boreholes",
            [6],
            provider,
            countries=("MLI",),
            language="fr",
        )
        await produce(
            kafka_server.bootstrap,
            SOLUTION_TOPIC,
            [solution_event(cat.SolutionPublished, later, 1)],
        )
        await eventually(
            lambda: store.matches.find_one({"need_id": need_id, "solution_id": later.id}),
            "the later solution's proposal",
            40,
        )

    stub = served.stub
    stranger = auth("eve", Role.MEMBER, org=f"other-{tag}")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.AcceptMatch(pb.AcceptMatchRequest(id=match_id), metadata=stranger, timeout=10)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetMatch(pb.GetMatchRequest(id=match_id), metadata=stranger, timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND

    sam, pia = auth("sam", Role.MEMBER, org=seeker), auth("pia", Role.MEMBER, org=provider)
    m = (await stub.AcceptMatch(pb.AcceptMatchRequest(id=match_id), metadata=sam, timeout=10)).match
    assert m.status == match_pb2.MATCH_STATUS_SEEKER_ACCEPTED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.AcceptMatch(pb.AcceptMatchRequest(id=match_id), metadata=sam, timeout=10)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    m = (await stub.AcceptMatch(pb.AcceptMatchRequest(id=match_id), metadata=pia, timeout=10)).match
    assert m.status == match_pb2.MATCH_STATUS_ACCEPTED
    m = (
        await stub.AdvanceMatch(
            pb.AdvanceMatchRequest(id=match_id, status=match_pb2.MATCH_STATUS_AGREED, note="MoU"),
            metadata=pia,
            timeout=10,
        )
    ).match
    assert m.status == match_pb2.MATCH_STATUS_AGREED
    got = (await stub.GetMatch(pb.GetMatchRequest(id=match_id), metadata=sam, timeout=10)).match
    assert [s.status for s in got.history] == [1, 2, 4, 5]

    changes = await read_topic(
        kafka_server.bootstrap,
        MATCH_TOPIC,
        lambda msg: (
            msg.key == match_id.encode()
            and parse_envelope(msg.value).event_type.endswith("StatusChanged")
        ),
        3,
    )
    assert [parse_envelope(c.value).aggregate_version for c in changes] == [2, 3, 4]

    # The funnel counted each step once (the refused second acceptance not at all).
    steps = {status: n - before[status] for status, n in match_steps().items()}
    assert steps.pop("PROPOSED") >= 2
    assert steps == {
        "SEEKER_ACCEPTED": 1,
        "PROVIDER_ACCEPTED": 0,
        "ACCEPTED": 1,
        "AGREED": 1,
        "IMPLEMENTED": 0,
        "RESULTS_RECORDED": 0,
        "DECLINED": 0,
    }


async def test_use_by_organizations_of_your_region_is_explained(
    served, relay, settings, kafka_server, auth
):
    tag = uuid.uuid4().hex[:8]
    # Two member organizations working in Africa, one in Latin America.
    near_a, near_b, far = f"oa-{tag}", f"ob-{tag}", f"oc-{tag}"
    await produce(
        kafka_server.bootstrap,
        ORGANIZATION_TOPIC,
        [
            organization_event(near_a, True),
            organization_event(near_b, True),
            organization_event(far, True, regions=(geography_pb2.REGION_LATIN_AMERICA_CARIBBEAN,)),
        ],
    )
    items = [
        solution(f"r1-{tag}", "Drip kits", "drip irrigation kits for small farms", [2]),
        solution(f"r2-{tag}", "Seed fairs", "community seed fairs share seeds", [2]),
        solution(f"r3-{tag}", "School gardens", "gardens at schools feed pupils", [4]),
    ]
    async with running_worker(settings) as (_, store):
        await produce(
            kafka_server.bootstrap,
            SOLUTION_TOPIC,
            [solution_event(cat.SolutionPublished, s, 1) for s in items],
        )
        await eventually(
            lambda: (
                all(store.get_item(s.id) for s in items)
                and len(store.organizations_by_id([near_a, near_b, far])) == 3
            ),
            "items and organizations",
            40,
        )

        async def record(user: str, org: str, item_id: str) -> None:
            await served.stub.RecordInteraction(
                pb.RecordInteractionRequest(
                    interaction=interaction_pb2.Interaction(
                        item_id=item_id,
                        organization_id=org,
                        kind=interaction_pb2.INTERACTION_KIND_DOWNLOAD,
                    )
                ),
                metadata=auth(user, Role.MEMBER, org=org),
                timeout=10,
            )

        await record(f"ua-{tag}", near_a, items[2].id)
        await record(f"uc-{tag}", far, items[1].id)
        reader = f"ub-{tag}"
        await record(reader, near_b, items[0].id)
        me = auth(reader, Role.MEMBER, org=near_b)

        async def explained():
            reply = await served.stub.ExplainRecommendation(
                pb.ExplainRecommendationRequest(user_id=reader, item_id=items[2].id),
                metadata=me,
                timeout=10,
            )
            codes = {r.code for r in reply.recommendation.reasons}
            return "regional_use" in codes and reply

        found = await eventually(explained, "the regional reason", 40)
        reason = next(r for r in found.recommendation.reasons if r.code == "regional_use")
        assert reason.text == "organizations in your region (AFRICA) used it"
        assert reason.weight > 0
        # Use in another region says nothing about this reader's region.
        other = await served.stub.ExplainRecommendation(
            pb.ExplainRecommendationRequest(user_id=reader, item_id=items[1].id),
            metadata=me,
            timeout=10,
        )
        assert "regional_use" not in {r.code for r in other.recommendation.reasons}


async def test_matches_name_the_experts_behind_the_provider(served, settings, kafka_server, auth):
    tag = uuid.uuid4().hex[:8]
    provider = f"prov-{tag}"
    public, members, gone = f"ex1-{tag}", f"ex2-{tag}", f"ex3-{tag}"
    await produce(kafka_server.bootstrap, ORGANIZATION_TOPIC, [organization_event(provider, True)])
    await produce(
        kafka_server.bootstrap,
        EXPERT_TOPIC,
        [
            expert_event(
                public,
                provider,
                expertise=("borehole repair",),
                sdgs=(sdg_pb2.SDG_CLEAN_WATER_AND_SANITATION,),
            ),
            expert_event(
                members,
                provider,
                sdgs=(sdg_pb2.SDG_CLEAN_WATER_AND_SANITATION,),
                visibility=expert_pb2.EXPERT_VISIBILITY_MEMBERS_ONLY,
            ),
            expert_event(gone, provider, sdgs=(sdg_pb2.SDG_CLEAN_WATER_AND_SANITATION,)),
            expert_event(gone, provider, version=2, erased=True),
        ],
    )
    good = solution(
        f"sx-{tag}",
        "Borehole repair brigades",
        "brigades repair boreholes and hand pumps in villages",
        [6],
        provider,
    )
    async with running_worker(settings) as (_, store):
        await produce(
            kafka_server.bootstrap, SOLUTION_TOPIC, [solution_event(cat.SolutionPublished, good, 1)]
        )
        await eventually(
            lambda: (
                store.get_item(good.id)
                and store.experts.count_documents({"_id": {"$in": [public, members, gone]}}) == 3
                and store.experts.find_one({"_id": gone, "erased": True})
            ),
            "solution and experts",
            40,
        )
    need = pb.NeedDescription(
        title="Broken boreholes",
        problem_statement="we need borehole repair for our village hand pumps",
        sdgs=[sdg_pb2.SDG_CLEAN_WATER_AND_SANITATION],
    )

    async def experts_for(metadata) -> list:
        reply = await served.stub.MatchNeed(
            pb.MatchNeedRequest(need=need, page_size=5), metadata=metadata, timeout=10
        )
        found = next(m for m in reply.matches if m.solution_id == good.id)
        return list(found.experts)

    anonymous = await experts_for(())
    assert [e.expert_id for e in anonymous] == [public]
    reasons = {r.code for r in anonymous[0].reasons}
    assert {"expert_sdgs", "expertise"} <= reasons
    assert anonymous[0].score == pytest.approx(sum(r.weight for r in anonymous[0].reasons))
    signed_in = await experts_for(auth(f"reader-{tag}", Role.MEMBER, org=f"o-{tag}"))
    assert [e.expert_id for e in signed_in] == [public, members]
    # The erased profile keeps nothing personal.
    assert served.store.experts.find_one({"_id": gone})["name"] == ""
