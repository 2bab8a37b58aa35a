"""``python -m ssg.recommendation.worker``: keep items, organizations, profiles, popularity and
co-interaction counts from catalog, registration and interaction events, and propose matches.

Any number of replicas may run: the consumer group shares the partitions (interactions are
keyed by user id), and every event is applied once, in one transaction with its
``processed_events`` mark (ADR 0050). Beside the consumer, the replica holding the sweep's
lease recomputes stored recommendation lists left behind by item changes (``sweep``).
"""

from __future__ import annotations

import sys
import uuid
from functools import partial

from ssg.platform.events.consumer import EventConsumer, HandlerRegistry, ProcessedEvents
from ssg.platform.events.envelope import Origin
from ssg.platform.events.organizations import ORGANIZATION_TOPIC
from ssg.platform.events.relay import Lease
from ssg.platform.events.worker import WorkerParts, worker_main
from ssg.platform.process import PeriodicTask
from ssg.recommendation.bootstrap import build_lists, build_store
from ssg.recommendation.events.catalog import CATALOG_TOPICS, catalog_handlers
from ssg.recommendation.events.interactions import interaction_handlers
from ssg.recommendation.events.publisher import INTERACTION_TOPIC, MATCH_TOPIC, EventFactory
from ssg.recommendation.events.registration import EXPERT_TOPIC, registration_handlers
from ssg.recommendation.neighbours import NeighbourCache
from ssg.recommendation.personal import PersonalLists
from ssg.recommendation.proposals import Proposer
from ssg.recommendation.settings import RecommendationSettings
from ssg.recommendation.snapshot import SnapshotCache
from ssg.recommendation.store.mongo import MongoStore
from ssg.recommendation.sweep import LEASE_NAME, ListSweep, sweep_forever

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


def worker_lists(settings: RecommendationSettings, store: MongoStore) -> PersonalLists:
    """The lists the worker stores with each interaction and sweeps."""
    return build_lists(
        settings,
        store,
        # Its own snapshot, reloaded in the background: the proposer's reloads in line,
        # which would hold interactions up while 20,000 items are re-read.
        SnapshotCache(
            store, settings.index_refresh_seconds, signals_seconds=settings.signals_refresh_seconds
        ),
        NeighbourCache(store, settings.signals_refresh_seconds),
    )


def build_sweep(
    settings: RecommendationSettings, lists: PersonalLists, holder: str | None = None
) -> ListSweep:
    """The sweep of stored lists behind the items' marker, under the service's lease."""
    return ListSweep(
        lists,
        Lease(
            lists.store.db,
            LEASE_NAME,
            holder or f"{settings.instance_id}:{uuid.uuid4().hex[:8]}",
            settings.list_sweep_lease_seconds,
        ),
        batch=settings.list_sweep_batch,
        behind_seconds=settings.list_sweep_behind_seconds,
        pause_seconds=settings.list_sweep_pause_seconds,
    )


def build_consumer(
    settings: RecommendationSettings, store: MongoStore, lists: PersonalLists | None = None
) -> EventConsumer:
    """The worker's consumer on a store (lists: the worker's own when not given)."""
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
            interaction_handlers(store, lists or worker_lists(settings, store)),
        ),
        processed=ProcessedEvents(store.db, settings.worker_group),
    )


def build_worker(settings: RecommendationSettings, store: MongoStore) -> WorkerParts:
    """The consumer and, unless its interval is 0, the list sweep sharing its lists."""
    lists = worker_lists(settings, store)
    tasks: list[PeriodicTask] = []
    if settings.list_sweep_interval_seconds > 0:
        sweep = build_sweep(settings, lists)
        tasks.append(partial(sweep_forever, sweep, settings.list_sweep_interval_seconds))
    return WorkerParts([build_consumer(settings, store, lists)], tasks)


def main() -> int:
    """Entry point; exit status 2 on bad configuration."""
    # Topics of other services are created when missing only so this worker can start first
    # on a fresh broker; the match topic is this service's own (the relay publishes to it).
    return worker_main(
        RecommendationSettings,
        lambda settings, db: build_worker(settings, build_store(settings, db.client)),
        topics=[*TOPICS, MATCH_TOPIC],
    )


if __name__ == "__main__":
    sys.exit(main())
