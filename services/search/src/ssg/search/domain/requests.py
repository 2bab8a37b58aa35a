"""Checks of search inputs: sizes, codes and ranges, each violation naming its field."""

from __future__ import annotations

import re
from collections.abc import Sequence

from ssg.platform.errors import Violations
from ssg.platform.reference.geography import is_country
from ssg.platform.validation import check_id, is_language
from ssg.search.domain.queries import MAX_FILTER_VALUES, MAX_QUERY_CHARS, MAX_YEAR, MIN_YEAR

MAX_PREFIX_CHARS = 100
MAX_SUGGESTIONS = 20
DEFAULT_SUGGESTIONS = 10
MAX_SIMILAR = 50
DEFAULT_SIMILAR = 10
_SDG_TARGET = re.compile(r"(1[0-7]|[1-9])\.([1-9][0-9]?|[a-z])")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def check_text(v: Violations, path: str, text: str, limit: int, *, required: bool = False) -> str:
    """text with surrounding blanks removed; violations for over limit, control characters,
    or empty when required."""
    if len(text) > limit:
        v.add(path, f"must be at most {limit} characters")
        return ""
    if _CONTROL.search(text):
        v.add(path, "must not contain control characters")
        return ""
    text = text.strip()
    if required and not text:
        v.add(path, "is required")
    return text


def check_values(v: Violations, path: str, values: Sequence[str]) -> tuple[str, ...]:
    """A filter's values: at most MAX_FILTER_VALUES, duplicates dropped."""
    if len(values) > MAX_FILTER_VALUES:
        v.add(path, f"must hold at most {MAX_FILTER_VALUES} values")
    return tuple(dict.fromkeys(values))


def check_countries(v: Violations, path: str, values: Sequence[str]) -> tuple[str, ...]:
    """ISO 3166-1 alpha-3 codes."""
    for i, code in enumerate(values):
        if not is_country(code):
            v.add(f"{path}[{i}]", "must be an ISO 3166-1 alpha-3 code such as KEN")
    return check_values(v, path, values)


def check_languages(v: Violations, path: str, values: Sequence[str]) -> tuple[str, ...]:
    """ISO 639-1 codes."""
    for i, code in enumerate(values):
        if not is_language(code):
            v.add(f"{path}[{i}]", "must be an ISO 639-1 code such as fr")
    return check_values(v, path, values)


def check_sdg_targets(v: Violations, path: str, values: Sequence[str]) -> tuple[str, ...]:
    """SDG target codes such as 6.4 or 14.a."""
    for i, code in enumerate(values):
        if not _SDG_TARGET.fullmatch(code):
            v.add(f"{path}[{i}]", "must be an SDG target code such as 6.4")
    return check_values(v, path, values)


def check_years(
    v: Violations, path: str, year_from: int, year_to: int
) -> tuple[int | None, int | None]:
    """An inclusive year range, 0 meaning open."""
    for name, year in (("year_from", year_from), ("year_to", year_to)):
        if year and not MIN_YEAR <= year <= MAX_YEAR:
            v.add(f"{path}.{name}", f"must be between {MIN_YEAR} and {MAX_YEAR}")
    if year_from and year_to and year_from > year_to:
        v.add(f"{path}.year_to", "must not be before year_from")
    return (year_from or None, year_to or None)


def check_limit(v: Violations, path: str, limit: int, default: int, maximum: int) -> int:
    """A result count: default for 0, at most maximum."""
    if limit < 0 or limit > maximum:
        v.add(path, f"must be between 0 and {maximum}")
    return limit or default


def check_query_text(v: Violations, text: str) -> str:
    """The free text of a search."""
    return check_text(v, "query", text, MAX_QUERY_CHARS)


def check_item_id(v: Violations, path: str, value: str) -> str:
    """An item id (an id as the services assign them)."""
    return check_id(v, path, value)
