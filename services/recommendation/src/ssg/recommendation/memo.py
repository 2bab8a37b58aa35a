"""MatchNeed results remembered per snapshot in each API process.

A match depends only on the need, k, whether the caller is signed in (members-only experts) and
what the snapshot holds: the item index, organizations, provider track records and experts. The
snapshot keeps those objects until they are reloaded (the index when the items' marker moved,
the others every ``signals_refresh_seconds``), so a remembered result is exact for as long as
the same objects are current. When any of them is replaced every entry is dropped: the memo only
ever holds references to the current objects (an old index is tens of MB at 20,000 items), and
compares them with ``is``, so a freed object's id cannot be mistaken for a current one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class SnapshotMemo(Generic[T]):
    """Results by key, valid while the snapshot objects they were computed on are current."""

    def __init__(self, max_entries: int = 1_000) -> None:
        self._max = max_entries
        self._lock = threading.Lock()
        self._basis: tuple[object, ...] = ()
        self._entries: OrderedDict[Hashable, T] = OrderedDict()

    def get(self, key: Hashable, basis: Sequence[object], compute: Callable[[], T]) -> T:
        """The result for key computed on basis (the snapshot objects it reads): remembered when
        computed on the same objects, else from compute (blocking: call via run_sync)."""
        with self._lock:
            if not _same(self._basis, basis):
                self._basis, self._entries = tuple(basis), OrderedDict()
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        result = compute()
        with self._lock:
            # A reload meanwhile makes the result stale for the new objects: not kept.
            if self._max > 0 and _same(self._basis, basis):
                self._entries[key] = result
                while len(self._entries) > self._max:
                    self._entries.popitem(last=False)
        return result

    def __len__(self) -> int:
        return len(self._entries)


def _same(held: Sequence[object], basis: Sequence[object]) -> bool:
    return len(held) == len(basis) and all(a is b for a, b in zip(held, basis, strict=True))
