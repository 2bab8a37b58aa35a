"""Event ids forwarded recently by this process: a repeat is acknowledged without producing.

This is a per-process, bounded memory (the bridge has no datastore). The guarantee across
replicas and restarts is the event id itself: derived from producer + message id, a repeat
that does reach Kafka carries the same event_id and idempotent consumers drop it (ADR 0020).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from nameko.extensions import DependencyProvider

from ssg.ingress.config import SETTINGS_KEY


class RecentIds:
    """A bounded, least-recently-seen-first set of ids."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, event_id: object) -> bool:
        with self._lock:
            if event_id in self._ids:
                self._ids.move_to_end(str(event_id))
                return True
            return False

    def add(self, event_id: str) -> None:
        """Remember event_id, forgetting the oldest beyond capacity."""
        if self._capacity == 0:
            return
        with self._lock:
            self._ids[event_id] = None
            self._ids.move_to_end(event_id)
            while len(self._ids) > self._capacity:
                self._ids.popitem(last=False)

    def claim(self, event_id: str) -> bool:
        """Remember event_id and return True, or False when it is already remembered.

        Claiming before producing (not after) also catches a repeat that arrives while the
        first copy is still on its way to Kafka; ``release`` undoes a claim whose produce failed.
        """
        with self._lock:
            if event_id in self._ids:
                self._ids.move_to_end(event_id)
                return False
        self.add(event_id)
        return self._capacity == 0 or event_id in self._ids

    def release(self, event_id: str) -> None:
        """Forget event_id (its produce failed: a redelivery must be produced)."""
        with self._lock:
            self._ids.pop(event_id, None)

    def __len__(self) -> int:
        return len(self._ids)


class RecentMessages(DependencyProvider):
    """Gives workers the process's recent ids."""

    def setup(self) -> None:
        """Size the memory from the settings."""
        self.ids = RecentIds(self.container.config[SETTINGS_KEY].recent_ids)

    def get_dependency(self, worker_ctx: object) -> RecentIds:
        """The recent ids."""
        return self.ids
