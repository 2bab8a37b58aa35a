"""``python -m ssg.notifications.worker``: the asyncio side of delivery.

Runs, beside each other until SIGTERM/SIGINT:
* the matcher (an idempotent consumer of catalog, registration and match events),
* the dispatcher (pending deliveries -> RabbitMQ task queue, publisher confirms),
* the results consumer (attempt results -> delivery log, DeliveryFailed -> outbox),
* the digest and funding-deadline reminder sweeps and the queue-depth gauge,
with /metrics and /healthz on SSG_METRICS_PORT. Any number of replicas may run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

from pymongo import MongoClient

from ssg.notifications.bootstrap import signing_key
from ssg.notifications.domain.retry import Backoff
from ssg.notifications.domain.signing import unsubscribe_token
from ssg.notifications.events.amqp import AmqpLink
from ssg.notifications.events.deadlines import FundingReminders
from ssg.notifications.events.digests import sweep_digests
from ssg.notifications.events.dispatcher import Dispatcher
from ssg.notifications.events.items import CONSUMED_TOPICS
from ssg.notifications.events.matcher import Matcher
from ssg.notifications.events.publisher import DeliveryEvents
from ssg.notifications.events.results import ResultsConsumer, ResultsRecorder, watch_queues
from ssg.notifications.queues import Topology
from ssg.notifications.settings import NotificationsSettings
from ssg.notifications.store.feed import IndexFeed
from ssg.notifications.store.mongo import NotificationStore
from ssg.platform.events.consumer import EventConsumer, ProcessedEvents
from ssg.platform.events.envelope import Origin
from ssg.platform.events.topics import ensure_topics
from ssg.platform.metrics import start_metrics_server, stop_metrics_server
from ssg.platform.mongo import Doc, default_database, make_client, run_sync
from ssg.platform.process import every, run_process
from ssg.platform.settings import ConfigError, load_settings

log = logging.getLogger("ssg.notifications.worker")


def topology(settings: NotificationsSettings) -> Topology:
    """The queue names and retry delays the settings describe."""
    return Topology(
        settings.queue_prefix, tuple(backoff(settings).delays_ms()), settings.queue_type
    )


def backoff(settings: NotificationsSettings) -> Backoff:
    """The retry schedule of delivery attempts."""
    return Backoff(
        settings.retry_attempts,
        settings.retry_base_ms,
        settings.retry_multiplier,
        settings.retry_max_ms,
    )


def unsubscribe_links(settings: NotificationsSettings) -> Callable[[str], str]:
    """subscription id -> its one-click unsubscribe link."""
    key = signing_key(settings)
    return lambda sid: settings.unsubscribe_url(unsubscribe_token(key, sid))


@dataclass
class Worker:
    """Every part of the worker process, wired."""

    settings: NotificationsSettings
    client: MongoClient[Doc]
    store: NotificationStore
    consumer: EventConsumer
    dispatcher: Dispatcher
    results: ResultsConsumer
    feed: IndexFeed
    reminders: FundingReminders
    links: list[AmqpLink] = field(default_factory=list)

    def healthy(self) -> bool:
        """True while the dispatcher and the results consumer reach their dependencies."""
        return self.dispatcher.healthy and self.results.healthy

    def close(self) -> None:
        """Release the connections."""
        for link in self.links:
            link.close()
        self.feed.close()
        self.client.close()


def build_worker(settings: NotificationsSettings) -> Worker:
    """Wire the worker on MongoDB, Kafka and RabbitMQ from settings."""
    for name in ("mongodb_uri", "kafka_bootstrap", "amqp_url"):
        if not getattr(settings, name):
            raise ConfigError(f"invalid configuration: SSG_{name.upper()}: required")
    client = make_client(settings)
    store = NotificationStore(client, default_database(client))
    links = unsubscribe_links(settings)
    feed = IndexFeed(store)
    reminders = FundingReminders(
        store, feed, settings.public_base_url, links, timedelta(days=settings.funding_reminder_days)
    )
    matcher = Matcher(store, feed, settings.public_base_url, links, reminders)
    consumer = EventConsumer(
        settings,
        group_id=settings.matcher_group,
        topics=CONSUMED_TOPICS,
        handlers=matcher.handlers(),
        processed=ProcessedEvents(store.db, settings.matcher_group),
    )
    topo = topology(settings)
    tasks_link = AmqpLink(settings.amqp_url, topo, "amqp-tasks")
    results_link = AmqpLink(settings.amqp_url, topo, "amqp-results")
    dispatcher = Dispatcher(
        store, tasks_link, settings.dispatch_batch, settings.dispatch_idle_seconds
    )
    events = DeliveryEvents(Origin(settings.service, settings.instance, settings.instance_id))
    results = ResultsConsumer(ResultsRecorder(store, events), results_link)
    return Worker(
        settings,
        client,
        store,
        consumer,
        dispatcher,
        results,
        feed,
        reminders,
        [tasks_link, results_link],
    )


async def sweeps(worker: Worker, links: Callable[[str], str]) -> None:
    """One round of the periodic sweeps: due digests, then due funding reminders."""
    await run_sync(sweep_digests, worker.store, links)
    await run_sync(worker.reminders.sweep)


async def run_worker(worker: Worker, stop: asyncio.Event) -> None:
    """Run every part until stop is set (then stop the consumer and wait for all)."""
    settings = worker.settings
    await run_sync(worker.store.ensure_indexes)
    await run_sync(worker.feed.catch_up)
    await ensure_topics(settings.kafka_bootstrap, CONSUMED_TOPICS)
    parts = [
        asyncio.create_task(worker.consumer.run()),
        asyncio.create_task(worker.dispatcher.run(stop)),
        asyncio.create_task(worker.results.run(stop)),
        asyncio.create_task(watch_queues(worker.dispatcher.link, stop)),
    ]
    if settings.digest_interval_seconds > 0:
        links = unsubscribe_links(settings)
        parts.append(
            asyncio.create_task(
                every(
                    settings.digest_interval_seconds,
                    partial(sweeps, worker, links),
                    stop,
                    log=log,
                    failure="digest or reminder sweep failed",
                )
            )
        )
    stopped = asyncio.create_task(stop.wait())
    failure: BaseException | None = None
    try:
        # A part that ends on its own (the consumer lost Kafka for good, a bug) ends the
        # process with its error, so that its supervisor restarts it rather than leaving it
        # half alive.
        done, _ = await asyncio.wait([stopped, *parts], return_when=asyncio.FIRST_COMPLETED)
        for part in done - {stopped}:
            failure = failure or part.exception()
            # Parts that watch stop may finish before the stop.wait() task has run.
            if failure is None and stop.is_set():
                continue
            if failure is None:
                failure = RuntimeError("a worker part ended before the worker was stopped")
            log.error("worker part ended", exc_info=failure)
    finally:
        stopped.cancel()
        stop.set()
        worker.consumer.request_stop()
        for part in parts:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await part
    if failure is not None:
        raise failure


async def serve(worker: Worker) -> None:
    """Run until SIGTERM/SIGINT, serving /metrics and /healthz meanwhile."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    settings = worker.settings
    port = start_metrics_server(
        settings.metrics_host, settings.metrics_port, healthy=worker.healthy
    )
    try:
        await run_worker(worker, stop)
    finally:
        if port is not None:
            stop_metrics_server(port)


def main() -> int:
    """Entry point; exit status 2 on bad configuration."""
    return run_process(lambda: build_worker(load_settings(NotificationsSettings)), serve)


if __name__ == "__main__":
    sys.exit(main())
