"""Checks on what a caller sends, every violation named by its field (``subscription.<x>``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ssg.notifications.domain.model import (
    ORGANIZATION_TOPICS,
    Channel,
    Filters,
    Frequency,
    SubscriptionInput,
    Topic,
)
from ssg.notifications.domain.targets import TargetRefused, literal_host_refusal, parse_url
from ssg.platform.errors import Violations
from ssg.platform.reference.geography import is_country
from ssg.platform.reference.sdg import TARGETS
from ssg.platform.validation import check_id, check_unique, is_language

EMAIL_MAX = 254
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
KEYWORDS_MAX = 20
KEYWORD_MAX = 60
LIST_MAX = 50
SDG_COUNT = 17
REGION_COUNT = 7
PREFIX = "subscription"


@dataclass(frozen=True)
class RawSubscription:
    """A subscription as received: enum numbers and strings, not yet checked."""

    channel: int
    address: str
    topics: list[int]
    sdgs: list[int]
    regions: list[int]
    countries: list[str]
    keywords: list[str]
    frequency: int
    language: str
    organization_id: str = ""
    sdg_targets: list[str] = field(default_factory=list)


def _field(name: str) -> str:
    return f"{PREFIX}.{name}"


def _check_address(v: Violations, channel: int, address: str, allow_loopback: bool) -> None:
    path = _field("address")
    if not address:
        v.add(path, "is required")
    elif channel == Channel.EMAIL:
        if len(address) > EMAIL_MAX or not _EMAIL.fullmatch(address):
            v.add(path, "is not a valid e-mail address")
    elif channel == Channel.WEBHOOK:
        try:
            target = parse_url(address)
        except TargetRefused as exc:
            v.add(path, str(exc))
            return
        if reason := literal_host_refusal(target.host, allow_loopback=allow_loopback):
            v.add(path, f"webhook host {reason}")


def _check_lists(v: Violations, raw: RawSubscription) -> None:
    for name, values in (
        ("topics", raw.topics),
        ("sdgs", raw.sdgs),
        ("regions", raw.regions),
        ("countries", raw.countries),
        ("keywords", raw.keywords),
        ("sdg_targets", raw.sdg_targets),
    ):
        if len(values) > LIST_MAX:
            v.add(_field(name), f"must hold at most {LIST_MAX} values")
        check_unique(v, _field(name), values)
    if not raw.topics:
        v.add(_field("topics"), "must name at least one topic")
    for i, t in enumerate(raw.topics):
        v.check(t in Topic._value2member_map_, _field(f"topics[{i}]"), "is not a known topic")
    for i, s in enumerate(raw.sdgs):
        v.check(1 <= s <= SDG_COUNT, _field(f"sdgs[{i}]"), "is not an SDG (1-17)")
    for i, r in enumerate(raw.regions):
        v.check(1 <= r <= REGION_COUNT, _field(f"regions[{i}]"), "is not a known region")
    for i, c in enumerate(raw.countries):
        v.check(is_country(c), _field(f"countries[{i}]"), "is not an ISO 3166-1 alpha-3 code")
    for i, code in enumerate(raw.sdg_targets):
        v.check(
            code in TARGETS,
            _field(f"sdg_targets[{i}]"),
            "is not an SDG target (e.g. '6.1', '14.a')",
        )
    if len(raw.keywords) > KEYWORDS_MAX:
        v.add(_field("keywords"), f"must hold at most {KEYWORDS_MAX} keywords")
    for i, k in enumerate(raw.keywords):
        if not k.strip():
            v.add(_field(f"keywords[{i}]"), "must not be blank")
        elif len(k) > KEYWORD_MAX:
            v.add(_field(f"keywords[{i}]"), f"must be at most {KEYWORD_MAX} characters")


def validate_subscription(
    raw: RawSubscription, *, allow_loopback: bool = False
) -> SubscriptionInput:
    """The checked subscription; ValidationError naming every bad field otherwise."""
    v = Violations()
    if raw.channel not in Channel._value2member_map_:
        v.add(_field("channel"), "must be CHANNEL_EMAIL or CHANNEL_WEBHOOK")
    _check_address(v, raw.channel, raw.address, allow_loopback)
    _check_lists(v, raw)
    if raw.frequency not in Frequency._value2member_map_:
        v.add(_field("frequency"), "must be INSTANT, DAILY or WEEKLY")
    if not raw.language:
        v.add(_field("language"), "is required")
    elif not is_language(raw.language):
        v.add(_field("language"), "is not an ISO 639-1 code")
    check_id(v, _field("organization_id"), raw.organization_id, required=False)
    for t in sorted(ORGANIZATION_TOPICS & set(raw.topics)):
        if not raw.organization_id:
            v.add(_field("organization_id"), f"is required for TOPIC_{Topic(t).name}")
            break
    v.raise_if_any()
    return SubscriptionInput(
        channel=Channel(raw.channel),
        address=raw.address,
        filters=Filters(
            topics=frozenset(Topic(t) for t in raw.topics),
            sdgs=frozenset(raw.sdgs),
            regions=frozenset(raw.regions),
            countries=frozenset(raw.countries),
            keywords=tuple(k.strip() for k in raw.keywords),
            sdg_targets=frozenset(raw.sdg_targets),
        ),
        frequency=Frequency(raw.frequency),
        language=raw.language,
        organization_id=raw.organization_id,
    )
