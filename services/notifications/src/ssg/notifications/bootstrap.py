"""The composition root of the api process: store, service and servicer from settings."""

from __future__ import annotations

from dataclasses import dataclass

from pymongo import MongoClient

from ssg.contracts.notifications.v1 import notifications_service_pb2_grpc
from ssg.notifications.api.servicer import NotificationServicer
from ssg.notifications.service import SubscriptionService
from ssg.notifications.settings import NotificationsSettings
from ssg.notifications.store.mongo import NotificationStore
from ssg.platform.grpc.interceptors import MethodPolicy
from ssg.platform.grpc.server import ServicerRegistration
from ssg.platform.health import HealthCheck, mongodb_check
from ssg.platform.mongo import Doc, default_database, make_client
from ssg.platform.paging import page_codec
from ssg.platform.settings import ConfigError

# Unsubscribe by one-click token needs no caller token; the service layer checks every other
# call for a signed-in caller (UNAUTHENTICATED otherwise).
POLICY: MethodPolicy = {}


@dataclass
class App:
    """Everything the api process runs."""

    settings: NotificationsSettings
    service: SubscriptionService
    servicer: NotificationServicer
    store: NotificationStore
    client: MongoClient[Doc] | None = None

    def registrations(self) -> list[ServicerRegistration]:
        """The (add function, servicer) pairs for the platform server."""
        return [
            (
                notifications_service_pb2_grpc.add_NotificationServiceServicer_to_server,
                self.servicer,
            )
        ]

    def health_checks(self) -> dict[str, HealthCheck]:
        """SERVING only while MongoDB answers."""
        return {"mongodb": mongodb_check(self.settings.mongodb_uri)}

    def close(self) -> None:
        """Release the database client."""
        if self.client is not None:
            self.client.close()


def signing_key(settings: NotificationsSettings) -> bytes:
    """The signing key; ConfigError naming the variable when it is missing or short."""
    try:
        return settings.signing_bytes()
    except ValueError as exc:
        raise ConfigError(f"invalid configuration: {exc}") from None


def bootstrap(settings: NotificationsSettings) -> App:
    """Wire the api process on MongoDB (SSG_MONGODB_URI)."""
    if not settings.mongodb_uri:
        raise ConfigError("invalid configuration: SSG_MONGODB_URI: required")
    client = make_client(settings)
    store = NotificationStore(client, default_database(client))
    service = SubscriptionService(
        store,
        signing_key(settings),
        page_codec(settings),
        allow_loopback=settings.webhook_allow_loopback,
    )
    return App(settings, service, NotificationServicer(service), store, client)
