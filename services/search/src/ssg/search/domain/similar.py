"""Items like a given one: shared words (more_like_this) and shared SDGs (no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ssg.search.domain.queries import Ranking, visible

MLT_FIELDS = (
    "title",
    "title.en",
    "title.fr",
    "title.es",
    "body",
    "body.en",
    "body.fr",
    "body.es",
    "tags",
)


def similar_body(
    index: str, id: str, source: Mapping[str, Any], limit: int, ranking: Ranking
) -> dict[str, Any]:
    """A query for documents like index/id (never the item itself)."""
    should: list[dict[str, Any]] = [
        {
            "more_like_this": {
                "fields": list(MLT_FIELDS),
                "like": [{"_index": index, "_id": id}],
                "min_term_freq": 1,
                "min_doc_freq": 1,
                "max_query_terms": 25,
                "minimum_should_match": "20%",
            }
        }
    ]
    sdgs = list(source.get("sdgs") or ())
    if sdgs:
        # Each shared SDG adds to the score, so more overlap ranks higher.
        should.extend(
            {"constant_score": {"filter": {"term": {"sdgs": s}}, "boost": ranking.sdg_match_boost}}
            for s in sdgs
        )
    query = {
        "bool": {
            "should": should,
            "minimum_should_match": 1,
            "must_not": [{"ids": {"values": [id]}}],
        }
    }
    return {"query": visible(query), "size": limit, "_source": {"excludes": ["suggest"]}}
