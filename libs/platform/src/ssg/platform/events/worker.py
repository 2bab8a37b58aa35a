"""The ``python -m ...`` of an event consumer process: one ``EventConsumer`` run until
SIGTERM/SIGINT (then it finishes the message, commits and leaves the group), with /metrics.

Any number of replicas may run: the consumer group shares the partitions.
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
from ssg.platform.process import run_process
from ssg.platform.settings import ConfigError, PlatformSettings, load_settings

S = TypeVar("S", bound=PlatformSettings)


async def run_consumer(settings: PlatformSettings, consumer: EventConsumer) -> None:
    """Consume until SIGTERM/SIGINT, serving /metrics meanwhile, then leave the group."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, consumer.request_stop)
    metrics_port = start_metrics_server(settings.metrics_host, settings.metrics_port)
    try:
        await consumer.run()
    finally:
        if metrics_port is not None:
            stop_metrics_server(metrics_port)


@dataclass
class _Worker(Generic[S]):
    settings: S
    client: MongoClient[Doc]
    db: Database[Doc]

    def close(self) -> None:
        self.client.close()


def worker_main(
    settings_type: type[S],
    consumer: Callable[[S, Database[Doc]], EventConsumer],
    *,
    topics: Sequence[str] = (),
) -> int:
    """Entry point of a consumer process on the service's MongoDB; exit status 2 on bad
    configuration (SSG_KAFKA_BOOTSTRAP is required, SSG_MONGODB_URI must name a database).

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
        await run_consumer(worker.settings, consumer(worker.settings, worker.db))

    return run_process(build, run)
