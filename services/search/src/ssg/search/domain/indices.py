"""Index definitions, kept in code and versioned: one index per entity type behind an alias.

Searches and writes use the alias (``<prefix>-solution``); the index behind it is
``<prefix>-solution-v<N>``. A change of mapping or analysis raises ``MAPPING_VERSION``, and
``ssg search reindex`` builds the new version from the topics, then swaps the alias at once.
Text fields are analysed four ways (multi-fields): a language-neutral folding analyser
(lowercase, accents folded) on the field itself, and English, French and Spanish stemming
on ``.en``, ``.fr`` and ``.es``. Facet fields are keywords.
"""

from __future__ import annotations

from typing import Any

from ssg.search.domain.documents import EntityType

MAPPING_VERSION = 1

_TEXT: dict[str, Any] = {
    "type": "text",
    "analyzer": "folding",
    "fields": {
        "en": {"type": "text", "analyzer": "english"},
        "fr": {"type": "text", "analyzer": "french"},
        "es": {"type": "text", "analyzer": "spanish"},
    },
}

KEYWORD_FIELDS = (
    "entity_type",
    "id",
    "sdgs",
    "sdg_targets",
    "regions",
    "countries",
    "organization_types",
    "modalities",
    "languages",
    "organization_id",
)

TEXT_FIELDS = ("title", "body", "tags")


def mapping() -> dict[str, Any]:
    """The settings and mappings of every entity type's index (one shape, so that one query
    spans all of them)."""
    properties: dict[str, Any] = {name: {"type": "keyword"} for name in KEYWORD_FIELDS}
    properties.update({name: dict(_TEXT) for name in TEXT_FIELDS})
    properties["title"] = {**_TEXT, "fields": {**_TEXT["fields"], "raw": {"type": "keyword"}}}
    properties.update(
        {
            "year": {"type": "integer"},
            "verified_provider": {"type": "boolean"},
            "hidden": {"type": "boolean"},
            "published_at": {"type": "date"},
            "reviewed_at": {"type": "date"},
            "suggest": {"type": "completion", "analyzer": "folding"},
        }
    )
    return {
        "settings": {
            "index": {"number_of_shards": 1},
            "analysis": {
                "analyzer": {
                    "folding": {
                        "type": "custom",
                        "tokenizer": "standard",
                        "filter": ["lowercase", "asciifolding"],
                    }
                }
            },
        },
        # An unknown field is a bug in the document mapping: reject it (-> dead-letter topic).
        "mappings": {"dynamic": "strict", "properties": properties},
    }


def alias_name(prefix: str, entity_type: EntityType) -> str:
    """The alias searches and writes use, e.g. ``ssg-solution``."""
    return f"{prefix}-{entity_type.value.replace('_', '-')}"


def index_name(prefix: str, entity_type: EntityType, version: int = MAPPING_VERSION) -> str:
    """The concrete index of a mapping version, e.g. ``ssg-solution-v1``."""
    return f"{alias_name(prefix, entity_type)}-v{version}"


def all_aliases(prefix: str) -> list[str]:
    """The alias of every entity type."""
    return [alias_name(prefix, t) for t in EntityType]


def entity_of_index(prefix: str, index: str) -> EntityType:
    """The entity type an index (or alias) name belongs to; ValueError for a foreign index."""
    for entity_type in EntityType:
        alias = alias_name(prefix, entity_type)
        if index == alias or index.startswith(alias + "-v"):
            return entity_type
    raise ValueError(f"not a search index: {index!r}")
