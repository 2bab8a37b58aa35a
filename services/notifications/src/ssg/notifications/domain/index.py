"""An in-memory inverted index of the active subscriptions: for each matching dimension, the
ids of the subscriptions holding each index key (``matching.subscription_keys``). An item's
candidates are the ids holding one of its keys in every dimension (found from the dimension
with the fewest ids); ``matches`` then decides (keywords, topics). The cost is the size of that
smallest dimension, not the number of subscriptions."""

from __future__ import annotations

from ssg.notifications.domain.matching import item_keys, matches, subscription_keys
from ssg.notifications.domain.model import Item, Subscription


class SubscriptionIndex:
    """Active subscriptions by index key."""

    def __init__(self) -> None:
        self._subs: dict[str, Subscription] = {}
        self._keys: dict[str, list[tuple[str, str]]] = {}
        self._postings: dict[tuple[str, str], set[str]] = {}

    def __len__(self) -> int:
        return len(self._subs)

    def put(self, sub: Subscription) -> None:
        """Add or replace a subscription (an inactive one is removed)."""
        current = self._subs.get(sub.id)
        if current is not None and current.version > sub.version:
            return  # an older state arriving late
        self.remove(sub.id)
        if not sub.active:
            return
        keys = [
            (dim, key)
            for dim, values in subscription_keys(sub.spec.filters, sub.spec.organization_id).items()
            for key in values
        ]
        self._subs[sub.id] = sub
        self._keys[sub.id] = keys
        for posting in keys:
            self._postings.setdefault(posting, set()).add(sub.id)

    def remove(self, subscription_id: str) -> None:
        """Forget a subscription (no-op when absent)."""
        if self._subs.pop(subscription_id, None) is None:
            return
        for posting in self._keys.pop(subscription_id, []):
            ids = self._postings.get(posting)
            if ids is not None:
                ids.discard(subscription_id)
                if not ids:
                    del self._postings[posting]

    def candidates(self, item: Item) -> list[Subscription]:
        """Subscriptions holding one of item's keys in every dimension (a superset of the
        matches): the union of the postings of the dimension with the fewest ids, narrowed by
        each other dimension's postings."""
        dimensions: list[tuple[int, list[set[str]]]] = []
        for dim, keys in item_keys(item).items():
            postings = [p for key in keys if (p := self._postings.get((dim, key)))]
            size = sum(len(p) for p in postings)
            if size == 0:
                return []
            dimensions.append((size, postings))
        dimensions.sort(key=lambda d: d[0])
        found: set[str] = set().union(*dimensions[0][1])
        for _, postings in dimensions[1:]:
            # Set intersections run in C and cost the smaller side: no large union is built.
            kept: set[str] = set()
            for posting in postings:
                kept |= found & posting
            found = kept
            if not found:
                return []
        return [self._subs[i] for i in found]

    def match(self, item: Item) -> list[Subscription]:
        """The subscriptions that follow item."""
        return [s for s in self.candidates(item) if matches(s, item)]
