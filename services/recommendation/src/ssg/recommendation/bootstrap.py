"""The composition root: builds the store, snapshot cache, service and servicer from settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from pymongo import MongoClient

from ssg.contracts.recommendation.v1 import recommendation_service_pb2_grpc
from ssg.platform.events.envelope import Origin
from ssg.platform.grpc.interceptors import MethodPolicy
from ssg.platform.grpc.server import ServicerRegistration
from ssg.platform.health import HealthCheck, mongodb_check
from ssg.platform.mongo import Doc, default_database, make_client
from ssg.platform.paging import page_codec
from ssg.platform.watched import WatchedCollection
from ssg.recommendation.api.servicer import RecommendationServicer
from ssg.recommendation.events.publisher import EventFactory
from ssg.recommendation.neighbours import NeighbourCache
from ssg.recommendation.personal import PersonalLists
from ssg.recommendation.service import RecommendationService
from ssg.recommendation.settings import RecommendationSettings
from ssg.recommendation.snapshot import SnapshotCache
from ssg.recommendation.store.mongo import MongoStore, StoredList, stored_list_from_doc

# Reads of public content are open; the personal and party rules need the record or the
# subject, so the service layer decides those (UNAUTHENTICATED / PERMISSION_DENIED).
POLICY: MethodPolicy = {}


@dataclass
class App:
    """Everything a recommendation API process runs."""

    settings: RecommendationSettings
    service: RecommendationService
    servicer: RecommendationServicer
    store: MongoStore
    client: MongoClient[Doc] | None = None
    # The stored lists held in memory (ADR 0055), when configured.
    held: WatchedCollection[StoredList] | None = None

    def registrations(self) -> list[ServicerRegistration]:
        """The (add function, servicer) pairs for the platform server."""
        return [
            (
                recommendation_service_pb2_grpc.add_RecommendationServiceServicer_to_server,
                self.servicer,
            )
        ]

    def health_checks(self) -> dict[str, HealthCheck]:
        """SERVING only while MongoDB answers."""
        if not self.settings.mongodb_uri:
            return {}
        return {"mongodb": mongodb_check(self.settings.mongodb_uri)}

    def close(self) -> None:
        """Stop following the stored lists and release the database client."""
        if self.held is not None:
            self.held.close()
        if self.client is not None:
            self.client.close()


def build_store(settings: RecommendationSettings, client: MongoClient[Doc]) -> MongoStore:
    """The store on the settings' database with the configured half-lives."""
    return MongoStore(
        client,
        default_database(client),
        profile_half_life=timedelta(days=settings.profile_half_life_days),
        popularity_half_life=timedelta(days=settings.popularity_half_life_days),
        co_history=settings.co_interaction_history,
    )


def build_lists(
    settings: RecommendationSettings,
    store: MongoStore,
    cache: SnapshotCache,
    neighbours: NeighbourCache,
    held: WatchedCollection[StoredList] | None = None,
) -> PersonalLists:
    """Stored and computed recommendation lists with the configured tolerances."""
    return PersonalLists(
        store,
        cache,
        neighbours,
        tolerance_seconds=settings.stored_list_tolerance_seconds,
        max_age_seconds=settings.stored_list_max_age_seconds,
        held=held,
        held_lag_seconds=settings.stored_lists_max_lag_seconds,
    )


def held_lists(
    settings: RecommendationSettings, store: MongoStore
) -> WatchedCollection[StoredList] | None:
    """The stored lists in memory, fed by their change stream (None when switched off)."""
    if settings.stored_lists_held <= 0:
        return None
    return WatchedCollection(
        store.recommendations,
        stored_list_from_doc,
        max_entries=settings.stored_lists_held,
        reload_seconds=settings.stored_lists_reload_seconds,
    )


def backfill_lists(store: MongoStore, max_items: int = 50_000) -> int:
    """Store every profile's recommendation list (after a bulk load or a restore, ADR 0054):
    one snapshot, and each item's neighbours read once (up to max_items kept); the number
    stored."""
    lists = PersonalLists(
        store,
        SnapshotCache(store, float("inf"), background=False),
        NeighbourCache(store, float("inf"), max_items=max_items),
    )
    return lists.backfill()


def bootstrap(settings: RecommendationSettings) -> App:
    """Wire the whole API on MongoDB (SSG_MONGODB_URI)."""
    client = make_client(settings)
    store = build_store(settings, client)
    cache = SnapshotCache(
        store, settings.index_refresh_seconds, signals_seconds=settings.signals_refresh_seconds
    )
    neighbours = NeighbourCache(store, settings.signals_refresh_seconds)
    held = held_lists(settings, store)
    service = RecommendationService(
        store,
        cache,
        EventFactory(Origin(settings.service, settings.instance, settings.instance_id)),
        instance=settings.instance,
        pages=page_codec(settings),
        neighbours=neighbours,
        lists=build_lists(settings, store, cache, neighbours, held),
    )
    return App(settings, service, RecommendationServicer(service), store, client, held)
