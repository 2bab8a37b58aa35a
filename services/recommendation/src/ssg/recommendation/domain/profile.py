"""Interest profiles: what a person or organization cares about, learnt from interactions.

An interaction with an item adds the interaction's weight (``INTERACTION_WEIGHTS``) to each of
the item's features (its SDGs, targets, regions, countries, kind) and to the item itself, all
decaying with one half-life (``decay``), so recent interests outweigh old ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ssg.recommendation.domain.decay import boosted, value_at
from ssg.recommendation.domain.model import INTERACTION_WEIGHTS, InteractionKind, Item

DEFAULT_HALF_LIFE = timedelta(days=30)
# Prefixes of profile features.
SDG, TARGET, REGION, COUNTRY, KIND = "sdg", "target", "region", "country", "kind"


def user_key(user_id: str) -> str:
    """Profile key of a person."""
    return f"user:{user_id}"


def organization_key(organization_id: str) -> str:
    """Profile key of an organization."""
    return f"org:{organization_id}"


def feature(prefix: str, value: str | int) -> str:
    """A feature name; dots become '-' so it is usable as a MongoDB field name."""
    return f"{prefix}:{str(value).replace('.', '-')}"


def item_features(item: Item) -> list[str]:
    """The features an interaction with item strengthens."""
    return [
        *(feature(SDG, g) for g in item.sdgs),
        *(feature(TARGET, t) for t in item.targets),
        *(feature(REGION, r) for r in item.regions),
        *(feature(COUNTRY, c) for c in item.countries),
        feature(KIND, item.kind.value),
    ]


@dataclass(frozen=True)
class ProfileDelta:
    """The stored (boosted) increments one interaction makes to a profile."""

    features: dict[str, float]
    item_id: str
    item_weight: float
    kind: InteractionKind


def interaction_delta(
    item: Item, kind: InteractionKind, at: datetime, half_life: timedelta = DEFAULT_HALF_LIFE
) -> ProfileDelta:
    """What an interaction of kind with item at at adds to a profile."""
    weight = boosted(INTERACTION_WEIGHTS[kind], at, half_life)
    return ProfileDelta({f: weight for f in item_features(item)}, item.id, weight, kind)


@dataclass(frozen=True)
class Profile:
    """A profile read at one moment: decayed weights of features and items, and what was seen."""

    key: str
    features: Mapping[str, float] = field(default_factory=dict)
    items: Mapping[str, float] = field(default_factory=dict)
    # The strongest interaction with each item, for explanations ("you saved").
    strongest: Mapping[str, InteractionKind] = field(default_factory=dict)
    seen: frozenset[str] = frozenset()
    # The organization the person last acted for (theirs, for regional signals); "" if none.
    organization_id: str = ""

    @property
    def cold(self) -> bool:
        """True when nothing was learnt yet."""
        return not self.items

    def shares(self, prefix: str) -> dict[str, float]:
        """Each value of a feature family with its share of the family's weight (sums to 1)."""
        start = f"{prefix}:"
        values = {k[len(start) :]: w for k, w in self.features.items() if k.startswith(start)}
        total = sum(values.values())
        return {v: w / total for v, w in values.items()} if total > 0 else {}

    @classmethod
    def read(
        cls,
        key: str,
        stored_features: Mapping[str, float],
        stored_items: Mapping[str, float],
        strongest: Mapping[str, InteractionKind],
        seen: frozenset[str],
        now: datetime,
        half_life: timedelta = DEFAULT_HALF_LIFE,
        organization_id: str = "",
    ) -> Profile:
        """A profile from its stored sums, decayed to now."""
        return cls(
            key,
            {k: value_at(v, now, half_life) for k, v in stored_features.items()},
            {k: value_at(v, now, half_life) for k, v in stored_items.items()},
            dict(strongest),
            seen,
            organization_id,
        )


def stronger(a: InteractionKind | None, b: InteractionKind) -> InteractionKind:
    """The interaction kind that says more (b when a is None)."""
    if a is None or INTERACTION_WEIGHTS[b] > INTERACTION_WEIGHTS[a]:
        return b
    return a
