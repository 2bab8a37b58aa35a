"""Search requests as OpenSearch query bodies (no I/O): text, filters, facets, ranking, sort,
pages.

User text only ever reaches OpenSearch as the ``query`` of ``multi_match`` queries, which
analyse it as plain words: no operator, quote, wildcard or field name in it has a meaning, so
no text can make the query fail or reach another field.

Most of a query's words must match (``MOST_WORDS``): one common word ("for", "de") no longer
matches the whole index. When that finds nothing, the service runs the query again with any
word matching (``broadened``), and the pages of that answer stay broad (the cursor says so).

Facets are counted with every filter applied except their own (aggregations under a
``filter`` of the other facets' clauses), while the hits get all filters as a
``post_filter``: a user sees how many results each other value of a facet would give.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ssg.search.domain.documents import EntityType

MAX_QUERY_CHARS = 500
MAX_FILTER_VALUES = 20
MIN_YEAR, MAX_YEAR = 1900, 2100
FACET_SIZE = 20
# Relevance pages resume after the last (score, id); ids that tied on the last score are
# carried in the token (at most this many) so that no hit is shown twice.
MAX_TIED_IDS = 10

# Searched fields and their weights: titles and tags count more than bodies; each text is
# searched with the folding analyser and the English, French and Spanish ones.
_LANGS = ("", ".en", ".fr", ".es")
TEXT_FIELDS = (
    *(f"title{s}^3" for s in _LANGS),
    *(f"tags{s}^2" for s in _LANGS),
    *(f"body{s}" for s in _LANGS),
)
HIGHLIGHT_FIELDS = ("title", "body")
# How many of a query's words a result must match: all of one or two, then three in four
# (rounded down: 2 of 3, 3 of 4, 4 of 6). Each word may match in any field and language.
MOST_WORDS = "2<75%"

# Facet name (as the API reports it) -> document field.
FACETS: Mapping[str, str] = {
    "entity_type": "entity_type",
    "sdg": "sdgs",
    "sdg_target": "sdg_targets",
    "region": "regions",
    "country": "countries",
    "organization_type": "organization_types",
    "modality": "modalities",
    "year": "year",
    "verified": "verified_provider",
    "language": "languages",
}


class Sort(enum.StrEnum):
    """Result orders."""

    RELEVANCE = "relevance"
    NEWEST = "newest"
    RECENTLY_REVIEWED = "recently_reviewed"


_SORT_FIELD = {Sort.NEWEST: "published_at", Sort.RECENTLY_REVIEWED: "reviewed_at"}


@dataclass(frozen=True)
class Filters:
    """What a search is narrowed to; values are document facet values (e.g. sdg "6")."""

    entity_types: tuple[EntityType, ...] = ()
    sdgs: tuple[str, ...] = ()
    sdg_targets: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    organization_types: tuple[str, ...] = ()
    modalities: tuple[str, ...] = ()
    year_from: int | None = None
    year_to: int | None = None
    verified_only: bool = False
    languages: tuple[str, ...] = ()

    def clauses(self) -> dict[str, dict[str, Any]]:
        """One filter clause per facet that is narrowed, keyed by facet name."""
        out: dict[str, dict[str, Any]] = {}
        terms = {
            "entity_type": [t.value for t in self.entity_types],
            "sdg": list(self.sdgs),
            "sdg_target": list(self.sdg_targets),
            "region": list(self.regions),
            "country": list(self.countries),
            "organization_type": list(self.organization_types),
            "modality": list(self.modalities),
            "language": list(self.languages),
        }
        for facet, values in terms.items():
            if values:
                out[facet] = {"terms": {FACETS[facet]: values}}
        if self.year_from is not None or self.year_to is not None:
            bounds = {"gte": self.year_from, "lte": self.year_to}
            out["year"] = {"range": {"year": {k: v for k, v in bounds.items() if v is not None}}}
        if self.verified_only:
            out["verified"] = {"term": {"verified_provider": True}}
        return out


@dataclass(frozen=True)
class Ranking:
    """Weights of the relevance order (from settings, not code)."""

    verified_boost: float = 1.5
    sdg_match_boost: float = 1.3
    freshness_scale_days: int = 365
    freshness_decay: float = 0.5
    freshness_weight: float = 0.3


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: the last hit's sort values and, for relevance, the ids
    that tied with it on the score; broad when the pages are those of the any-word query."""

    after: tuple[Any, ...]
    tied: tuple[str, ...] = ()
    broad: bool = False

    def to_json(self) -> dict[str, Any]:
        """The cursor as a page token body."""
        data: dict[str, Any] = {"a": list(self.after), "t": list(self.tied)}
        if self.broad:
            data["b"] = True
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any], sort: Sort) -> Cursor:
        """A cursor from a decoded page token; ValueError when it does not fit sort."""
        after, tied, broad = data.get("a"), data.get("t", []), data.get("b", False)
        if not isinstance(broad, bool):
            raise ValueError("page_token is malformed")
        if not isinstance(after, list) or len(after) != 2 or not isinstance(after[1], str):
            raise ValueError("page_token is malformed")
        first = after[0]
        if sort is Sort.RELEVANCE:
            ok = isinstance(first, int | float) and not isinstance(first, bool)
            ok = ok and math.isfinite(first)
        else:
            ok = isinstance(first, int) and not isinstance(first, bool)
        if not ok or not isinstance(tied, list) or not all(isinstance(t, str) for t in tied):
            raise ValueError("page_token is malformed")
        return cls((first, after[1]), tuple(tied[:MAX_TIED_IDS]), broad)


@dataclass(frozen=True)
class SearchQuery:
    """One validated search."""

    text: str = ""
    filters: Filters = field(default_factory=Filters)
    sort: Sort = Sort.RELEVANCE
    size: int = 20
    cursor: Cursor | None = None
    # Any word suffices: the second try of a query whose words found nothing together.
    broad: bool = False


def _word_query(word: str) -> dict[str, Any]:
    """One word in any field and language (typos forgiven); its score sums the fields it is
    found in."""
    return {
        "multi_match": {
            "query": word,
            "type": "best_fields",
            "fields": list(TEXT_FIELDS),
            "fuzziness": "AUTO",
            "prefix_length": 1,
            "tie_breaker": 1.0,
        }
    }


def text_query(text: str, broad: bool = False) -> dict[str, Any]:
    """The scoring query for text: most of its words (any word when broad) in any language
    field, typos forgiven; phrases matched in titles and bodies rank higher; everything when
    text is blank."""
    words = text.split()
    if not words:
        return {"match_all": {}}
    phrase = {
        "multi_match": {
            "query": " ".join(words),
            "type": "phrase",
            "fields": ["title^2", "body"],
            "boost": 2.0,
        }
    }
    if broad:
        matched: dict[str, Any] | None = {
            "multi_match": {
                "query": " ".join(words),
                "type": "best_fields",
                "fields": list(TEXT_FIELDS),
                "fuzziness": "AUTO",
                "prefix_length": 1,
                "tie_breaker": 0.3,
            }
        }
    else:
        # One clause per distinct word, so that the share required counts words, whichever
        # field or language each is found in (a multi_match's own minimum_should_match counts
        # them per field). Punctuation alone is no word: it would never match yet count.
        distinct = [w for w in dict.fromkeys(w.lower() for w in words) if _has_word(w)]
        matched = (
            {
                "bool": {
                    "should": [_word_query(w) for w in distinct],
                    "minimum_should_match": MOST_WORDS,
                }
            }
            if distinct
            else None
        )
    should = [phrase] if matched is None else [matched, phrase]
    return {"bool": {"should": should, "minimum_should_match": 1}}


def _has_word(text: str) -> bool:
    return any(c.isalnum() for c in text)


def broadened(q: SearchQuery, found: int) -> SearchQuery | None:
    """What to run instead of q when its words found nothing together: the same first page
    with any word matching; None when q found something, has no text, or is already broad
    or a later page (whose cursor decides)."""
    if found or q.broad or q.cursor is not None or not q.text.split():
        return None
    return replace(q, broad=True)


def ranked(query: dict[str, Any], filters: Filters, ranking: Ranking) -> dict[str, Any]:
    """query scored by relevance: text score x verified provider x SDG match x freshness."""
    freshness = {
        "function_score": {
            "query": query,
            # (1 - w) + w * decay: freshness moves at most a fraction w of the score.
            "functions": [
                {"weight": 1.0 - ranking.freshness_weight},
                {
                    "gauss": {
                        "published_at": {
                            "origin": "now",
                            "scale": f"{ranking.freshness_scale_days}d",
                            "decay": ranking.freshness_decay,
                        }
                    },
                    "weight": ranking.freshness_weight,
                },
            ],
            "score_mode": "sum",
            "boost_mode": "multiply",
        }
    }
    boosts: list[dict[str, Any]] = [
        {"filter": {"term": {"verified_provider": True}}, "weight": ranking.verified_boost}
    ]
    # Every result has one of the filtered SDGs (post_filter): each further one it shares
    # multiplies its score again, so the closest matches lead.
    boosts.extend(
        {"filter": {"term": {"sdgs": sdg}}, "weight": ranking.sdg_match_boost}
        for sdg in filters.sdgs
    )
    return {
        "function_score": {
            "query": freshness,
            "functions": boosts,
            "score_mode": "multiply",
            "boost_mode": "multiply",
        }
    }


def visible(query: dict[str, Any]) -> dict[str, Any]:
    """query restricted to documents that are not tombstones."""
    return {"bool": {"must": [query], "filter": [{"term": {"hidden": False}}]}}


def sort_clause(sort: Sort) -> list[Any]:
    """The sort of an order, with the id as tie-breaker (search_after needs a total order)."""
    if sort is Sort.RELEVANCE:
        return ["_score", {"id": "asc"}]
    return [{_SORT_FIELD[sort]: {"order": "desc", "missing": 0}}, {"id": "asc"}]


def facet_aggregations(filters: Filters) -> dict[str, Any]:
    """Per facet, its value counts under every other filter; plus the totals per type."""
    clauses = filters.clauses()
    aggs: dict[str, Any] = {}
    for facet, doc_field in FACETS.items():
        others = [c for name, c in clauses.items() if name != facet]
        aggs[f"facet_{facet}"] = {
            "filter": {"bool": {"filter": others}},
            "aggs": {"values": {"terms": {"field": doc_field, "size": FACET_SIZE}}},
        }
    aggs["groups"] = {
        "filter": {"bool": {"filter": list(clauses.values())}},
        "aggs": {"types": {"terms": {"field": "entity_type", "size": len(EntityType)}}},
    }
    return aggs


def search_body(q: SearchQuery, ranking: Ranking) -> dict[str, Any]:
    """The ``_search`` body of q over the aliases of every entity type."""
    scoring = text_query(q.text, q.broad)
    if q.sort is Sort.RELEVANCE:
        scoring = ranked(scoring, q.filters, ranking)
    post: list[dict[str, Any]] = list(q.filters.clauses().values())
    body: dict[str, Any] = {
        "query": visible(scoring),
        "aggs": facet_aggregations(q.filters),
        "sort": sort_clause(q.sort),
        # One more than asked: tells whether there is a next page.
        "size": q.size + 1,
        "track_total_hits": True,
        "highlight": {
            "fields": {
                f: {"number_of_fragments": 2, "fragment_size": 160} for f in HIGHLIGHT_FIELDS
            },
            "pre_tags": ["<em>"],
            "post_tags": ["</em>"],
        },
        "_source": {"excludes": ["suggest"]},
    }
    if q.cursor is not None:
        body["search_after"] = list(q.cursor.after)
        if q.cursor.tied:
            post.append({"bool": {"must_not": [{"ids": {"values": list(q.cursor.tied)}}]}})
    if post:
        body["post_filter"] = {"bool": {"filter": post}}
    return body


def next_cursor(
    hits: Sequence[Mapping[str, Any]],
    size: int,
    sort: Sort,
    previous: Cursor | None,
    broad: bool = False,
) -> Cursor | None:
    """Where the page after hits starts (None when hits hold no more than size)."""
    if len(hits) <= size:
        return None
    page = hits[:size]
    last = page[-1]
    after = (last["sort"][0], last["sort"][1])
    if sort is not Sort.RELEVANCE:
        return Cursor(after, broad=broad)
    tied = [h["_id"] for h in page if h["sort"][0] == after[0]]
    if previous is not None and previous.after[0] == after[0]:
        tied = [*previous.tied, *tied]
    return Cursor(after, tuple(dict.fromkeys(tied))[-MAX_TIED_IDS:], broad)
