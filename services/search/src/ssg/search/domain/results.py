"""OpenSearch responses as search results (no I/O)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ssg.search.domain.documents import EntityType
from ssg.search.domain.queries import FACETS, Cursor, SearchQuery, next_cursor

SNIPPET_CHARS = 240


@dataclass(frozen=True)
class Hit:
    """One result."""

    entity_type: EntityType
    id: str
    title: str
    snippet: str = ""
    sdgs: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    organization_id: str = ""
    verified_provider: bool = False
    languages: tuple[str, ...] = ()
    year: int = 0
    score: float = 0.0
    highlights: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Results:
    """One page of a search."""

    hits: list[Hit]
    # Results per entity type (all filters applied), every type that has any.
    groups: dict[EntityType, int]
    # Facet name -> (value, count), counted under every other filter.
    facets: dict[str, list[tuple[str, int]]]
    cursor: Cursor | None

    @property
    def total(self) -> int:
        """Results over every entity type."""
        return sum(self.groups.values())


def hit(raw: Mapping[str, Any]) -> Hit:
    """A result from one OpenSearch hit."""
    src = raw.get("_source", {})
    highlights = {k: tuple(v) for k, v in raw.get("highlight", {}).items()}
    body_marks = highlights.get("body") or ()
    snippet = body_marks[0] if body_marks else str(src.get("body", ""))[:SNIPPET_CHARS]
    score = raw.get("_score")
    return Hit(
        entity_type=EntityType(src["entity_type"]),
        id=str(src.get("id", raw["_id"])),
        title=str(src.get("title", "")),
        snippet=snippet,
        sdgs=tuple(src.get("sdgs", ())),
        regions=tuple(src.get("regions", ())),
        countries=tuple(src.get("countries", ())),
        organization_id=str(src.get("organization_id", "")),
        verified_provider=bool(src.get("verified_provider", False)),
        languages=tuple(src.get("languages", ())),
        year=int(src.get("year") or 0),
        score=float(score) if isinstance(score, int | float) else 0.0,
        highlights=highlights,
    )


def _buckets(agg: Mapping[str, Any]) -> list[tuple[str, int]]:
    out = []
    for b in agg["values"]["buckets"]:
        key = b.get("key_as_string", b["key"])
        value = str(key).lower() if isinstance(key, bool) else str(key)
        out.append((value, int(b["doc_count"])))
    return out


def results(response: Mapping[str, Any], q: SearchQuery) -> Results:
    """The page of results in a search response to q."""
    raw_hits: Sequence[Mapping[str, Any]] = response["hits"]["hits"]
    aggs = response.get("aggregations", {})
    groups = {
        EntityType(b["key"]): int(b["doc_count"])
        for b in aggs.get("groups", {}).get("types", {}).get("buckets", [])
    }
    facets = {name: _buckets(aggs[f"facet_{name}"]) for name in FACETS if f"facet_{name}" in aggs}
    return Results(
        hits=[hit(h) for h in raw_hits[: q.size]],
        groups=groups,
        facets=facets,
        cursor=next_cursor(raw_hits, q.size, q.sort, q.cursor, q.broad),
    )
