"""The periodic verification-expiry sweep, run by every API replica.

Replicas need no coordination: each flag is a conditional change in its own transaction
(``RegistrationService.expire_verification``), so when two replicas reach the same organization
only the first one changes it and emits VerificationExpired; the other finds it no longer due.
"""

from __future__ import annotations

import asyncio
import logging

from ssg.platform.process import every
from ssg.registration.service import RegistrationService

log = logging.getLogger(__name__)


async def sweep_forever(
    service: RegistrationService, interval_seconds: float, batch: int, stop: asyncio.Event
) -> None:
    """Flag lapsed verifications every interval until stop is set; errors are logged, retried."""

    async def one_round() -> None:
        flagged = batch
        # Keep going while full batches come back: a backlog drains in one round.
        while flagged == batch and not stop.is_set():
            flagged = await service.expire_verifications(batch)
            if flagged:
                log.info("verifications expired", extra={"organizations": flagged})

    await every(
        interval_seconds, one_round, stop, log=log, failure="verification expiry sweep failed"
    )
