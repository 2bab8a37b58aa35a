"""The ``python -m ...`` of an event consumer process: its ``EventConsumer`` (or several side
by side, each its own consumer group) run until SIGTERM/SIGINT (then each finishes its message,
commits and leaves its group), with /metrics.

Any number of replicas may run: each consumer group shares its partitions. Periodic tasks
(``WorkerParts.tasks``, e.g. a sweep) run beside the consumers until the same stop.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from pymongo import MongoClient
from pymongo.database import Database

from ssg.platform.events.consumer import EventConsumer
from ssg.platform.events.topics import ensure_topics
from ssg.platform.metrics import start_metrics_server, stop_metrics_server
from ssg.platform.mongo import Doc, default_database, make_client
from ssg.platform.process import PeriodicTask, run_process
from ssg.platform.settings import ConfigError, PlatformSettings, load_settings

S = TypeVar("S", bound=PlatformSettings)


@dataclass(frozen=True)
class WorkerParts:
    """What a worker process runs: its consumers and periodic tasks beside them."""

    consumers: Sequence[EventConsumer]
    tasks: Sequence[PeriodicTask] = ()


async def run_consumer(
    settings: PlatformSettings, *consumers: EventConsumer, tasks: Sequence[PeriodicTask] = ()
) -> None:
    """Run consumers (and tasks) side by side until SIGTERM/SIGINT, serving /metrics meanwhile,
    then leave their groups; when a consumer ends on an error the others and the tasks are
    stopped too and the error raised."""
    stop = asyncio.Event()

    def stop_all() -> None:
        stop.set()
        for consumer in consumers:
            consumer.request_stop()

    async def run_one(consumer: EventConsumer) -> None:
        try:
            await consumer.run()
        finally:
            stop_all()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_all)
    metrics_port = start_metrics_server(settings.metrics_host, settings.metrics_port)
    try:
        # Not a TaskGroup: its cancel would cut the others' last message short.
        results = await asyncio.gather(
            *map(run_one, consumers), *(task(stop) for task in tasks), return_exceptions=True
        )
    finally:
        if metrics_port is not None:
            stop_metrics_server(metrics_port)
    for result in results:
        if isinstance(result, BaseException):
            raise result


@dataclass
class _Worker(Generic[S]):
    settings: S
    client: MongoClient[Doc]
    db: Database[Doc]

    def close(self) -> None:
        self.client.close()


def worker_main(
    settings_type: type[S],
    consumer: Callable[[S, Database[Doc]], EventConsumer | Sequence[EventConsumer] | WorkerParts],
    *,
    topics: Sequence[str] = (),
) -> int:
    """Entry point of a consumer process (one or several consumers, run side by side, or
    ``WorkerParts`` with periodic tasks) on the service's MongoDB; exit status 2 on bad configuration (SSG_KAFKA_BOOTSTRAP is required,
    SSG_MONGODB_URI must name a database).

    topics are created when missing before the consumer is built (partition count 1, the
    floor: a topic another service owns should already exist with its own count).
    """

    def build() -> _Worker[S]:
        settings = load_settings(settings_type)
        if not settings.kafka_bootstrap:
            raise ConfigError("SSG_KAFKA_BOOTSTRAP: required")
        client = make_client(settings)
        return _Worker(settings, client, default_database(client))

    async def run(worker: _Worker[S]) -> None:
        if topics:
            await ensure_topics(worker.settings.kafka_bootstrap, topics)
        built = consumer(worker.settings, worker.db)
        if isinstance(built, WorkerParts):
            await run_consumer(worker.settings, *built.consumers, tasks=built.tasks)
            return
        consumers = (built,) if isinstance(built, EventConsumer) else tuple(built)
        await run_consumer(worker.settings, *consumers)

    return run_process(build, run)
