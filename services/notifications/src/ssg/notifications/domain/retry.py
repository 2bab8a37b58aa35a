"""When a failed delivery attempt is tried again: capped exponential backoff, a fixed set of
delays so that each maps to one RabbitMQ delay queue (a per-queue TTL, no head-of-line wait)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """attempts in all; the wait after failed attempt n is base * multiplier**(n-1), capped."""

    attempts: int = 5
    base_ms: int = 1000
    multiplier: int = 4
    max_ms: int = 15 * 60 * 1000

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.base_ms < 1 or self.multiplier < 1:
            raise ValueError("attempts, base_ms and multiplier must be positive")

    def delay_ms(self, failed_attempt: int) -> int | None:
        """Milliseconds before the next attempt after failed_attempt; None when it was the last."""
        if failed_attempt < 1:
            raise ValueError("attempts are numbered from 1")
        if failed_attempt >= self.attempts:
            return None
        return int(min(self.max_ms, self.base_ms * self.multiplier ** (failed_attempt - 1)))

    def delays_ms(self) -> list[int]:
        """Every delay in use (one delay queue each)."""
        return sorted({d for n in range(1, self.attempts) if (d := self.delay_ms(n)) is not None})
