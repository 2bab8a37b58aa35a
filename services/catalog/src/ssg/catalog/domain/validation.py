"""Validation of every field a caller writes: sizes, list caps, reference data.

Each ``validate_*`` collects every violation (field path and reason) before raising one
``ValidationError``, and returns the normalized content (trimmed text, no repeats).
Organization ids are checked against the organizations read model through ``knows``, a
predicate the service layer passes in (the domain does no I/O).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date, datetime
from enum import StrEnum
from functools import cache
from typing import TypeVar
from urllib.parse import urlsplit

import pycountry

from ssg.catalog.domain.model import (
    Contact,
    Criterion,
    CriterionScore,
    FundingContent,
    Indicator,
    KnowledgeContent,
    KnowledgeType,
    Modality,
    Money,
    NeedContent,
    Partner,
    PartnerRole,
    Period,
    Resource,
    ReviewOutcome,
    SolutionContent,
    SupportKind,
)
from ssg.platform.errors import ValidationError, Violations
from ssg.platform.reference.geography import is_country
from ssg.platform.reference.sdg import goal_of_target
from ssg.platform.validation import check_id, check_unique, is_id, is_language

# The control characters (Unicode category Cc: U+0000-U+001F, U+007F-U+009F), as one regular
# expression: a category lookup per character was a third of an import's validation.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_CONTROL_IN_LINES = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # \t \n \r allowed

E = TypeVar("E", bound=StrEnum)
Knows = Callable[[str], bool]

TITLE_MIN, TITLE_MAX = 5, 300
SUMMARY_MIN, SUMMARY_MAX = 20, 10_000
LONG_TEXT_MAX = 20_000
APPROACH_MAX = 50_000
NOTES_MAX = 10_000
SHORT_MAX = 200
REASON_MAX = 2_000
URL_MAX = 2_048
EMAIL_MAX = 254
MAX_COUNTRIES = 250
MAX_INDICATORS = 50
MAX_TARGETS = 50
MAX_PARTNERS = 100
MAX_RESOURCES = 50
MAX_TAGS = 30
TAG_MAX = 50
MAX_AUTHORS = 50
MAX_SUPPORT_KINDS = 5
YEAR_MIN, YEAR_MAX = 1900, 2100
SCORE_MIN, SCORE_MAX = 1, 5
_EXTERNAL_ID = re.compile(r"^[A-Za-z0-9_.:/-]{1,200}\Z")
_CURRENCY = re.compile(r"^[A-Z]{3}\Z")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+\Z")


@cache
def _currencies() -> frozenset[str]:
    return frozenset(c.alpha_3 for c in pycountry.currencies)


def text(
    v: Violations,
    path: str,
    value: str,
    *,
    maximum: int,
    minimum: int = 0,
    multiline: bool = False,
) -> str:
    """Trimmed value; violations for length outside [minimum, maximum] or control characters."""
    if len(value) > maximum:
        # Checked before any other work so a huge value costs one len() call.
        v.add(path, f"must be at most {maximum} characters, got {len(value)}")
        return value
    cleaned = value.strip()
    if minimum and len(cleaned) < minimum:
        v.add(path, "is required" if not cleaned else f"must be at least {minimum} characters")
    if (_CONTROL_IN_LINES if multiline else _CONTROL).search(cleaned):
        v.add(path, "must not contain control characters")
    return cleaned


def url(v: Violations, path: str, value: str, *, required: bool) -> str:
    """An http(s) URL with a host, at most URL_MAX characters."""
    value = value.strip()
    if not value:
        if required:
            v.add(path, "is required")
        return value
    if len(value) > URL_MAX:
        v.add(path, f"must be at most {URL_MAX} characters")
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in value:
        v.add(path, "must be an http(s) URL")
    return value


def email(v: Violations, path: str, value: str) -> str:
    """An optional email address."""
    value = value.strip()
    if value and (len(value) > EMAIL_MAX or not _EMAIL.match(value)):
        v.add(path, "must be an email address of at most 254 characters")
    return value


def external_id(v: Violations, path: str, value: str) -> str:
    """An id in a source collection."""
    if not _EXTERNAL_ID.match(value):
        v.add(path, "must be 1 to 200 characters of letters, digits and _.:/-")
    return value


def enum_value(v: Violations, path: str, value: str, enum: type[E], *, required: bool) -> E | None:
    """The enum member named value ('' unset, '#n' an undefined number)."""
    if not value:
        if required:
            v.add(path, "is required")
        return None
    try:
        return enum(value)
    except ValueError:
        v.add(path, f"unknown value {value.lstrip('#')}")
        return None


def _cap(v: Violations, path: str, items: Sequence[object], maximum: int, minimum: int = 0) -> bool:
    if len(items) > maximum:
        v.add(path, f"at most {maximum} items, got {len(items)}")
        return False
    if len(items) < minimum:
        v.add(path, "is required" if minimum == 1 else f"at least {minimum} items")
    return True


def countries(
    v: Violations, path: str, values: Sequence[str], *, minimum: int = 0
) -> tuple[str, ...]:
    """ISO 3166-1 alpha-3 codes, capped, no repeats."""
    if not _cap(v, path, values, MAX_COUNTRIES, minimum):
        return tuple(values)
    for i, code in enumerate(values):
        if not is_country(code):
            v.add(f"{path}[{i}]", f"not an ISO 3166-1 alpha-3 country code: {code[:10]!r}")
    check_unique(v, path, values)
    return tuple(values)


def country(v: Violations, path: str, code: str, *, required: bool) -> str:
    """One ISO 3166-1 alpha-3 code."""
    if not code:
        if required:
            v.add(path, "is required")
    elif not is_country(code):
        v.add(path, f"not an ISO 3166-1 alpha-3 country code: {code[:10]!r}")
    return code


def sdgs(v: Violations, path: str, values: Sequence[int], *, minimum: int = 1) -> tuple[int, ...]:
    """Goal numbers 1-17, no repeats."""
    if not _cap(v, path, values, 17, minimum):
        return tuple(values)
    for i, goal in enumerate(values):
        if not 1 <= goal <= 17:
            v.add(f"{path}[{i}]", f"SDG must be 1 to 17, got {goal}")
    check_unique(v, path, values)
    return tuple(values)


def sdg_targets(
    v: Violations, path: str, values: Sequence[str], goals: Sequence[int], goals_path: str
) -> tuple[str, ...]:
    """Real SDG target codes, each of a goal listed in goals."""
    if not _cap(v, path, values, MAX_TARGETS):
        return tuple(values)
    for i, code in enumerate(values):
        try:
            goal = goal_of_target(code)
        except ValueError:
            v.add(f"{path}[{i}]", f"not an SDG target: {code[:10]!r}")
            continue
        if goal not in goals:
            v.add(f"{path}[{i}]", f"target {code} belongs to SDG {goal}; add it to {goals_path}")
    check_unique(v, path, values)
    return tuple(values)


def language(v: Violations, path: str, code: str) -> str:
    """A required ISO 639-1 code."""
    if not code:
        v.add(path, "is required")
    elif not is_language(code):
        v.add(path, f"not an ISO 639-1 language code: {code[:10]!r}")
    return code


def iso_date(v: Violations, path: str, value: str, *, required: bool) -> date | None:
    """A 'YYYY-MM-DD' date."""
    if not value:
        if required:
            v.add(path, "is required")
        return None
    try:
        if len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        v.add(path, "must be a date YYYY-MM-DD")
        return None


def money(v: Violations, path: str, value: Money | None) -> Money | None:
    """A non-negative amount in a real currency."""
    if value is None:
        return None
    if not _CURRENCY.match(value.currency_code) or value.currency_code not in _currencies():
        v.add(f"{path}.currency_code", "must be an ISO 4217 currency code, e.g. USD")
    if value.units < 0 or value.nanos < 0:
        v.add(path, "must not be negative")
    if not -999_999_999 <= value.nanos <= 999_999_999:
        v.add(f"{path}.nanos", "must be within +-999,999,999")
    return value


def _amount(value: Money) -> float:
    return value.units + value.nanos / 1e9


def organizations(v: Violations, path: str, org_id: str, knows: Knows) -> str:
    """A required organization id the read model knows."""
    check_id(v, path, org_id)
    if org_id and is_id(org_id) and not knows(org_id):
        v.add(path, f"unknown organization {org_id}")
    return org_id


def _indicators(v: Violations, path: str, items: Sequence[Indicator]) -> tuple[Indicator, ...]:
    if not _cap(v, path, items, MAX_INDICATORS):
        return tuple(items)
    out = []
    for i, ind in enumerate(items):
        p = f"{path}[{i}]"
        if ind.year and not YEAR_MIN <= ind.year <= YEAR_MAX:
            v.add(f"{p}.year", f"must be {YEAR_MIN} to {YEAR_MAX}")
        out.append(
            Indicator(
                name=text(v, f"{p}.name", ind.name, maximum=SHORT_MAX, minimum=1),
                baseline=text(v, f"{p}.baseline", ind.baseline, maximum=100),
                value=text(v, f"{p}.value", ind.value, maximum=100, minimum=1),
                unit=text(v, f"{p}.unit", ind.unit, maximum=50),
                year=ind.year,
            )
        )
    return tuple(out)


def _partners(
    v: Violations, path: str, items: Sequence[Partner], knows: Knows
) -> tuple[Partner, ...]:
    if not _cap(v, path, items, MAX_PARTNERS):
        return tuple(items)
    for i, partner in enumerate(items):
        organizations(v, f"{path}[{i}].organization_id", partner.organization_id, knows)
        enum_value(v, f"{path}[{i}].role", partner.role, PartnerRole, required=True)
    check_unique(v, path, [(p.organization_id, p.role) for p in items])
    return tuple(items)


def _resources(v: Violations, path: str, items: Sequence[Resource]) -> tuple[Resource, ...]:
    if not _cap(v, path, items, MAX_RESOURCES):
        return tuple(items)
    return tuple(
        Resource(
            title=text(v, f"{path}[{i}].title", r.title, maximum=SHORT_MAX, minimum=1),
            url=url(v, f"{path}[{i}].url", r.url, required=True),
        )
        for i, r in enumerate(items)
    )


def _tags(v: Violations, path: str, items: Sequence[str]) -> tuple[str, ...]:
    if not _cap(v, path, items, MAX_TAGS):
        return tuple(items)
    tags = tuple(
        text(v, f"{path}[{i}]", t, maximum=TAG_MAX, minimum=1) for i, t in enumerate(items)
    )
    check_unique(v, path, [t.casefold() for t in tags])
    return tags


def _period(v: Violations, path: str, period: Period | None) -> Period | None:
    if period is None:
        v.add(path, "is required")
        return None
    start = iso_date(v, f"{path}.start_date", period.start_date, required=True)
    end = iso_date(v, f"{path}.end_date", period.end_date, required=False)
    if start and end and end < start:
        v.add(f"{path}.end_date", "must not be before start_date")
    return period


def validate_solution(
    content: SolutionContent, knows: Knows, prefix: str = "solution"
) -> SolutionContent:
    """The normalized content, or ValidationError with every bad field under prefix."""
    v = Violations()
    p = f"{prefix}."
    goals = sdgs(v, p + "sdgs", content.sdgs)
    contact = content.contact
    if contact is not None:
        contact = Contact(
            name=text(v, p + "contact.name", contact.name, maximum=SHORT_MAX),
            email=email(v, p + "contact.email", contact.email),
        )
    regions = content.regions
    for i, region in enumerate(regions):
        if not region or region.startswith("#"):
            v.add(f"{p}regions[{i}]", f"unknown region {region.lstrip('#') or 0}")
    check_unique(v, p + "regions", regions)
    result = SolutionContent(
        title=text(v, p + "title", content.title, maximum=TITLE_MAX, minimum=TITLE_MIN),
        summary=text(
            v,
            p + "summary",
            content.summary,
            maximum=SUMMARY_MAX,
            minimum=SUMMARY_MIN,
            multiline=True,
        ),
        challenge=text(
            v, p + "challenge", content.challenge, maximum=LONG_TEXT_MAX, multiline=True
        ),
        approach=text(v, p + "approach", content.approach, maximum=APPROACH_MAX, multiline=True),
        results=text(v, p + "results", content.results, maximum=LONG_TEXT_MAX, multiline=True),
        indicators=_indicators(v, p + "indicators", content.indicators),
        sdgs=goals,
        sdg_targets=sdg_targets(v, p + "sdg_targets", content.sdg_targets, goals, p + "sdgs"),
        implementing_countries=countries(
            v, p + "implementing_countries", content.implementing_countries, minimum=1
        ),
        beneficiary_countries=countries(
            v, p + "beneficiary_countries", content.beneficiary_countries
        ),
        regions=regions,
        modality=enum_value(v, p + "modality", content.modality, Modality, required=True)
        or content.modality,
        partners=_partners(v, p + "partners", content.partners, knows),
        period=_period(v, p + "period", content.period),
        budget=money(v, p + "budget", content.budget),
        replicability=text(
            v, p + "replicability", content.replicability, maximum=NOTES_MAX, multiline=True
        ),
        prerequisites=text(
            v, p + "prerequisites", content.prerequisites, maximum=NOTES_MAX, multiline=True
        ),
        resources=_resources(v, p + "resources", content.resources),
        contact=contact,
        language=language(v, p + "language", content.language),
        tags=_tags(v, p + "tags", content.tags),
    )
    v.raise_if_any()
    return result


def validate_knowledge(
    content: KnowledgeContent, prefix: str = "knowledge_product"
) -> KnowledgeContent:
    """The normalized content of a knowledge product, or ValidationError."""
    v = Violations()
    p = f"{prefix}."
    enum_value(v, p + "type", content.type, KnowledgeType, required=True)
    if _cap(v, p + "authors", content.authors, MAX_AUTHORS, 1):
        authors = tuple(
            text(v, f"{p}authors[{i}]", a, maximum=SHORT_MAX, minimum=1)
            for i, a in enumerate(content.authors)
        )
    else:
        authors = content.authors
    if not YEAR_MIN <= content.year <= YEAR_MAX:
        v.add(p + "year", f"must be {YEAR_MIN} to {YEAR_MAX}")
    result = KnowledgeContent(
        title=text(v, p + "title", content.title, maximum=TITLE_MAX, minimum=TITLE_MIN),
        type=content.type,
        authors=authors,
        year=content.year,
        abstract=text(
            v,
            p + "abstract",
            content.abstract,
            maximum=LONG_TEXT_MAX,
            minimum=SUMMARY_MIN,
            multiline=True,
        ),
        sdgs=sdgs(v, p + "sdgs", content.sdgs),
        url=url(v, p + "url", content.url, required=True),
        language=language(v, p + "language", content.language),
    )
    v.raise_if_any()
    return result


def validate_need(content: NeedContent, prefix: str = "need") -> NeedContent:
    """The normalized content of a need, or ValidationError."""
    v = Violations()
    p = f"{prefix}."
    if _cap(v, p + "support_kinds", content.support_kinds, MAX_SUPPORT_KINDS, 1):
        for i, kind in enumerate(content.support_kinds):
            enum_value(v, f"{p}support_kinds[{i}]", kind, SupportKind, required=True)
        check_unique(v, p + "support_kinds", content.support_kinds)
    iso_date(v, p + "deadline", content.deadline, required=False)
    result = NeedContent(
        title=text(v, p + "title", content.title, maximum=TITLE_MAX, minimum=TITLE_MIN),
        problem_statement=text(
            v,
            p + "problem_statement",
            content.problem_statement,
            maximum=LONG_TEXT_MAX,
            minimum=SUMMARY_MIN,
            multiline=True,
        ),
        sdgs=sdgs(v, p + "sdgs", content.sdgs),
        country=country(v, p + "country", content.country, required=True),
        support_kinds=content.support_kinds,
        deadline=content.deadline,
    )
    v.raise_if_any()
    return result


def validate_funding(
    content: FundingContent, prefix: str = "funding_opportunity"
) -> FundingContent:
    """The normalized content of a funding opportunity, or ValidationError."""
    v = Violations()
    p = f"{prefix}."
    for i, kind in enumerate(content.eligible_organization_types):
        if not kind or kind.startswith("#"):
            v.add(f"{p}eligible_organization_types[{i}]", f"unknown value {kind.lstrip('#') or 0}")
    check_unique(v, p + "eligible_organization_types", content.eligible_organization_types)
    low = money(v, p + "amount_min", content.amount_min)
    high = money(v, p + "amount_max", content.amount_max)
    if low and high:
        if low.currency_code != high.currency_code:
            v.add(p + "amount_max.currency_code", "must be the currency of amount_min")
        elif _amount(high) < _amount(low):
            v.add(p + "amount_max", "must not be below amount_min")
    if content.deadline is None:
        v.add(p + "deadline", "is required")
    result = FundingContent(
        title=text(v, p + "title", content.title, maximum=TITLE_MAX, minimum=TITLE_MIN),
        description=text(
            v, p + "description", content.description, maximum=LONG_TEXT_MAX, multiline=True
        ),
        eligible_countries=countries(v, p + "eligible_countries", content.eligible_countries),
        eligible_organization_types=content.eligible_organization_types,
        sdgs=sdgs(v, p + "sdgs", content.sdgs),
        amount_min=low,
        amount_max=high,
        deadline=content.deadline,
        url=url(v, p + "url", content.url, required=True),
    )
    v.raise_if_any()
    return result


def validate_scores(
    scores: Sequence[CriterionScore], outcome: str, comment: str, prefix: str = "review"
) -> tuple[tuple[CriterionScore, ...], ReviewOutcome, str]:
    """The checklist (each criterion exactly once, scored 1-5 with a comment) and outcome."""
    v = Violations()
    p = f"{prefix}."
    decided = enum_value(v, p + "outcome", outcome, ReviewOutcome, required=True)
    seen: set[str] = set()
    cleaned = []
    for i, item in enumerate(scores[: len(Criterion) + 1]):
        path = f"{p}scores[{i}]"
        criterion = enum_value(v, path + ".criterion", item.criterion, Criterion, required=True)
        if criterion is not None:
            if criterion in seen:
                v.add(path + ".criterion", f"{criterion} is scored twice")
            seen.add(criterion)
        if not SCORE_MIN <= item.score <= SCORE_MAX:
            v.add(path + ".score", f"must be {SCORE_MIN} to {SCORE_MAX}")
        note = text(
            v, path + ".comment", item.comment, maximum=REASON_MAX, minimum=1, multiline=True
        )
        cleaned.append(CriterionScore(item.criterion, item.score, note))
    if len(scores) > len(Criterion):
        v.add(p + "scores", f"at most {len(Criterion)} items")
    missing = [c.value for c in Criterion if c not in seen]
    if missing:
        v.add(p + "scores", "every criterion must be scored; missing: " + ", ".join(missing))
    note = text(v, p + "comment", comment, maximum=5_000, multiline=True)
    v.raise_if_any()
    assert decided is not None
    return tuple(cleaned), decided, note


def reason(value: str, path: str = "reason", *, required: bool = False) -> str:
    """An optional (or required) reason of at most REASON_MAX characters."""
    v = Violations()
    cleaned = text(v, path, value, maximum=REASON_MAX, minimum=1 if required else 0, multiline=True)
    v.raise_if_any()
    return cleaned


def not_past(deadline: datetime, now: datetime, path: str) -> None:
    """ValidationError when deadline is not after now."""
    if deadline <= now:
        raise ValidationError.single(path, "must be in the future")
