"""``python -m ssg.catalog.worker``: keep the organizations read model from registration events.

Any number of replicas may run: the consumer group shares the partitions, and each write is a
conditional upsert on the organization's version.
"""

from __future__ import annotations

import sys

from ssg.catalog.events.organizations import ORGANIZATION_TOPIC, organization_handlers
from ssg.catalog.settings import CatalogSettings
from ssg.catalog.store.mongo import MongoStore
from ssg.platform.events.consumer import EventConsumer
from ssg.platform.events.worker import worker_main


def build_consumer(settings: CatalogSettings, store: MongoStore) -> EventConsumer:
    """The organizations consumer on a store."""
    return EventConsumer(
        settings,
        group_id=settings.organizations_group,
        topics=[ORGANIZATION_TOPIC],
        handlers=organization_handlers(store),
    )


def main() -> int:
    """Entry point; exit status 2 on bad configuration."""
    # The topic belongs to registration; creating it when missing only lets this worker start
    # first on a fresh broker (with registration's partition count unknown, 1 is the floor).
    return worker_main(
        CatalogSettings,
        lambda settings, db: build_consumer(settings, MongoStore(db.client, db)),
        topics=[ORGANIZATION_TOPIC],
    )


if __name__ == "__main__":
    sys.exit(main())
