"""Hybrid scoring, cold start, exclusions, freshness, diversity and explanations (no servers)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from ssg.recommendation.domain.decay import boosted, value_at
from ssg.recommendation.domain.diversity import mmr
from ssg.recommendation.domain.index import ItemIndex
from ssg.recommendation.domain.model import InteractionKind, ItemKind, Organization
from ssg.recommendation.domain.profile import (
    Profile,
    interaction_delta,
    stronger,
    user_key,
)
from ssg.recommendation.domain.regional import home_regions
from ssg.recommendation.domain.scoring import Filter, Recommender, Signals, Weights

from .world import ITEMS, NOW, WATER, item

HALF = timedelta(days=30)


def profile_of(*interactions: tuple[str, InteractionKind, int]) -> Profile:
    """A profile from (item id, kind, days ago) interactions, read at NOW."""
    by_id = {i.id: i for i in ITEMS}
    features: dict[str, float] = {}
    items: dict[str, float] = {}
    strongest: dict[str, InteractionKind] = {}
    for item_id, kind, days_ago in interactions:
        delta = interaction_delta(by_id[item_id], kind, NOW - timedelta(days=days_ago), HALF)
        for f, w in delta.features.items():
            features[f] = features.get(f, 0.0) + w
        items[item_id] = items.get(item_id, 0.0) + delta.item_weight
        strongest[item_id] = stronger(strongest.get(item_id), kind)
    seen = frozenset(i for i, _, _ in interactions)
    return Profile.read(user_key("u"), features, items, strongest, seen, NOW, HALF)


@pytest.fixture(scope="module")
def recommender() -> Recommender:
    return Recommender(ItemIndex(ITEMS))


def test_decayed_sums_halve_per_half_life_in_any_order():
    a = boosted(2.0, NOW - HALF, HALF)
    b = boosted(1.0, NOW, HALF)
    assert value_at(a, NOW, HALF) == pytest.approx(1.0)
    assert (
        value_at(a + b, NOW, HALF)
        == pytest.approx(value_at(b + a, NOW, HALF))
        == pytest.approx(2.0)
    )


def test_an_interaction_strengthens_every_feature_of_its_item():
    delta = interaction_delta(WATER[0], InteractionKind.SAVE, NOW, HALF)
    assert set(delta.features) == {
        "sdg:6",
        "sdg:7",
        "region:AFRICA",
        "country:KEN",
        "kind:SOLUTION",
    }
    view = interaction_delta(WATER[0], InteractionKind.VIEW, NOW, HALF)
    assert delta.item_weight == pytest.approx(3 * view.item_weight)


def test_recent_interests_outweigh_old_ones():
    profile = profile_of(("h1", InteractionKind.VIEW, 180), ("w1", InteractionKind.VIEW, 1))
    shares = profile.shares("sdg")
    assert shares["6"] > 10 * shares["3"]
    assert sum(shares.values()) == pytest.approx(1.0)


def test_unknown_profile_gets_popular_items_with_cold_start_reasons(recommender):
    signals = Signals(popularity={"e2": 50.0, "h2": 10.0})
    results = recommender.recommend(Profile(user_key("new")), signals, NOW, 3)
    assert results[0].item.id == "e2"
    assert {r.code for r in results[0].reasons} == {"popular", "fresh"}
    for r in results:
        assert r.score == pytest.approx(sum(x.weight for x in r.reasons))


def test_history_steers_towards_its_sdg_and_excludes_what_was_seen(recommender):
    profile = profile_of(("w1", InteractionKind.SAVE, 2), ("w2", InteractionKind.VIEW, 3))
    # Health is far more popular, yet the water interest wins.
    signals = Signals(popularity={"h1": 100.0, "h2": 80.0, "h3": 60.0})
    results = recommender.recommend(profile, signals, NOW, 3)
    ids = [r.item.id for r in results]
    assert ids[0] in {"w3", "w4"}
    assert not {"w1", "w2"} & set(ids)
    codes = {r.code for r in results[0].reasons}
    assert {"similar_to", "sdg_focus"} <= codes
    focus = next(r for r in results[0].reasons if r.code == "sdg_focus")
    assert focus.text.startswith("matches your SDG 6 focus")


def test_similar_to_names_the_item_and_how_it_was_used(recommender):
    profile = profile_of(("w1", InteractionKind.SAVE, 1))
    explained = recommender.explain(profile, Signals(), NOW, "w4")
    similar = next(r for r in explained.reasons if r.code == "similar_to")
    assert similar.text == "similar to 'Solar water pumps' you saved"
    assert similar.ref == "w1"


def test_co_interaction_lifts_what_others_used_alongside(recommender):
    profile = profile_of(("w1", InteractionKind.VIEW, 1))
    plain = recommender.explain(profile, Signals(), NOW, "e1")
    lifted = recommender.explain(profile, Signals(neighbours={"w1": {"e1": 0.9}}), NOW, "e1")
    assert lifted.score > plain.score
    co = next(r for r in lifted.reasons if r.code == "co_interaction")
    assert co.ref == "w1" and "Solar water pumps" in co.text


def test_neighbours_as_positions_score_and_explain_exactly_as_by_id(recommender):
    profile = profile_of(
        ("w1", InteractionKind.SAVE, 1),
        ("h1", InteractionKind.VIEW, 3),
        ("e2", InteractionKind.VIEW, 9),
    )
    # e1 is lifted by two sources, w1 more than h1; "gone" is not in the index.
    by_id = {"w1": {"e1": 0.9, "h2": 0.4, "gone": 1.0}, "h1": {"e1": 0.2, "w3": 0.7}, "e2": {}}
    index = recommender.index
    positions = Signals(neighbours=by_id).positioned(index)
    assert [index.items[int(p)].id for p in positions["w1"][0]] == ["e1", "h2"]
    assert list(positions["w1"][1]) == [0.9, 0.4]
    as_positions = Signals(neighbour_positions=positions)
    ranked = recommender.recommend(profile, Signals(neighbours=by_id), NOW, 10)
    assert recommender.recommend(profile, as_positions, NOW, 10) == ranked
    for item_id in ("e1", "h2", "w3"):
        explained = recommender.explain(profile, as_positions, NOW, item_id)
        assert explained == recommender.explain(profile, Signals(neighbours=by_id), NOW, item_id)
    co = next(
        r
        for r in recommender.explain(profile, as_positions, NOW, "e1").reasons
        if r.code == "co_interaction"
    )
    assert co.ref == "w1"


def test_fresher_items_win_when_all_else_is_equal():
    old = item("old", "Seed banks", "community seed banks", (2,), age_days=700)
    new = item("new", "Seed banks", "community seed banks", (2,), age_days=5)
    results = Recommender(ItemIndex([old, new])).recommend(Profile("user:x"), Signals(), NOW, 2)
    assert [r.item.id for r in results] == ["new", "old"]


def test_archived_items_are_not_recommended(recommender):
    index = ItemIndex([replace(i, active=i.id != "e2") for i in ITEMS])
    results = Recommender(index).recommend(
        Profile("user:x"), Signals(popularity={"e2": 9.0}), NOW, 20
    )
    assert "e2" not in [r.item.id for r in results]
    assert len(results) == len(ITEMS) - 1


def test_filters_restrict_sdgs_regions_and_kinds(recommender):
    profile = profile_of(("w1", InteractionKind.VIEW, 1))
    only_health = recommender.recommend(profile, Signals(), NOW, 10, Filter(sdgs=frozenset({3})))
    assert {r.item.id for r in only_health} == {"h1", "h2", "h3"}
    knowledge = recommender.recommend(
        profile, Signals(), NOW, 10, Filter(kinds=frozenset({ItemKind.KNOWLEDGE_PRODUCT}))
    )
    assert [r.item.id for r in knowledge] == ["w4"]
    latam = recommender.recommend(
        profile, Signals(), NOW, 10, Filter(regions=frozenset({"LATIN_AMERICA_CARIBBEAN"}))
    )
    assert {r.item.id for r in latam} == {"e1", "e2"}


def test_mmr_spreads_the_list_and_lambda_one_is_plain_ranking():
    relevance = [1.0, 0.95, 0.9, 0.5]
    # 0, 1 and 2 are near-duplicates; 3 is different.
    sim = lambda a, b: 1.0 if {a, b} <= {0, 1, 2} else 0.0  # noqa: E731
    assert mmr(relevance, sim, 2, lam=1.0) == [0, 1]
    assert mmr(relevance, sim, 2, lam=0.5) == [0, 3]
    with pytest.raises(ValueError):
        mmr(relevance, sim, 2, lam=1.5)


def test_recommendations_mix_sdgs_when_interests_are_mixed(recommender):
    profile = profile_of(("w1", InteractionKind.VIEW, 1), ("h1", InteractionKind.VIEW, 1))
    top = recommender.recommend(profile, Signals(), NOW, 3)
    sdgs = {g for r in top for g in r.item.sdgs}
    assert 3 in sdgs and 6 in sdgs


def test_explain_gives_the_score_recommend_gave(recommender):
    profile = profile_of(("w1", InteractionKind.SAVE, 1))
    signals = Signals(popularity={"w3": 4.0}, neighbours={"w1": {"w3": 0.5}})
    ranked = {r.item.id: r for r in recommender.recommend(profile, signals, NOW, 20)}
    explained = recommender.explain(profile, signals, NOW, "w3")
    assert explained.score == pytest.approx(ranked["w3"].score)
    assert explained.reasons == ranked["w3"].reasons
    with pytest.raises(KeyError):
        recommender.explain(profile, signals, NOW, "missing")


def test_similar_items_are_alike_in_text_and_sdgs(recommender):
    similar = recommender.similar("w1", 3)
    ids = [s.item.id for s in similar]
    assert "w1" not in ids
    assert ids[0] in {"w2", "w4"}
    assert all(6 in s.item.sdgs for s in similar[:2])
    assert {r.code for r in similar[0].reasons} <= {"text_similarity", "shared_sdgs"}


def test_empty_index_recommends_nothing():
    assert Recommender(ItemIndex([])).recommend(Profile("user:x"), Signals(), NOW, 5) == []


def test_use_by_organizations_of_your_region_is_a_reason_with_its_weight(recommender):
    profile = profile_of(("w1", InteractionKind.VIEW, 1))
    index = recommender.index
    regional = {"AFRICA": index.aligned({"e1": 5.0, "w3": 1.0})}
    plain = recommender.explain(profile, Signals(), NOW, "e1")
    lifted = recommender.explain(profile, Signals(regional=regional), NOW, "e1")
    assert lifted.score > plain.score
    reason = next(r for r in lifted.reasons if r.code == "regional_use")
    assert reason.text == "organizations in your region (AFRICA) used it"
    assert reason.ref == "AFRICA"
    # e1 is the region's most used item: the whole regional weight.
    assert reason.weight == pytest.approx(Weights().regional)
    assert lifted.score == pytest.approx(sum(r.weight for r in lifted.reasons))


def test_a_known_region_takes_its_weight_from_platform_wide_popularity(recommender):
    profile = profile_of(("w1", InteractionKind.VIEW, 1))
    popular = {"e1": 8.0}
    without = recommender.explain(profile, Signals(popularity=popular), NOW, "e1")
    nobody = {"AFRICA": recommender.index.aligned({"w3": 1.0})}
    with_region = recommender.explain(
        profile, Signals(popularity=popular, regional=nobody), NOW, "e1"
    )
    weight = {r.code: r.weight for r in without.reasons}["popular"]
    split = {r.code: r.weight for r in with_region.reasons}
    assert weight == pytest.approx(Weights().popular)
    assert split["popular"] == pytest.approx(Weights().popular - Weights().regional)
    assert "regional_use" not in split  # nobody of the region used e1


def test_regional_use_reorders_recommendations(recommender):
    profile = profile_of(("h1", InteractionKind.VIEW, 1))
    regional = {"LATIN_AMERICA_CARIBBEAN": recommender.index.aligned({"e2": 20.0})}
    before = [r.item.id for r in recommender.recommend(profile, Signals(), NOW, 10)]
    after = recommender.recommend(profile, Signals(regional=regional), NOW, 10)
    ids = [r.item.id for r in after]
    assert ids.index("e2") < before.index("e2")
    top = next(r for r in after if r.item.id == "e2")
    assert any(
        x.code == "regional_use" and "LATIN_AMERICA_CARIBBEAN" in x.text for x in top.reasons
    )


def test_home_regions_fall_back_to_the_headquarters_country():
    assert home_regions(Organization("o", regions=("ASIA_PACIFIC",), country="KEN")) == (
        "ASIA_PACIFIC",
    )
    assert home_regions(Organization("o", country="KEN")) == ("AFRICA",)
    assert home_regions(Organization("o", country="PER")) == ("LATIN_AMERICA_CARIBBEAN",)
    assert home_regions(Organization("o")) == ()
    assert home_regions(None) == ()
