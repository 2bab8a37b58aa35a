"""The composition root of the search API: OpenSearch client, store, service, servicer."""

from __future__ import annotations

from dataclasses import dataclass

from opensearchpy import AsyncOpenSearch

from ssg.contracts.search.v1 import search_service_pb2_grpc
from ssg.platform.grpc.interceptors import MethodPolicy
from ssg.platform.grpc.server import ServicerRegistration
from ssg.platform.health import HealthCheck, opensearch_check
from ssg.platform.opensearch import opensearch_client as platform_opensearch_client
from ssg.platform.paging import page_codec
from ssg.search.api.servicer import SearchServicer
from ssg.search.domain.queries import Ranking
from ssg.search.events.activity import ActivityPublisher
from ssg.search.service import SearchService
from ssg.search.settings import SearchSettings
from ssg.search.store.search import SearchStore

# Everything the search API answers is public.
POLICY: MethodPolicy = {}


def ranking(settings: SearchSettings) -> Ranking:
    """The ranking weights configured by the SSG_RANK_* settings."""
    return Ranking(
        verified_boost=settings.rank_verified_boost,
        sdg_match_boost=settings.rank_sdg_match_boost,
        freshness_scale_days=settings.rank_freshness_scale_days,
        freshness_decay=settings.rank_freshness_decay,
        freshness_weight=settings.rank_freshness_weight,
    )


def opensearch_client(settings: SearchSettings) -> AsyncOpenSearch:
    """The async client of SSG_OPENSEARCH_URL (required), its credentials and CA bundle."""
    return platform_opensearch_client(settings, timeout_seconds=settings.opensearch_timeout_seconds)


@dataclass
class App:
    """Everything a search API process runs."""

    settings: SearchSettings
    client: AsyncOpenSearch
    service: SearchService
    servicer: SearchServicer
    activity: ActivityPublisher | None

    def registrations(self) -> list[ServicerRegistration]:
        """The (add function, servicer) pairs for the platform server."""
        return [(search_service_pb2_grpc.add_SearchServiceServicer_to_server, self.servicer)]

    def health_checks(self) -> dict[str, HealthCheck]:
        """SERVING while OpenSearch answers. Kafka is not checked: it only carries the
        activity events, and a query is answered without it."""
        return {"opensearch": opensearch_check(self.settings)}

    def close(self) -> None:
        """Nothing to release synchronously (the client is closed by ``run``)."""


def bootstrap(settings: SearchSettings) -> App:
    """Wire the search API from settings."""
    client = opensearch_client(settings)
    pages = page_codec(settings)
    activity = (
        ActivityPublisher(settings)
        if settings.search_events_enabled and settings.kafka_bootstrap
        else None
    )
    key = (settings.user_hash_key or settings.jwt_secret).encode()
    service = SearchService(
        SearchStore(client, settings.index_prefix), ranking(settings), activity, key
    )
    return App(settings, client, service, SearchServicer(service, pages), activity)
