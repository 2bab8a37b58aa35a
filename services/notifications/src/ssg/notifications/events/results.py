"""The results consumer: every attempt the delivery workers make comes back on the results queue
(a message holds one result, or a JSON list of results the delivery process combined); each is
recorded on its delivery (the delivery log). A delivery whose last
attempt failed becomes FAILED and, in the same transaction, a ``DeliveryFailed`` event goes
to the outbox. Results are idempotent (attempts are keyed by number), so a redelivered
result writes nothing new."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from datetime import UTC, datetime
from typing import Any

from kombu.message import Message
from prometheus_client import Counter, Gauge
from pymongo.client_session import ClientSession

from ssg.notifications.domain.model import AttemptOutcome
from ssg.notifications.domain.tasks import AttemptResult, BadTask
from ssg.notifications.events.amqp import AmqpLink
from ssg.notifications.events.publisher import DeliveryEvents
from ssg.notifications.store.mongo import NotificationStore

log = logging.getLogger(__name__)

ATTEMPTS_RECORDED = Counter(
    "ssg_notifications_attempts_recorded_total",
    "Delivery attempts recorded in the delivery log, by outcome.",
    ["outcome"],
)
QUEUE_DEPTH = Gauge(
    "ssg_notifications_queue_depth", "Messages ready in a delivery queue.", ["queue"]
)


class ResultsRecorder:
    """Writes attempt results into the delivery log."""

    def __init__(self, store: NotificationStore, events: DeliveryEvents) -> None:
        self.store = store
        self.events = events

    def record(self, result: AttemptResult) -> None:
        """Record one result (and a DeliveryFailed event when it is the final failure)."""
        at = datetime.fromtimestamp(result.at, UTC)

        def transaction(session: ClientSession) -> None:
            delivery, failed_now = self.store.record_attempt(result, at, session=session)
            if delivery is not None and failed_now:
                event = self.events.delivery_failed(delivery)
                self.store.outbox.add(session, event.topic, event.envelope)

        with self.store.client.start_session() as session:
            session.with_transaction(transaction)
        ATTEMPTS_RECORDED.labels(AttemptOutcome(result.outcome).name.lower()).inc()

    def on_message(self, body: Any, message: Message) -> None:
        """kombu callback: record each result of the message (one, or a JSON list of them that
        the delivery process combined), then ack; a malformed result is logged and dropped."""
        for item in body if isinstance(body, list) else [body]:
            try:
                result = AttemptResult.from_json(item)
            except BadTask as exc:
                log.error("malformed attempt result dropped", extra={"error": str(exc)})
                continue
            self.record(result)
        message.ack()


class ResultsConsumer:
    """Runs the recorder on the results queue, reconnecting after failures."""

    def __init__(self, recorder: ResultsRecorder, link: AmqpLink) -> None:
        self.recorder = recorder
        self.link = link
        self.healthy = True

    def _ready(self) -> None:
        self.healthy = True

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until stop is set."""
        halt = threading.Event()
        waiter = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                work = asyncio.ensure_future(
                    self.link.call(
                        self.link.consume,
                        self.link.topology.results,
                        self.recorder.on_message,
                        halt,
                        50,
                        self._ready,
                    )
                )
                done, _ = await asyncio.wait({work, waiter}, return_when=asyncio.FIRST_COMPLETED)
                if waiter in done:
                    halt.set()
                    await asyncio.gather(work, return_exceptions=True)
                    return
                try:
                    work.result()
                except Exception:
                    self.healthy = False
                    log.exception("results consumer failed; reconnecting")
                    await asyncio.wait({waiter}, timeout=1.0)
        finally:
            waiter.cancel()


async def watch_queues(link: AmqpLink, stop: asyncio.Event, interval: float = 5.0) -> None:
    """Keep the queue-depth gauge current (tasks, results, dead letters)."""
    names = [link.topology.tasks, link.topology.results, link.topology.dlq]
    while not stop.is_set():
        for name in names:
            try:
                QUEUE_DEPTH.labels(name).set(await link.call(link.queue_depth, name))
            except Exception as exc:
                log.warning("queue depth unavailable", extra={"queue": name, "error": str(exc)})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
