"""The worker's sweep of stored recommendation lists behind the catalog (ADR 0054).

A stored list is served only while the items changed at most the tolerance after it was
computed; on a catalog that changes all the time lists would otherwise fall back to the
computed path until their person interacts again. Every interval, the replica holding the
sweep's lease (MongoDB, the platform's ``Lease``) recomputes the lists whose items' marker is
more than ``behind_seconds`` behind its snapshot, most recently active profiles first, a batch
at a time with a pause between batches so the consumer's handlers (same process, same Mongo
thread pool) are not starved. Each write is conditional on the list read, so a list the
interaction path stored meanwhile for a newer profile is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from prometheus_client import Counter, Gauge

from ssg.platform.events.relay import Lease
from ssg.platform.mongo import run_sync
from ssg.platform.process import every
from ssg.recommendation.personal import PersonalLists

log = logging.getLogger(__name__)

LEASE_NAME = "recommendation:list-sweep"

SWEPT = Counter(
    "ssg_recommendation_lists_swept",
    "Stored recommendation lists recomputed (or dropped) by the sweep after an items change",
)
BEHIND = Gauge(
    "ssg_recommendation_lists_behind",
    "Stored recommendation lists behind the items' marker by more than the sweep's lag",
)


@dataclass(frozen=True)
class Round:
    """What one sweep round did."""

    held: bool
    found: int = 0
    rewritten: int = 0
    batches: int = 0


class ListSweep:
    """Recomputes stored lists behind the items' marker while holding the sweep's lease."""

    def __init__(
        self,
        lists: PersonalLists,
        lease: Lease,
        *,
        batch: int = 50,
        behind_seconds: float = 300.0,
        pause_seconds: float = 0.2,
    ) -> None:
        self.lists = lists
        self.lease = lease
        self.batch = batch
        self.behind_ns = int(behind_seconds * 1e9)
        self.pause_seconds = pause_seconds

    def threshold(self) -> int:
        """Blocking: lists computed on a marker older than this are swept (0: none)."""
        marker = self.lists.cache.current().marker
        return max(marker - self.behind_ns, 0)

    def sweep_batch(self) -> tuple[int, int]:
        """Blocking: one batch, (lists found behind, lists rewritten)."""
        stale = self.lists.store.stale_recommendations(self.threshold(), self.batch)
        return len(stale), self.lists.recompute(stale) if stale else 0

    async def one_round(self, stop: asyncio.Event) -> Round:
        """Sweep batches until none is full (or stop, or the lease is lost); nothing when
        another replica holds the lease."""
        if not await run_sync(self.lease.acquire):
            return Round(held=False)
        started = time.monotonic()
        try:
            behind = await run_sync(self._count_behind)
            found = rewritten = batches = 0
            while not stop.is_set():
                got, done = await run_sync(self.sweep_batch)
                found, rewritten, batches = found + got, rewritten + done, batches + 1
                SWEPT.inc(done)
                # A batch that rewrote nothing (all changed meanwhile) must not spin.
                if got < self.batch or done == 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.pause_seconds)
                if not await run_sync(self.lease.acquire):
                    log.warning("list sweep lease lost; stopping the round")
                    break
            left = await run_sync(self._count_behind)
        finally:
            await run_sync(self.lease.release)
        if found or behind:
            log.info(
                "list sweep",
                extra={
                    "behind": behind,
                    "rewritten": rewritten,
                    "left": left,
                    "batches": batches,
                    "seconds": round(time.monotonic() - started, 3),
                },
            )
        return Round(True, found, rewritten, batches)

    def _count_behind(self) -> int:
        count = self.lists.store.count_stale_recommendations(self.threshold())
        BEHIND.set(count)
        return count


async def sweep_forever(sweep: ListSweep, interval_seconds: float, stop: asyncio.Event) -> None:
    """Sweep every interval until stop is set; a failed round is logged and tried again."""

    async def round_() -> None:
        await sweep.one_round(stop)

    await every(interval_seconds, round_, stop, log=log, failure="list sweep failed")
