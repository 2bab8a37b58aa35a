"""``python -m ssg.recommendation.worker``: keep items, organizations, profiles, popularity and
co-interaction counts from catalog, registration and interaction events, and propose matches.

Any number of replicas may run: the consumer group shares the partitions (interactions are
keyed by user id), and every event is applied once, in one transaction with its
``processed_events`` mark (ADR 0050).
"""

from __future__ import annotations

import sys

from ssg.platform.events.consumer import EventConsumer, HandlerRegistry, ProcessedEvents
from ssg.platform.events.envelope import Origin
from ssg.platform.events.organizations import ORGANIZATION_TOPIC
from ssg.platform.events.worker import worker_main
from ssg.recommendation.bootstrap import build_lists, build_store
from ssg.recommendation.events.catalog import CATALOG_TOPICS, catalog_handlers
from ssg.recommendation.events.interactions import interaction_handlers
from ssg.recommendation.events.publisher import INTERACTION_TOPIC, MATCH_TOPIC, EventFactory
from ssg.recommendation.events.registration import EXPERT_TOPIC, registration_handlers
from ssg.recommendation.neighbours import NeighbourCache
from ssg.recommendation.proposals import Proposer
from ssg.recommendation.settings import RecommendationSettings
from ssg.recommendation.snapshot import SnapshotCache
from ssg.recommendation.store.mongo import MongoStore

TOPICS = (*CATALOG_TOPICS, ORGANIZATION_TOPIC, EXPERT_TOPIC, INTERACTION_TOPIC)


def combined(*registries: HandlerRegistry) -> HandlerRegistry:
    """One registry holding the handlers of several."""
    result = HandlerRegistry()
    for registry in registries:
        for event_type in sorted(registry.event_types):
            found = registry.get(event_type)
            assert found is not None
            result.add(event_type, found.payload_type, found.handler)
    return result


def build_consumer(settings: RecommendationSettings, store: MongoStore) -> EventConsumer:
    """The worker's consumer on a store."""
    store.ensure_indexes()
    proposer = Proposer(
        store,
        SnapshotCache(store, settings.index_refresh_seconds, background=False),
        EventFactory(Origin(settings.service, settings.instance, settings.instance_id)),
        threshold=settings.proposal_threshold,
        limit=settings.proposals_per_event,
        instance=settings.instance,
    )
    return EventConsumer(
        settings,
        group_id=settings.worker_group,
        topics=TOPICS,
        handlers=combined(
            catalog_handlers(store, proposer),
            registration_handlers(store),
            interaction_handlers(
                store,
                build_lists(
                    settings,
                    store,
                    # Its own snapshot, reloaded in the background: the proposer's reloads in
                    # line, which would hold interactions up while 20,000 items are re-read.
                    SnapshotCache(
                        store,
                        settings.index_refresh_seconds,
                        signals_seconds=settings.signals_refresh_seconds,
                    ),
                    NeighbourCache(store, settings.signals_refresh_seconds),
                ),
            ),
        ),
        processed=ProcessedEvents(store.db, settings.worker_group),
    )


def main() -> int:
    """Entry point; exit status 2 on bad configuration."""
    # Topics of other services are created when missing only so this worker can start first
    # on a fresh broker; the match topic is this service's own (the relay publishes to it).
    return worker_main(
        RecommendationSettings,
        lambda settings, db: build_consumer(settings, build_store(settings, db.client)),
        topics=[*TOPICS, MATCH_TOPIC],
    )


if __name__ == "__main__":
    sys.exit(main())
