"""The composition root: builds the store, event factory, service and servicer from settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from pymongo import AsyncMongoClient, MongoClient

from ssg.catalog.api.servicer import CatalogServicer
from ssg.catalog.events.publisher import EventFactory
from ssg.catalog.service import CatalogService
from ssg.catalog.settings import CatalogSettings
from ssg.catalog.store.mongo import MongoStore, ReadCaches
from ssg.catalog.store.ports import Store
from ssg.contracts.catalog.v1 import catalog_service_pb2_grpc
from ssg.platform.events.envelope import Origin
from ssg.platform.grpc.interceptors import MethodPolicy
from ssg.platform.grpc.server import ServicerRegistration
from ssg.platform.health import HealthCheck, mongodb_checks
from ssg.platform.mongo import Doc, async_reads, close_read_client, default_database, make_client
from ssg.platform.paging import page_codec
from ssg.platform.readcache import CacheFeed

# Reads are public and the command rules (own organization, own instance, verified
# organization) need the record, so every method is open here and the service layer decides;
# commands answer UNAUTHENTICATED from there when a token is missing.
POLICY: MethodPolicy = {}


@dataclass
class App:
    """Everything a catalog process runs."""

    settings: CatalogSettings
    service: CatalogService
    servicer: CatalogServicer
    store: Store
    client: MongoClient[Doc] | None = None
    # The asyncio client the Get calls read through (SSG_MONGO_ASYNC_READS, ADR 0009).
    read_client: AsyncMongoClient[Doc] | None = None
    # Keeps the Get caches current while serving (ADR 0014); None without them.
    cache_feed: CacheFeed | None = None

    def registrations(self) -> list[ServicerRegistration]:
        """The (add function, servicer) pairs for the platform server."""
        return [(catalog_service_pb2_grpc.add_CatalogServiceServicer_to_server, self.servicer)]

    def health_checks(self) -> dict[str, HealthCheck]:
        """SERVING only while MongoDB answers (through the read client when there is one)."""
        return mongodb_checks(self.settings, self.read_client)

    async def aclose(self) -> None:
        """Release the read client (in the event loop that used it)."""
        await close_read_client(self.read_client)

    def close(self) -> None:
        """Release the database client."""
        if self.client is not None:
            self.client.close()


def build_service(settings: CatalogSettings, store: Store) -> CatalogService:
    """The service on a given store (the real one, or a fake in tests)."""
    return CatalogService(
        store,
        EventFactory(Origin(settings.service, settings.instance, settings.instance_id)),
        instance=settings.instance,
        pages=page_codec(settings),
        pass_threshold=settings.review_pass_threshold,
        stale_after=timedelta(days=settings.stale_after_days),
    )


def bootstrap(settings: CatalogSettings, store: Store | None = None) -> App:
    """Wire the whole service; on MongoDB (SSG_MONGODB_URI) unless a store is given."""
    client: MongoClient[Doc] | None = None
    read_client: AsyncMongoClient[Doc] | None = None
    feed: CacheFeed | None = None
    if store is None:
        client = make_client(settings)
        read_client, reads = async_reads(settings)
        mongo = MongoStore(
            client, default_database(client), reads, ReadCaches.from_settings(settings)
        )
        feed = mongo.cache_feed(settings)
        store = mongo
    service = build_service(settings, store)
    return App(settings, service, CatalogServicer(service), store, client, read_client, feed)
