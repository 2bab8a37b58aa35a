"""``python -m ssg.catalog.worker``: keep the organizations read model from registration events.

Any number of replicas may run: the consumer group shares the partitions, and each write is a
conditional upsert on the organization's version.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from ssg.catalog.events.organizations import ORGANIZATION_TOPIC, organization_handlers
from ssg.catalog.settings import CatalogSettings
from ssg.catalog.store.mongo import MongoStore
from ssg.platform.events.consumer import EventConsumer
from ssg.platform.events.topics import ensure_topics
from ssg.platform.logging import configure_logging
from ssg.platform.metrics import start_metrics_server, stop_metrics_server
from ssg.platform.mongo import default_database, make_client
from ssg.platform.settings import ConfigError, load_settings

log = logging.getLogger("ssg.catalog.worker")


def build_consumer(settings: CatalogSettings, store: MongoStore) -> EventConsumer:
    """The organizations consumer on a store."""
    return EventConsumer(
        settings,
        group_id=settings.organizations_group,
        topics=[ORGANIZATION_TOPIC],
        handlers=organization_handlers(store),
    )


async def run(settings: CatalogSettings, store: MongoStore) -> None:
    """Consume until SIGTERM/SIGINT, then leave the group."""
    # The topic belongs to registration; creating it when missing only lets this worker start
    # first on a fresh broker (with registration's partition count unknown, 1 is the floor).
    await ensure_topics(settings.kafka_bootstrap, [ORGANIZATION_TOPIC])
    consumer = build_consumer(settings, store)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, consumer.request_stop)
    metrics_port = start_metrics_server(settings.metrics_host, settings.metrics_port)
    try:
        await consumer.run()
    finally:
        if metrics_port is not None:
            stop_metrics_server(metrics_port)


def main() -> int:
    """Entry point; exit status 2 on bad configuration."""
    try:
        settings = load_settings(CatalogSettings)
        if not settings.kafka_bootstrap:
            raise ConfigError("SSG_KAFKA_BOOTSTRAP: required")
        client = make_client(settings)
        store = MongoStore(client, default_database(client))
    except ConfigError as exc:
        print(exc, file=sys.stderr)  # logging is not configured yet: stderr is all there is
        return 2
    configure_logging(settings.service, settings.instance, settings.log_level)
    try:
        asyncio.run(run(settings, store))
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
