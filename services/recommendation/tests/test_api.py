"""Through real gRPC on a real MongoDB: cold start for unknown people, recommendations shaped by
stored behaviour, similar items, explanations, MatchNeed, and INVALID_ARGUMENT / PERMISSION_DENIED
/ NOT_FOUND for bad calls. Items are stored as the worker stores them (catalog messages)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from ssg.contracts.common.v1 import sdg_pb2
from ssg.contracts.recommendation.v1 import interaction_pb2
from ssg.contracts.recommendation.v1 import recommendation_service_pb2 as pb
from ssg.platform.auth.tokens import Role
from ssg.recommendation.domain.model import InteractionKind, Organization
from ssg.recommendation.events.catalog import solution_item
from ssg.recommendation.store.mongo import InteractionFacts

from .builders import solution

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def catalog(served):
    """Six solutions on three SDGs, one provider verified; ids by topic."""
    store = served.store
    ids = {}
    rows = [
        (
            "water1",
            "Solar water pumps",
            "solar pumps bring irrigation water to smallholder farmers",
            [6, 7],
        ),
        (
            "water2",
            "Rainwater harvesting tanks",
            "villages store rainwater in tanks for dry season water",
            [6],
        ),
        (
            "water3",
            "Borehole repair committees",
            "village water committees repair boreholes and hand pumps",
            [6],
        ),
        (
            "health1",
            "Community health workers",
            "health workers visit mothers and newborns at home",
            [3],
        ),
        (
            "health2",
            "Mobile vaccine clinics",
            "mobile clinics bring vaccines to remote districts",
            [3],
        ),
        (
            "school1",
            "Radio schooling",
            "radio lessons keep children learning when schools close",
            [4],
        ),
    ]
    for key, title, text, sdgs in rows:
        item_id = f"{key}-{uuid.uuid4().hex[:8]}"
        ids[key] = item_id
        store.apply_item(solution_item(solution(item_id, title, text, sdgs), 1))
    store.apply_organization(
        Organization("o-prov", "Sahel Water", verified=True, regions=("AFRICA",), version=2)
    )
    return ids


def rich_violations(exc: grpc.aio.AioRpcError) -> dict[str, str]:
    """field -> description of the BadRequest detail of an INVALID_ARGUMENT error."""
    for key, value in exc.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                bad = error_details_pb2.BadRequest()
                if detail.Unpack(bad):
                    return {v.field: v.description for v in bad.field_violations}
    return {}


async def call_error(coro) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await coro
    return err.value


async def test_an_unknown_person_gets_cold_start_results(served, catalog, auth):
    served.store.record_interaction(
        InteractionFacts(
            "someone", "", catalog["health2"], InteractionKind.VIEW, datetime.now(UTC)
        ),
        served.store.get_item(catalog["health2"]),
    )
    reply = await served.stub.Recommend(
        pb.RecommendRequest(user_id="newcomer", page_size=3), metadata=auth("newcomer"), timeout=10
    )
    assert reply.cold_start
    assert len(reply.recommendations) == 3
    top = reply.recommendations[0]
    assert top.item_id == catalog["health2"]
    assert {r.code for r in top.reasons} == {"popular", "fresh"}
    assert top.score == pytest.approx(sum(r.weight for r in top.reasons))


async def test_stored_behaviour_shapes_recommendations_and_explanations(served, catalog, auth):
    user = f"u-{uuid.uuid4().hex[:6]}"
    now = datetime.now(UTC)
    for key, kind in (("water1", InteractionKind.SAVE), ("water2", InteractionKind.VIEW)):
        served.store.record_interaction(
            InteractionFacts(user, "", catalog[key], kind, now), served.store.get_item(catalog[key])
        )
    reply = await served.stub.Recommend(
        pb.RecommendRequest(user_id=user, page_size=3), metadata=auth(user), timeout=10
    )
    assert not reply.cold_start
    ids = [r.item_id for r in reply.recommendations]
    assert ids[0] == catalog["water3"]
    assert catalog["water1"] not in ids and catalog["water2"] not in ids
    reasons = {r.code: r for r in reply.recommendations[0].reasons}
    assert reasons["sdg_focus"].text.startswith("matches your SDG 6 focus")

    explained = await served.stub.ExplainRecommendation(
        pb.ExplainRecommendationRequest(user_id=user, item_id=catalog["water3"]),
        metadata=auth(user),
        timeout=10,
    )
    assert explained.recommendation.score == pytest.approx(reply.recommendations[0].score)
    similar = next(r for r in explained.recommendation.reasons if r.code == "similar_to")
    assert similar.ref in {catalog["water1"], catalog["water2"]}

    only_health = await served.stub.Recommend(
        pb.RecommendRequest(
            user_id=user,
            page_size=5,
            filter=pb.ItemFilter(sdgs=[sdg_pb2.SDG_GOOD_HEALTH_AND_WELL_BEING]),
        ),
        metadata=auth(user),
        timeout=10,
    )
    assert {r.item_id for r in only_health.recommendations} == {
        catalog["health1"],
        catalog["health2"],
    }


async def test_similar_items_and_match_need(served, catalog):
    similar = await served.stub.SimilarItems(
        pb.SimilarItemsRequest(item_id=catalog["water3"], page_size=2), timeout=10
    )
    assert similar.items[0].item_id in {catalog["water1"], catalog["water2"]}

    reply = await served.stub.MatchNeed(
        pb.MatchNeedRequest(
            need=pb.NeedDescription(
                title="Broken hand pumps",
                problem_statement="our village boreholes and hand pumps break; we need repair committees",
                sdgs=[sdg_pb2.SDG_CLEAN_WATER_AND_SANITATION],
                country="TCD",
            ),
            page_size=3,
        ),
        timeout=10,
    )
    best = reply.matches[0]
    assert best.solution_id == catalog["water3"]
    assert best.provider_verified and best.provider_name == "Sahel Water"
    assert {"text_similarity", "sdg_overlap", "verified_provider"} <= {r.code for r in best.reasons}


async def test_bad_inputs_are_invalid_argument_naming_the_field(served, catalog, auth):
    stub, me = served.stub, auth("me")
    cases = [
        (stub.Recommend(pb.RecommendRequest(page_size=3), metadata=me, timeout=10), "user_id"),
        (
            stub.Recommend(
                pb.RecommendRequest(user_id="me", page_size=1000), metadata=me, timeout=10
            ),
            "page_size",
        ),
        (
            stub.Recommend(
                pb.RecommendRequest(
                    user_id="me",
                    filter=pb.ItemFilter(kinds=[interaction_pb2.ITEM_KIND_UNSPECIFIED]),
                ),
                metadata=me,
                timeout=10,
            ),
            "filter.kinds[0]",
        ),
        (stub.SimilarItems(pb.SimilarItemsRequest(item_id="not an id!"), timeout=10), "item_id"),
        (
            stub.RecordInteraction(
                pb.RecordInteractionRequest(
                    interaction=interaction_pb2.Interaction(item_id=catalog["water1"])
                ),
                metadata=me,
                timeout=10,
            ),
            "interaction.kind",
        ),
        (stub.MatchNeed(pb.MatchNeedRequest(page_size=3), timeout=10), "need_id"),
        (
            stub.MatchNeed(
                pb.MatchNeedRequest(
                    need=pb.NeedDescription(title="x", problem_statement="y", country="XX")
                ),
                timeout=10,
            ),
            "need.country",
        ),
        (stub.DeclineMatch(pb.DeclineMatchRequest(id=""), metadata=me, timeout=10), "id"),
    ]
    for call, field in cases:
        exc = await call_error(call)
        assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert field in rich_violations(exc), (field, rich_violations(exc))


async def test_personal_data_is_the_owners_and_unknown_items_are_not_found(served, catalog, auth):
    stub = served.stub
    exc = await call_error(
        stub.Recommend(pb.RecommendRequest(user_id="alice"), metadata=auth("bob"), timeout=10)
    )
    assert exc.code() == grpc.StatusCode.PERMISSION_DENIED
    exc = await call_error(stub.Recommend(pb.RecommendRequest(user_id="alice"), timeout=10))
    assert exc.code() == grpc.StatusCode.UNAUTHENTICATED
    # An operator may look at anyone's; an organization's members at their organization's.
    await stub.Recommend(
        pb.RecommendRequest(user_id="alice"), metadata=auth("op", Role.OPERATOR), timeout=10
    )
    await stub.Recommend(
        pb.RecommendRequest(organization_id="o-1"),
        metadata=auth("m", Role.MEMBER, org="o-1"),
        timeout=10,
    )
    exc = await call_error(
        stub.RecordInteraction(
            pb.RecordInteractionRequest(
                interaction=interaction_pb2.Interaction(
                    user_id="alice",
                    item_id=catalog["water1"],
                    kind=interaction_pb2.INTERACTION_KIND_VIEW,
                )
            ),
            metadata=auth("bob"),
            timeout=10,
        )
    )
    assert exc.code() == grpc.StatusCode.PERMISSION_DENIED
    exc = await call_error(
        stub.RecordInteraction(
            pb.RecordInteractionRequest(
                interaction=interaction_pb2.Interaction(
                    item_id="missing", kind=interaction_pb2.INTERACTION_KIND_VIEW
                )
            ),
            metadata=auth("bob"),
            timeout=10,
        )
    )
    assert exc.code() == grpc.StatusCode.NOT_FOUND
    exc = await call_error(stub.SimilarItems(pb.SimilarItemsRequest(item_id="missing"), timeout=10))
    assert exc.code() == grpc.StatusCode.NOT_FOUND
    exc = await call_error(
        stub.GetMatch(pb.GetMatchRequest(id="missing"), metadata=auth("bob"), timeout=10)
    )
    assert exc.code() == grpc.StatusCode.NOT_FOUND


async def test_record_interaction_writes_its_event_to_the_outbox(served, catalog, auth):
    reply = await served.stub.RecordInteraction(
        pb.RecordInteractionRequest(
            interaction=interaction_pb2.Interaction(
                item_id=catalog["school1"], kind=interaction_pb2.INTERACTION_KIND_SHARE
            )
        ),
        metadata=auth("carla", Role.MEMBER, org="o-9"),
        timeout=10,
    )
    recorded = reply.interaction
    assert recorded.user_id == "carla" and recorded.organization_id == "o-9" and recorded.id
    row = served.store.db["outbox"].find_one({"key": "carla"})
    assert row is not None and row["topic"] == "activity.interaction-events.v1"
    assert row["event_type"] == "recommendation.InteractionRecorded"


async def test_suggest_sdgs_learns_from_the_catalog(served, catalog):
    reply = await served.stub.SuggestSdgs(
        pb.SuggestSdgsRequest(
            text="village boreholes and hand pumps need repair committees", max_suggestions=2
        ),
        timeout=30,
    )
    assert reply.suggestions[0].sdg == sdg_pb2.SDG_CLEAN_WATER_AND_SANITATION
    assert 0 < reply.suggestions[0].confidence <= 1
    for text, limit, field in (("", 1, "text"), ("water", 18, "max_suggestions")):
        exc = await call_error(
            served.stub.SuggestSdgs(
                pb.SuggestSdgsRequest(text=text, max_suggestions=limit), timeout=10
            )
        )
        assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in rich_violations(exc)


async def test_an_organization_learns_from_its_members(served, catalog, auth):
    org = f"org-{uuid.uuid4().hex[:6]}"
    served.store.record_interaction(
        InteractionFacts(
            "member-1", org, catalog["water1"], InteractionKind.DOWNLOAD, datetime.now(UTC)
        ),
        served.store.get_item(catalog["water1"]),
    )
    reply = await served.stub.Recommend(
        pb.RecommendRequest(organization_id=org, page_size=3),
        metadata=auth("member-2", Role.MEMBER, org=org),
        timeout=10,
    )
    assert not reply.cold_start
    ids = [r.item_id for r in reply.recommendations]
    assert catalog["water1"] not in ids
    assert ids[0] in {catalog["water2"], catalog["water3"]}
    assert "sdg_focus" in {r.code for r in reply.recommendations[0].reasons}


def test_neighbour_counts_are_cached_until_their_time_is_up(served):
    from ssg.recommendation.neighbours import NeighbourCache

    tag = uuid.uuid4().hex[:8]
    a, b, c, d = (f"n{x}-{tag}" for x in "abcd")
    store = served.store
    store.co_items.insert_one({"_id": a, "n": {b: 2}})
    now = [100.0]
    cache = NeighbourCache(store, ttl_seconds=30, max_items=2, clock=lambda: now[0])
    assert cache.counts([a, c]) == {a: {b: 2}}
    store.co_items.update_one({"_id": a}, {"$inc": {f"n.{b}": 1, f"n.{c}": 1}})
    store.co_items.insert_one({"_id": c, "n": {a: 1}})
    assert cache.counts([a, c]) == {a: {b: 2}}  # both still fresh
    now[0] += 31
    assert cache.counts([a, c]) == {a: {b: 3, c: 1}, c: {a: 1}}
    store.co_items.update_one({"_id": a}, {"$inc": {f"n.{b}": 1}})
    store.co_items.update_one({"_id": c}, {"$inc": {f"n.{a}": 1}})
    now[0] += 1
    # At most max_items are kept: reading d evicts a, the least recently used.
    assert cache.counts([d]) == {}
    assert cache.counts([c]) == {c: {a: 1}}  # fresh and kept
    assert cache.counts([a]) == {a: {b: 4, c: 1}}  # evicted, so read again


def test_neighbours_in_index_positions_are_the_stores_cosines(served):
    from ssg.recommendation.domain.index import ItemIndex
    from ssg.recommendation.neighbours import NeighbourCache
    from ssg.recommendation.store.mongo import cosines

    from .world import ITEMS

    tag = uuid.uuid4().hex[:8]
    source = f"src-{tag}"
    store = served.store
    store.co_items.insert_one({"_id": source, "n": {"w1": 3, "h1": 1, f"gone-{tag}": 5}})
    index = ItemIndex(ITEMS)
    people = {source: 4, "w1": 9, "h1": 2}
    by_position = index.aligned(people)
    cache = NeighbourCache(store, ttl_seconds=30)
    found = cache.positioned([source], index, people, by_position)
    positions, values = found[source]
    expected = cosines(store.neighbour_counts([source]), people)[source]
    assert {index.items[int(p)].id: v for p, v in zip(positions, values, strict=True)} == {
        "w1": expected["w1"],
        "h1": expected["h1"],
    }
    # Kept while the index and people are the same objects, made again for new people.
    assert cache.positioned([source], index, people, by_position)[source][1] is values
    more = {**people, "w1": 16}
    again = cache.positioned([source], index, more, index.aligned(more))[source]
    assert again[1] is not values and again[1][list(again[0]).index(index.position["w1"])] == (
        3 / (4 * 16) ** 0.5
    )


async def test_the_workers_stored_list_is_served_while_it_is_current(served, catalog, auth):
    from datetime import timedelta

    from ssg.recommendation.domain.scoring import Filter

    user = f"s-{uuid.uuid4().hex[:6]}"
    key = f"user:{user}"
    store, lists = served.store, served.app.service.lists
    now = datetime.now(UTC)
    store.record_interaction(
        InteractionFacts(user, "", catalog["water1"], InteractionKind.SAVE, now),
        store.get_item(catalog["water1"]),
    )
    assert lists.backfill([key, "user:nobody-yet"]) == 1  # a cold profile gets no list
    assert store.stored_recommendations("user:nobody-yet") is None
    stored = store.stored_recommendations(key)
    assert stored is not None
    inline, cold = lists.compute(key, "", datetime.now(UTC), 10, Filter())
    assert not cold
    assert [s.item.id for s in inline] == [e[0] for e in stored.entries]
    assert [[r.code for r in s.reasons] for s in inline] == [
        [r.code for r in stored.reasons(n)] for n in range(len(stored.entries))
    ]
    assert catalog["water1"] not in {e[0] for e in stored.entries}

    async def first_score(**request) -> float:
        await served.settle()
        reply = await served.stub.Recommend(
            pb.RecommendRequest(user_id=user, **request), metadata=auth(user), timeout=10
        )
        assert not reply.cold_start
        return reply.recommendations[0].score

    # A recognisable score in the stored list tells which path answered.
    store.recommendations.update_one({"_id": key}, {"$set": {"items.0.score": 0.123}})
    assert await first_score(page_size=3) == pytest.approx(0.123)
    assert await first_score(page_size=11) != pytest.approx(0.123)
    water = pb.ItemFilter(sdgs=[sdg_pb2.SDG_CLEAN_WATER_AND_SANITATION])
    assert await first_score(page_size=3, filter=water) != pytest.approx(0.123)
    tolerance = int(settings_tolerance(served) * 1e9)
    changes = (
        {"$inc": {"marker": -tolerance - 1}},  # the items changed too long after it
        {"$set": {"computed_at": now - timedelta(days=1)}},  # too old
        {"$set": {"items.0.id": f"gone-{user}"}},  # an item no longer in the catalog
    )
    for change in changes:
        store.recommendations.update_one({"_id": key}, change)
        assert await first_score(page_size=3) != pytest.approx(0.123), change
        lists.refresh([(key, "")])
        store.recommendations.update_one({"_id": key}, {"$set": {"items.0.score": 0.123}})
        assert await first_score(page_size=3) == pytest.approx(0.123)


def settings_tolerance(served) -> float:
    return served.app.settings.stored_list_tolerance_seconds


async def test_a_list_changed_in_the_store_is_served_from_memory(
    served, catalog, auth, monkeypatch
):
    user = f"m-{uuid.uuid4().hex[:6]}"
    key = f"user:{user}"
    store, lists, held = served.store, served.app.service.lists, served.app.held
    assert held is not None
    store.record_interaction(
        InteractionFacts(user, "", catalog["water1"], InteractionKind.SAVE, datetime.now(UTC)),
        store.get_item(catalog["water1"]),
    )
    lists.refresh([(key, "")])
    store.recommendations.update_one({"_id": key}, {"$set": {"items.0.score": 0.456}})
    await served.settle()
    known, copy = held.lookup(key, served.app.settings.stored_lists_max_lag_seconds)
    assert known and copy is not None and copy.entries[0][1] == pytest.approx(0.456)

    def no_read(key: str) -> None:
        raise AssertionError(f"the stored list of {key} was read from MongoDB")

    # A current copy answers without any read of the collection.
    monkeypatch.setattr(store, "stored_recommendations", no_read)
    reply = await served.stub.Recommend(
        pb.RecommendRequest(user_id=user, page_size=3), metadata=auth(user), timeout=10
    )
    assert not reply.cold_start and reply.recommendations[0].score == pytest.approx(0.456)
    # A dropped list (the worker could not compute it) is computed, not served from memory.
    store.drop_recommendations(key)
    await served.settle()
    assert held.lookup(key, 10) == (True, None)
    reply = await served.stub.Recommend(
        pb.RecommendRequest(user_id=user, page_size=3), metadata=auth(user), timeout=10
    )
    assert not reply.cold_start and reply.recommendations[0].score != pytest.approx(0.456)


async def test_a_held_list_is_answered_without_blocking_once_a_snapshot_exists(served, catalog):
    from ssg.recommendation.personal import PersonalLists
    from ssg.recommendation.snapshot import SnapshotCache

    user = f"h-{uuid.uuid4().hex[:6]}"
    key = f"user:{user}"
    store = served.store
    store.record_interaction(
        InteractionFacts(user, "", catalog["health1"], InteractionKind.SAVE, datetime.now(UTC)),
        store.get_item(catalog["health1"]),
    )
    served.app.service.lists.refresh([(key, "")])
    await served.settle()
    # The API's own settings reload in line (refresh 0), so a cache that reloads in the
    # background, as in production, is built here on the same store and held lists.
    lists = PersonalLists(
        store, SnapshotCache(store, 60.0), served.app.service.neighbours, held=served.app.held
    )
    now = datetime.now(UTC)
    assert lists.held_list(key, 3, now) is None  # no snapshot yet: it would load in line
    lists.cache.current()
    held = lists.held_list(key, 3, now)
    assert held is not None
    assert [s.item.id for s in held] == [s.item.id for s in lists.served(key, 3, now) or []]
    assert lists.held_list(key, 11, now) is None  # more than a stored list holds
    assert lists.held_list("user:nobody", 3, now) is None  # no list: computed
