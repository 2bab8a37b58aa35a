"""Which subscriptions an item reaches: the rule itself, and the index keys that let the
index (``domain.index``) find the candidates without reading every subscription.

Each filter dimension is held as a list of index keys; an empty filter holds the wildcard key,
so "no SDG filter" and "SDG 6" are both found under the item's keys ``[6, 7, ANY]``. The index
yields candidates by those keys (a superset of the matches: keywords are not indexed) and
``matches`` decides.

SDG targets (ADR 0034): a subscription's target "6.1" is held under "6.1" and "goal:6". An item
tagged with targets is looked up by them; an item tagged with goals only (needs, funding,
knowledge products) by "goal:<n>" of each goal, so "6.1" reaches it when it is about SDG 6.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from ssg.notifications.domain.model import (
    CONTENT_TOPICS,
    ORGANIZATION_TOPICS,
    Filters,
    Item,
    Subscription,
)
from ssg.platform.reference.sdg import goal_of_target

ANY = "*"


def _goal_key(goal: int) -> str:
    return f"goal:{goal}"


def _target_keys(targets: frozenset[str]) -> list[str]:
    goals = {_goal_key(goal_of_target(t)) for t in targets}
    return _keys([*targets, *goals])


def _item_target_keys(item: Item) -> list[str]:
    if item.sdg_targets:
        return [*sorted(item.sdg_targets), ANY]
    return [*(_goal_key(s) for s in sorted(item.sdgs)), ANY]


def _keys(values: Iterable[object]) -> list[str]:
    keys = sorted(str(v) for v in values)
    return keys or [ANY]


def subscription_keys(filters: Filters, organization_id: str) -> dict[str, list[str]]:
    """The index keys stored with a subscription, per dimension."""
    return {
        "topic_keys": sorted(str(int(t)) for t in filters.topics),
        "sdg_keys": _keys(filters.sdgs),
        "region_keys": _keys(filters.regions),
        "country_keys": _keys(filters.countries),
        "target_keys": _target_keys(filters.sdg_targets),
        "org_key": [organization_id] if organization_id else [],
    }


def item_keys(item: Item) -> dict[str, list[str]]:
    """The keys a candidate subscription must hold one of, per dimension, for item."""
    if item.topic in ORGANIZATION_TOPICS:
        return {"topic_keys": [str(int(item.topic))], "org_key": [item.organization_id]}
    return {
        "topic_keys": [str(int(item.topic))],
        "sdg_keys": [*(str(s) for s in sorted(item.sdgs)), ANY],
        "region_keys": [*(str(r) for r in sorted(item.regions)), ANY],
        "country_keys": [*sorted(item.countries), ANY],
        "target_keys": _item_target_keys(item),
    }


def _overlaps(wanted: frozenset[Any], present: frozenset[Any]) -> bool:
    return not wanted or not wanted.isdisjoint(present)


def keyword_matches(keywords: Iterable[str], text: str) -> bool:
    """True when any keyword occurs in text as a whole word (or phrase), ignoring case."""
    words = list(keywords)
    if not words:
        return True
    lowered = text.casefold()
    return any(_word(k).search(lowered) for k in words)


@lru_cache(maxsize=4096)
def _word(keyword: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w){re.escape(keyword.casefold())}(?!\w)")


def matches(subscription: Subscription, item: Item) -> bool:
    """True when an active subscription follows what item is about."""
    if not subscription.active:
        return False
    spec = subscription.spec
    if item.topic not in spec.filters.topics:
        return False
    if item.topic in ORGANIZATION_TOPICS:
        return bool(item.organization_id) and spec.organization_id == item.organization_id
    return filters_match(spec.filters, item)


def targets_match(targets: frozenset[str], item: Item) -> bool:
    """True when a target filter admits item: one of its targets, or, for an item tagged with
    goals only, one of its goals."""
    if not targets:
        return True
    if item.sdg_targets:
        return not targets.isdisjoint(item.sdg_targets)
    return any(goal_of_target(t) in item.sdgs for t in targets)


def filters_match(filters: Filters, item: Item) -> bool:
    """True when a content item passes every non-empty filter."""
    if item.topic not in CONTENT_TOPICS:
        return False
    return (
        _overlaps(filters.sdgs, item.sdgs)
        and _overlaps(filters.regions, item.regions)
        and _overlaps(filters.countries, item.countries)
        and targets_match(filters.sdg_targets, item)
        and keyword_matches(filters.keywords, f"{item.title}\n{item.summary}")
    )
