"""Which subscriptions an item reaches: the rule itself, and the index keys that let the
index (``domain.index``) find the candidates without reading every subscription.

Each filter dimension is held as a list of index keys; an empty filter holds the wildcard key,
so "no SDG filter" and "SDG 6" are both found under the item's keys ``[6, 7, ANY]``. The index
yields candidates by those keys (a superset of the matches: keywords are not indexed) and
``matches`` decides.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from ssg.notifications.domain.model import CONTENT_TOPICS, Filters, Item, Subscription, Topic

ANY = "*"


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
        "org_key": [organization_id] if organization_id else [],
    }


def item_keys(item: Item) -> dict[str, list[str]]:
    """The keys a candidate subscription must hold one of, per dimension, for item."""
    if item.topic is Topic.MY_ORGANIZATION:
        return {"topic_keys": [str(int(Topic.MY_ORGANIZATION))], "org_key": [item.organization_id]}
    return {
        "topic_keys": [str(int(item.topic))],
        "sdg_keys": [*(str(s) for s in sorted(item.sdgs)), ANY],
        "region_keys": [*(str(r) for r in sorted(item.regions)), ANY],
        "country_keys": [*sorted(item.countries), ANY],
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
    if item.topic is Topic.MY_ORGANIZATION:
        return bool(item.organization_id) and spec.organization_id == item.organization_id
    return filters_match(spec.filters, item)


def filters_match(filters: Filters, item: Item) -> bool:
    """True when a content item passes every non-empty filter."""
    if item.topic not in CONTENT_TOPICS:
        return False
    return (
        _overlaps(filters.sdgs, item.sdgs)
        and _overlaps(filters.regions, item.regions)
        and _overlaps(filters.countries, item.countries)
        and keyword_matches(filters.keywords, f"{item.title}\n{item.summary}")
    )
