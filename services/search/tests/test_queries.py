"""Query bodies and pages built from search requests (no servers)."""

from __future__ import annotations

import json

import pytest

from ssg.contracts.search.v1 import search_service_pb2 as pb
from ssg.platform.errors import ValidationError, Violations
from ssg.platform.paging import PageCodec
from ssg.search.api.convert import fingerprint, search_query
from ssg.search.domain import requests as checks
from ssg.search.domain.documents import EntityType
from ssg.search.domain.queries import (
    MAX_TIED_IDS,
    MOST_WORDS,
    TEXT_FIELDS,
    Cursor,
    Filters,
    Ranking,
    SearchQuery,
    Sort,
    broadened,
    facet_aggregations,
    next_cursor,
    search_body,
    text_query,
)
from ssg.search.domain.similar import similar_body
from ssg.search.domain.suggest import suggest_body, suggestions

RANKING = Ranking(
    verified_boost=2.5,
    sdg_match_boost=1.7,
    freshness_scale_days=90,
    freshness_decay=0.4,
    freshness_weight=0.2,
)


def test_user_text_only_reaches_opensearch_as_multi_match_text():
    text = 'solar) AND title:"x" OR *:*'
    for broad in (False, True):
        body = json.dumps(search_body(SearchQuery(text=text, broad=broad), RANKING))
        assert "query_string" not in body and "simple_query_string" not in body
        # The phrase (and the broad best_fields) carry the whole text; the strict query each
        # word, always as a multi_match query's text.
        assert body.count(json.dumps(" ".join(text.split()))) == (2 if broad else 1)
    strict = text_query(text)["bool"]["should"][0]["bool"]["should"]
    assert [c["multi_match"]["query"] for c in strict] == [
        "solar)",
        "and",
        'title:"x"',
        "or",
    ]
    # Punctuation alone is not a word to require: only the phrase is left.
    only = text_query("*:* -")["bool"]["should"]
    assert [c["multi_match"]["type"] for c in only] == ["phrase"]


def test_most_words_must_match_each_in_any_field_and_language():
    q = text_query("Solar  pumps for the THE villages")
    matched, phrase = q["bool"]["should"]
    assert q["bool"]["minimum_should_match"] == 1
    words = matched["bool"]["should"]
    # One clause per distinct word (case folded): a repeated word is not counted twice.
    assert [w["multi_match"]["query"] for w in words] == [
        "solar",
        "pumps",
        "for",
        "the",
        "villages",
    ]
    assert matched["bool"]["minimum_should_match"] == MOST_WORDS == "2<75%"
    for w in words:
        mm = w["multi_match"]
        assert mm["fields"] == list(TEXT_FIELDS)  # title, tags, body; folded, en, fr, es
        assert mm["fuzziness"] == "AUTO" and mm["prefix_length"] == 1
        assert mm["tie_breaker"] == 1.0
    assert phrase["multi_match"]["type"] == "phrase"
    assert phrase["multi_match"]["query"] == "Solar pumps for the THE villages"
    # Broad: any word of the text, as one best_fields multi_match (no share required).
    broad = text_query("Solar pumps for the villages", broad=True)["bool"]["should"][0]
    assert broad["multi_match"]["query"] == "Solar pumps for the villages"
    assert broad["multi_match"]["type"] == "best_fields"
    assert "minimum_should_match" not in broad["multi_match"]
    assert text_query("   ") == {"match_all": {}}


def test_a_query_whose_words_found_nothing_together_is_broadened_once():
    q = SearchQuery(text="pompes solaires", filters=Filters(sdgs=("6",)), size=5)
    broad = broadened(q, 0)
    assert broad == SearchQuery(text=q.text, filters=q.filters, size=5, broad=True)
    assert broadened(q, 1) is None  # found something
    assert broadened(broad, 0) is None  # already broad
    assert broadened(SearchQuery(), 0) is None  # blank: every document already
    later = SearchQuery(text=q.text, cursor=Cursor((1.0, "a")))
    assert broadened(later, 0) is None  # a later page keeps its first page's mode


def test_broad_pages_stay_broad_through_the_page_token():
    hits = [hit("a", 2.0), hit("b", 1.5), hit("c", 1.0)]
    cursor = next_cursor(hits, 2, Sort.RELEVANCE, None, broad=True)
    assert cursor == Cursor((1.5, "b"), ("b",), broad=True)
    assert cursor.to_json()["b"] is True
    assert "b" not in Cursor((1.5, "b")).to_json()
    assert next_cursor(hits, 2, Sort.NEWEST, None, broad=True) == Cursor((1.5, "b"), broad=True)
    codec = PageCodec(b"k" * 32)
    request = pb.SearchRequest(query="pompes solaires")
    request.page.page_token = codec.encode(cursor.to_json(), fingerprint(request))
    q = search_query(request, codec)
    assert q.broad and q.cursor == cursor
    text = json.dumps(search_body(q, RANKING))
    assert '"minimum_should_match": "2<75%"' not in text
    request.page.page_token = codec.encode(Cursor((1.5, "b")).to_json(), fingerprint(request))
    assert not search_query(request, codec).broad


def test_ranking_weights_come_from_settings():
    q = SearchQuery(text="water", filters=Filters(sdgs=("6", "7")))
    body = search_body(q, RANKING)
    outer = body["query"]["bool"]["must"][0]["function_score"]
    weights = {json.dumps(f["filter"]): f["weight"] for f in outer["functions"]}
    assert weights[json.dumps({"term": {"verified_provider": True}})] == 2.5
    assert weights[json.dumps({"term": {"sdgs": "6"}})] == 1.7
    assert weights[json.dumps({"term": {"sdgs": "7"}})] == 1.7
    inner = outer["query"]["function_score"]
    assert inner["functions"][0] == {"weight": pytest.approx(0.8)}
    gauss = inner["functions"][1]
    assert gauss["weight"] == 0.2
    assert gauss["gauss"]["published_at"] == {"origin": "now", "scale": "90d", "decay": 0.4}
    # No SDG filter: no SDG boost; other orders are not scored by ranking at all.
    plain = search_body(SearchQuery(text="water"), RANKING)
    assert len(plain["query"]["bool"]["must"][0]["function_score"]["functions"]) == 1
    newest = search_body(SearchQuery(text="water", sort=Sort.NEWEST), RANKING)
    assert "function_score" not in json.dumps(newest["query"])
    assert newest["sort"][0] == {"published_at": {"order": "desc", "missing": 0}}


def test_filters_go_to_post_filter_and_each_facet_ignores_its_own():
    f = Filters(
        entity_types=(EntityType.SOLUTION,), regions=("AFRICA",), year_from=2020, verified_only=True
    )
    body = search_body(SearchQuery(filters=f), RANKING)
    post = body["post_filter"]["bool"]["filter"]
    assert {"terms": {"entity_type": ["solution"]}} in post
    assert {"range": {"year": {"gte": 2020}}} in post
    aggs = facet_aggregations(f)
    region_filters = aggs["facet_region"]["filter"]["bool"]["filter"]
    assert {"terms": {"regions": ["AFRICA"]}} not in region_filters
    assert {"terms": {"entity_type": ["solution"]}} in region_filters
    assert len(aggs["groups"]["filter"]["bool"]["filter"]) == 4
    # Tombstones never match.
    assert body["query"]["bool"]["filter"] == [{"term": {"hidden": False}}]


def hit(id, score, date=0):
    return {"_id": id, "sort": [score, id]}


def test_relevance_pages_carry_the_ids_tied_on_the_last_score():
    hits = [hit("a", 2.0), hit("b", 1.5), hit("c", 1.5), hit("d", 1.0)]
    cursor = next_cursor(hits, 3, Sort.RELEVANCE, None)
    assert cursor == Cursor((1.5, "c"), ("b", "c"))
    body = search_body(SearchQuery(cursor=cursor), RANKING)
    assert body["search_after"] == [1.5, "c"]
    assert {"bool": {"must_not": [{"ids": {"values": ["b", "c"]}}]}} in body["post_filter"]["bool"][
        "filter"
    ]
    # The tie goes on into the next page: the ids add up, capped.
    more = [hit(f"x{i}", 1.5) for i in range(MAX_TIED_IDS + 2)]
    later = next_cursor(more, MAX_TIED_IDS + 1, Sort.RELEVANCE, cursor)
    assert later is not None and len(later.tied) == MAX_TIED_IDS
    assert next_cursor(hits, 4, Sort.RELEVANCE, None) is None
    assert next_cursor([hit("a", 5), hit("b", 4)], 1, Sort.NEWEST, None) == Cursor((5, "a"))


def test_cursor_tokens_are_checked_for_their_sort():
    good = Cursor((1.25, "a"), ("a",)).to_json()
    assert Cursor.from_json(good, Sort.RELEVANCE) == Cursor((1.25, "a"), ("a",))
    cases: list[tuple[dict, Sort]] = [
        ({"a": [1.25, "a"]}, Sort.NEWEST),  # a score where a date is expected
        ({"a": ["x", "a"]}, Sort.RELEVANCE),
        ({"a": [1]}, Sort.RELEVANCE),
        ({"a": [1, 2]}, Sort.NEWEST),
        ({"a": [1, "a"], "t": [3]}, Sort.NEWEST),
        ({"a": [1.5, "a"], "b": "yes"}, Sort.RELEVANCE),
        ({}, Sort.RELEVANCE),
    ]
    for bad, sort in cases:
        with pytest.raises(ValueError):
            Cursor.from_json(bad, sort)


def test_input_checks_name_each_field():
    v = Violations()
    assert checks.check_query_text(v, "  solar  ") == "solar"
    checks.check_query_text(v, "x" * 501)
    checks.check_years(v, "filters", 2020, 1999)
    checks.check_years(v, "filters", 1800, 0)
    checks.check_sdg_targets(v, "filters.sdg_targets", ["6.4", "17.a", "18.1", "6"])
    checks.check_values(v, "filters.countries", ["KEN"] * 21)
    checks.check_limit(v, "limit", 51, 10, 50)
    with pytest.raises(ValidationError) as caught:
        v.raise_if_any()
    assert [x.field for x in caught.value.violations] == [
        "query",
        "filters.year_to",
        "filters.year_from",
        "filters.sdg_targets[2]",
        "filters.sdg_targets[3]",
        "filters.countries",
        "limit",
    ]


def test_suggest_body_and_merged_completions():
    assert "fuzzy" not in suggest_body("so", 5)["suggest"]["complete"]["completion"]
    assert suggest_body("sola", 5)["suggest"]["complete"]["completion"]["fuzzy"]["fuzziness"] == 1
    response = {
        "suggest": {
            "complete": [
                {
                    "options": [
                        {
                            "text": "Solar A",
                            "_score": 1.0,
                            "_source": {"entity_type": "solution", "id": "a"},
                        },
                        {
                            "text": "Solar B",
                            "_score": 3.0,
                            "_source": {"entity_type": "organization", "id": "b"},
                        },
                        {
                            "text": "Solar A",
                            "_score": 0.5,
                            "_source": {"entity_type": "solution", "id": "a"},
                        },
                    ]
                }
            ]
        }
    }
    found = suggestions(response, 5)
    assert [(s.text, s.entity_type, s.id) for s in found] == [
        ("Solar B", EntityType.ORGANIZATION, "b"),
        ("Solar A", EntityType.SOLUTION, "a"),
    ]
    assert len(suggestions(response, 1)) == 1


def test_similar_excludes_the_item_and_rewards_each_shared_sdg():
    body = similar_body("ssg-solution-v1", "s1", {"sdgs": ["6", "7"]}, 5, RANKING)
    query = body["query"]["bool"]["must"][0]["bool"]
    assert query["must_not"] == [{"ids": {"values": ["s1"]}}]
    assert query["should"][0]["more_like_this"]["like"] == [
        {"_index": "ssg-solution-v1", "_id": "s1"}
    ]
    assert [s["constant_score"]["filter"] for s in query["should"][1:]] == [
        {"term": {"sdgs": "6"}},
        {"term": {"sdgs": "7"}},
    ]
    assert body["size"] == 5
