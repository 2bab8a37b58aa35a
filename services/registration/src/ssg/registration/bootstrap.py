"""The composition root: builds the store, event factory, service and servicer from settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from pymongo import AsyncMongoClient, MongoClient

from ssg.contracts.registration.v1 import registration_service_pb2, registration_service_pb2_grpc
from ssg.platform.events.envelope import Origin
from ssg.platform.grpc.interceptors import MethodPolicy
from ssg.platform.grpc.server import ServicerRegistration
from ssg.platform.health import HealthCheck, mongodb_checks
from ssg.platform.mongo import Doc, async_reads, close_read_client, default_database, make_client
from ssg.platform.paging import page_codec
from ssg.platform.readcache import CacheFeed, cache_from_settings
from ssg.registration.api.servicer import RegistrationServicer
from ssg.registration.events.publisher import EventFactory
from ssg.registration.service import RegistrationService
from ssg.registration.settings import RegistrationSettings
from ssg.registration.store.mongo import MongoStore
from ssg.registration.store.ports import Store

SERVICE_NAME = registration_service_pb2.DESCRIPTOR.services_by_name["RegistrationService"].full_name

# The interceptor only separates "needs a token" from "public": the fine-grained rules (own
# organization, own instance, org admins) are domain rules that need the entity, so every
# method is open here and the service layer decides. Commands that need a signed-in caller
# say so with UNAUTHENTICATED from the service layer.
POLICY: MethodPolicy = {}


@dataclass
class App:
    """Everything a registration API process runs."""

    settings: RegistrationSettings
    service: RegistrationService
    servicer: RegistrationServicer
    store: Store
    client: MongoClient[Doc] | None = None
    # The asyncio client GetOrganization reads through (SSG_MONGO_ASYNC_READS, ADR 0009).
    read_client: AsyncMongoClient[Doc] | None = None
    # Keeps the organization cache current while serving (ADR 0014); None without one.
    cache_feed: CacheFeed | None = None

    def registrations(self) -> list[ServicerRegistration]:
        """The (add function, servicer) pairs for the platform server."""
        return [
            (registration_service_pb2_grpc.add_RegistrationServiceServicer_to_server, self.servicer)
        ]

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


def build_service(settings: RegistrationSettings, store: Store) -> RegistrationService:
    """The service on a given store (the real one, or a fake in tests)."""
    origin = Origin(settings.service, settings.instance, settings.instance_id)
    return RegistrationService(
        store,
        EventFactory(origin),
        instance=settings.instance,
        pages=page_codec(settings),
        verification_period=timedelta(days=settings.verification_period_days),
    )


def bootstrap(settings: RegistrationSettings, store: Store | None = None) -> App:
    """Wire the whole service; on MongoDB (SSG_MONGODB_URI) unless a store is given."""
    client: MongoClient[Doc] | None = None
    read_client: AsyncMongoClient[Doc] | None = None
    feed: CacheFeed | None = None
    if store is None:
        client = make_client(settings)
        read_client, reads = async_reads(settings)
        mongo = MongoStore(
            client, default_database(client), reads, cache_from_settings(settings, "organizations")
        )
        feed = mongo.cache_feed(settings)
        store = mongo
    service = build_service(settings, store)
    return App(settings, service, RegistrationServicer(service), store, client, read_client, feed)
