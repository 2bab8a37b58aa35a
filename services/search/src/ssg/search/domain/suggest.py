"""Type-ahead: completion of a typed prefix from titles and organization names (no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ssg.search.domain.documents import EntityType

# Typos are forgiven from this many typed characters on (fewer match too much).
FUZZY_FROM_CHARS = 4


@dataclass(frozen=True)
class Suggestion:
    """One completion and the item it comes from."""

    text: str
    entity_type: EntityType
    id: str


def suggest_body(prefix: str, limit: int) -> dict[str, Any]:
    """A completion-suggester request for prefix (plain text: completion reads no syntax)."""
    completion: dict[str, Any] = {"field": "suggest", "size": limit, "skip_duplicates": True}
    if len(prefix) >= FUZZY_FROM_CHARS:
        completion["fuzzy"] = {"fuzziness": 1, "prefix_length": 1}
    return {
        "size": 0,
        "_source": ["entity_type", "id", "title"],
        "suggest": {"complete": {"prefix": prefix, "completion": completion}},
    }


def suggestions(response: Mapping[str, Any], limit: int) -> list[Suggestion]:
    """The best limit completions over every index, without repeats."""
    options: list[Mapping[str, Any]] = []
    for entry in response.get("suggest", {}).get("complete", []):
        options.extend(entry.get("options", []))
    options.sort(key=lambda o: -float(o.get("_score", 0.0)))
    out: list[Suggestion] = []
    seen: set[tuple[str, str]] = set()
    for option in options:
        src = option.get("_source", {})
        key = (str(src.get("entity_type")), str(src.get("id", option.get("_id"))))
        if key in seen or "entity_type" not in src:
            continue
        seen.add(key)
        out.append(Suggestion(str(option.get("text", "")), EntityType(key[0]), key[1]))
        if len(out) == limit:
            break
    return out
