"""A per-recipient rate limit: at most n messages per address in any sliding minute, per
delivery process (a task over the limit waits in a delay queue instead of being sent)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class RecipientLimiter:
    """Sliding-window counts per address."""

    def __init__(
        self, per_minute: int, clock: Callable[[], float] = time.monotonic, window: float = 60.0
    ) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self.window = window
        self._sent: dict[str, deque[float]] = {}

    def allow(self, address: str) -> bool:
        """True (and counted) when address may receive one more message now."""
        now = self.clock()
        times = self._sent.setdefault(address.lower(), deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) >= self.per_minute:
            return False
        times.append(now)
        if len(self._sent) > 100_000:
            # Forget idle addresses now and then so the table stays bounded.
            self._sent = {a: t for a, t in self._sent.items() if t and t[-1] > now - self.window}
        return True
