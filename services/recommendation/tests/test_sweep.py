"""The worker's sweep of stored lists on a real MongoDB (ADR 0054): after an items change it
rewrites the lists left behind with the new marker so Recommend serves them again, one sweeper
runs at a time (the lease), and a list the interaction path stored after the sweep read it is
kept."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from ssg.contracts.recommendation.v1 import recommendation_service_pb2 as pb
from ssg.recommendation.domain.model import InteractionKind
from ssg.recommendation.events.catalog import solution_item
from ssg.recommendation.sweep import ListSweep
from ssg.recommendation.worker import build_sweep

from .builders import solution

pytestmark = pytest.mark.timeout(120)

ROWS = [
    ("water1", "Solar water pumps", "solar pumps bring irrigation water to farmers", [6, 7]),
    ("water2", "Rainwater harvesting tanks", "villages store rainwater in tanks", [6]),
    ("water3", "Borehole repair committees", "water committees repair boreholes", [6]),
    ("health1", "Community health workers", "health workers visit mothers at home", [3]),
    ("school1", "Radio schooling", "radio lessons keep children learning", [4]),
]


@pytest.fixture(scope="module")
def catalog(served):
    """Five solutions; ids by topic."""
    ids = {}
    for key, title, text, sdgs in ROWS:
        ids[key] = f"{key}-{uuid.uuid4().hex[:8]}"
        served.store.apply_item(solution_item(solution(ids[key], title, text, sdgs), 1))
    return ids


def person_with_list(served, catalog, item: str = "water1") -> str:
    """A new person who saved one item, with a stored list; their profile key."""
    from ssg.recommendation.store.mongo import InteractionFacts

    user = f"s-{uuid.uuid4().hex[:6]}"
    store = served.store
    store.record_interaction(
        InteractionFacts(user, "", catalog[item], InteractionKind.SAVE, datetime.now(UTC)),
        store.get_item(catalog[item]),
    )
    served.app.service.lists.refresh([(f"user:{user}", "")])
    return f"user:{user}"


def left_behind(served, key: str) -> None:
    """Make a stored list look computed long before the current items' marker, with a
    recognisable first score (0.123) that tells which path answers Recommend."""
    tolerance = int(served.app.settings.stored_list_tolerance_seconds * 1e9)
    served.store.recommendations.update_one(
        {"_id": key}, {"$inc": {"marker": -tolerance - 1}, "$set": {"items.0.score": 0.123}}
    )


def sweeper(served, holder: str, **overrides) -> ListSweep:
    """A sweep on the API's lists (any PersonalLists on the store will do) under its own
    holder name; none behind-lag so every list behind the marker is swept."""
    settings = served.app.settings.model_copy(
        update={"list_sweep_behind_seconds": 0.0, **overrides}
    )
    return build_sweep(settings, served.app.service.lists, holder)


async def first_score(served, auth, key: str) -> float:
    user = key.removeprefix("user:")
    await served.settle()
    reply = await served.stub.Recommend(
        pb.RecommendRequest(user_id=user, page_size=3), metadata=auth(user), timeout=10
    )
    assert not reply.cold_start
    return reply.recommendations[0].score


async def test_the_sweep_rewrites_lists_behind_an_items_change_so_they_are_served(
    served, catalog, auth
):
    store = served.store
    keys = [person_with_list(served, catalog, item) for item in ("water1", "health1", "school1")]
    # The items change: a new solution moves the marker past every stored list.
    new_item = f"water4-{uuid.uuid4().hex[:8]}"
    store.apply_item(
        solution_item(solution(new_item, "Water kiosks", "kiosks sell clean water", [6]), 1)
    )
    for key in keys:
        left_behind(served, key)
        assert await first_score(served, auth, key) != pytest.approx(0.123)  # computed
    marker = served.app.service.lists.cache.current().marker
    assert marker == store.items_marker()
    behind = store.count_stale_recommendations(marker)
    assert behind >= len(keys)

    done = await sweeper(served, "a", list_sweep_batch=2).one_round(asyncio.Event())
    assert done.held and done.rewritten == behind and done.batches >= 2
    assert store.count_stale_recommendations(marker) == 0
    for key in keys:
        stored = store.stored_recommendations(key)
        assert stored is not None and stored.marker == marker
        # Recomputed: the recognisable score is gone, and the new item can be recommended.
        assert stored.entries[0][1] != pytest.approx(0.123)
        store.recommendations.update_one({"_id": key}, {"$set": {"items.0.score": 0.321}})
        assert await first_score(served, auth, key) == pytest.approx(0.321)  # served
    water_lists = store.stored_recommendations(keys[0])
    assert water_lists is not None and new_item in {e[0] for e in water_lists.entries}
    # Nothing behind any more: the next round finds nothing.
    again = await sweeper(served, "a").one_round(asyncio.Event())
    assert again.held and again.found == 0 and again.rewritten == 0


async def test_two_sweepers_do_not_run_at_once(served, catalog):
    store = served.store
    keys = [person_with_list(served, catalog) for _ in range(3)]
    for key in keys:
        left_behind(served, key)
    # Batches of one with a pause: the first round holds the lease for a while.
    a = sweeper(served, "a", list_sweep_batch=1, list_sweep_pause_seconds=0.3)
    b = sweeper(served, "b", list_sweep_batch=1, list_sweep_pause_seconds=0.3)
    stop = asyncio.Event()
    first = asyncio.create_task(a.one_round(stop))
    await asyncio.sleep(0.1)
    second = await b.one_round(stop)
    assert not second.held and second.rewritten == 0
    done = await first
    assert done.held and done.rewritten >= len(keys) and done.batches >= len(keys)
    # Released at the end of the round: the other replica takes the next one.
    left_behind(served, keys[0])
    later = await b.one_round(stop)
    assert later.held and later.rewritten == 1
    stored = store.stored_recommendations(keys[0])
    assert stored is not None and stored.marker == served.app.service.lists.cache.current().marker


async def test_a_list_the_interaction_path_wrote_after_the_sweep_read_it_is_kept(served, catalog):
    from ssg.recommendation.store.mongo import InteractionFacts

    store, lists = served.store, served.app.service.lists
    kept, swept = person_with_list(served, catalog), person_with_list(served, catalog)
    for key in (kept, swept):
        left_behind(served, key)
    sweep = sweeper(served, "c")
    stale = [
        s for s in store.stale_recommendations(sweep.threshold(), 1000) if s.key in {kept, swept}
    ]
    assert {s.key for s in stale} == {kept, swept}
    # Meanwhile the person interacts: the worker's transaction stores their newer list.
    user = kept.removeprefix("user:")
    store.record_interaction(
        InteractionFacts(user, "", catalog["health1"], InteractionKind.SAVE, datetime.now(UTC)),
        store.get_item(catalog["health1"]),
    )
    lists.refresh([(kept, "")])
    newer = store.recommendations.find_one({"_id": kept})
    assert newer is not None
    assert lists.recompute(stale) == 1  # only the untouched list
    assert store.recommendations.find_one({"_id": kept}) == newer
    rewritten = store.stored_recommendations(swept)
    assert rewritten is not None and rewritten.entries[0][1] != pytest.approx(0.123)
    assert rewritten.marker == lists.cache.current().marker


def test_the_worker_runs_the_sweep_beside_its_consumer_unless_disabled(served):
    from ssg.recommendation.worker import build_worker

    settings = served.app.settings
    parts = build_worker(settings, served.store)
    assert len(parts.consumers) == 1 and len(parts.tasks) == 1
    off = settings.model_copy(update={"list_sweep_interval_seconds": 0.0})
    assert build_worker(off, served.store).tasks == []
