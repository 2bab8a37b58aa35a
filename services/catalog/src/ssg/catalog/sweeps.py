"""The periodic sweep every API replica runs: flag stale solutions, close expired funding.

Replicas need no coordination: each change is conditional on the version it read, in its own
transaction, so when two replicas reach the same record only one changes it and emits.
"""

from __future__ import annotations

import asyncio
import logging

from ssg.catalog.service import CatalogService
from ssg.platform.process import every

log = logging.getLogger(__name__)


async def sweep_forever(
    service: CatalogService, interval_seconds: float, batch: int, stop: asyncio.Event
) -> None:
    """Sweep every interval until stop is set; a failed round is logged and tried again."""

    async def one_round() -> None:
        flagged, closed = batch, batch
        # Keep going while full batches come back: a backlog drains in one round.
        while (flagged == batch or closed == batch) and not stop.is_set():
            flagged, closed = await service.sweep(batch)
            if flagged or closed:
                log.info("catalog sweep", extra={"stale": flagged, "funding_closed": closed})

    await every(interval_seconds, one_round, stop, log=log, failure="catalog sweep failed")
