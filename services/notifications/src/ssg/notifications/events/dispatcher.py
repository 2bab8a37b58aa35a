"""The dispatcher: deliveries recorded by the matcher (the outbox of delivery work) are handed to
the RabbitMQ task queue with publisher confirms, then marked QUEUED.

A crash between the confirm and the mark hands the same task over again after the claim
lease; the delivery id travels as the message id and the idempotency key, so the result is
recorded once (see ADR 0031).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import timedelta

from prometheus_client import Counter

from ssg.notifications.domain.model import Delivery
from ssg.notifications.domain.tasks import DeliveryTask
from ssg.notifications.events.amqp import AmqpLink
from ssg.notifications.store.mongo import NotificationStore
from ssg.platform.clock import utc_now
from ssg.platform.mongo import run_sync

log = logging.getLogger(__name__)

DISPATCHED = Counter(
    "ssg_notifications_tasks_dispatched_total", "Delivery tasks handed to RabbitMQ.", ["channel"]
)
CLAIM_LEASE = timedelta(seconds=60)


def task_of(d: Delivery) -> DeliveryTask:
    """The task message of a delivery (first attempt)."""
    return DeliveryTask(
        delivery_id=d.id,
        subscription_id=d.subscription_id,
        channel=int(d.channel),
        address=d.address,
        subject=d.message.subject,
        text=d.message.text,
        html=d.message.html,
        body=d.message.body,
        event_type=d.event_type,
        event_time=d.event_time.timestamp(),
        unsubscribe_url=d.message.unsubscribe_url,
    )


class Dispatcher:
    """Moves pending deliveries onto the task queue."""

    def __init__(
        self, store: NotificationStore, link: AmqpLink, batch: int, idle_seconds: float
    ) -> None:
        self.store = store
        self.link = link
        self.batch = batch
        self.idle_seconds = idle_seconds
        self.healthy = True

    async def round(self) -> int:
        """Dispatch up to one batch; how many were handed over."""
        claimed = await run_sync(
            self.store.claim_pending, self.batch, uuid.uuid4().hex, utc_now(), CLAIM_LEASE
        )
        if not claimed:
            return 0
        await self.link.call(
            self.link.publish,
            self.link.topology.tasks,
            [(d.id, task_of(d).to_json()) for d in claimed],
        )
        await run_sync(self.store.mark_queued, [d.id for d in claimed], utc_now())
        for d in claimed:
            DISPATCHED.labels(d.channel.name.lower()).inc()
        return len(claimed)

    async def run(self, stop: asyncio.Event) -> None:
        """Dispatch until stop is set; a failed round is logged and retried after a pause."""
        failures = 0
        while not stop.is_set():
            try:
                moved = await self.round()
                self.healthy, failures = True, 0
            except Exception:
                failures += 1
                self.healthy = False
                log.exception("dispatching delivery tasks failed")
                moved = 0
            if moved < self.batch:
                pause = self.idle_seconds * min(2**failures, 50)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), pause)
