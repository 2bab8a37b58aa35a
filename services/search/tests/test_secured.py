"""Search against a secured OpenSearch (TLS with the cluster's own CA, basic authentication):
the API and the indexer as real processes work through it end to end; with wrong credentials
or a CA that did not sign the cluster's certificate the API's health is NOT_SERVING and says
why."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ssg.contracts.search.v1 import search_service_pb2 as pb
from ssg.contracts.search.v1 import search_service_pb2_grpc as pb_grpc
from ssg.platform.auth.tokens import DEV_SECRET
from ssg.platform.grpc.server import PlatformServer
from ssg.search.bootstrap import bootstrap, opensearch_client
from ssg.search.events.topics import ORGANIZATION_TOPIC, SOLUTION_TOPIC
from ssg.search.settings import SearchSettings
from ssg.testing.fixtures import SecuredOpenSearch
from ssg.testing.servers import free_port
from ssg.testing.tls_proxy import certificate_authority
from ssg.testing.waiting import eventually

from . import events as ev
from .conftest import api_server, produce, search_settings
from .test_processes import healthz, serving, start, stop


def secured_settings(
    kafka_server, secured: SecuredOpenSearch, **overrides: object
) -> SearchSettings:
    """Test settings on the secured OpenSearch (overrides may spoil the password or the CA)."""
    values: dict[str, object] = {
        "opensearch_username": secured.username,
        "opensearch_password": secured.password,
        "opensearch_ca_file": secured.ca_file,
        "search_events_enabled": False,
    }
    values.update(overrides)
    return search_settings(kafka_server, secured.url, **values)


@asynccontextmanager
async def started_api(settings: SearchSettings) -> AsyncIterator[PlatformServer]:
    """The search API's server with its health checks, without creating indices first."""
    app = bootstrap(settings)
    server = api_server(app)
    await server.start()
    try:
        yield server
    finally:
        await server.stop(0)
        await app.client.close()


async def health_status(address: str) -> int:
    async with grpc.aio.insecure_channel(address) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="ssg.search.v1.SearchService"), timeout=5
        )
    return reply.status


async def test_wrong_credentials_leave_the_api_not_serving_with_the_reason(
    kafka_server, secured_opensearch
):
    settings = secured_settings(kafka_server, secured_opensearch, opensearch_password="wrong")
    async with started_api(settings) as server:
        assert not await server.check_dependencies()
        assert "refused the credentials" in server.failing["opensearch"]
        assert await health_status(server.address) == health_pb2.HealthCheckResponse.NOT_SERVING


async def test_an_unknown_ca_leaves_the_api_not_serving_with_the_reason(
    kafka_server, secured_opensearch, tmp_path
):
    stranger = certificate_authority(tmp_path, "unknown-ca")
    settings = secured_settings(
        kafka_server, secured_opensearch, opensearch_ca_file=str(stranger.cert_file)
    )
    async with started_api(settings) as server:
        assert not await server.check_dependencies()
        assert "TLS certificate not trusted" in server.failing["opensearch"]
        assert await health_status(server.address) == health_pb2.HealthCheckResponse.NOT_SERVING


# Two processes start on a shared machine: allow for a slow start.
@pytest.mark.timeout(300)
async def test_api_and_indexer_work_through_tls_and_credentials(
    kafka_server, secured_opensearch, tmp_path
):
    settings = secured_settings(kafka_server, secured_opensearch)
    common = {
        "SSG_KAFKA_BOOTSTRAP": kafka_server.bootstrap,
        "SSG_KAFKA_LOCAL_PROFILE": "true" if kafka_server.local else "false",
        "SSG_OPENSEARCH_URL": secured_opensearch.url,
        "SSG_OPENSEARCH_USERNAME": secured_opensearch.username,
        "SSG_OPENSEARCH_PASSWORD": secured_opensearch.password,
        "SSG_OPENSEARCH_CA_FILE": secured_opensearch.ca_file,
        "SSG_INDEX_PREFIX": settings.index_prefix,
        "SSG_INDEXER_APP_ID": settings.indexer_app_id,
        "SSG_FAUST_TOPIC_PARTITIONS": "2",
        "SSG_BULK_FLUSH_SECONDS": "0.05",
        "SSG_BULK_REFRESH": "true",
        "SSG_HEALTH_INTERVAL_SECONDS": "0.2",
        "SSG_JWT_SECRET": DEV_SECRET,
        "SSG_GRACE_SECONDS": "1",
        "SSG_SEARCH_EVENTS_ENABLED": "false",
    }
    grpc_port, api_metrics, worker_metrics = free_port(), free_port(), free_port()
    logs = {"api": tmp_path / "api.log", "worker": tmp_path / "worker.log"}
    api = await start(
        "ssg.search",
        logs["api"],
        SSG_GRPC_PORT=str(grpc_port),
        SSG_METRICS_PORT=str(api_metrics),
        **common,
    )
    worker = await start(
        "ssg.search.worker",
        logs["worker"],
        SSG_METRICS_PORT=str(worker_metrics),
        SSG_FAUST_DATA_DIR=str(tmp_path / "worker"),
        **common,
    )
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}")
    client = opensearch_client(settings)
    try:
        await eventually(lambda: serving(channel), "the API SERVING", within=120)
        await eventually(partial(healthz, worker_metrics), "the worker healthy", within=120)
        stub = pb_grpc.SearchServiceStub(channel)
        marker = f"zs{ev.new_id()[:6]}"
        org_id, sol_id = ev.new_id(), ev.new_id()
        await produce(
            settings,
            [
                (ORGANIZATION_TOPIC, ev.org_event(ev.organization(org_id), 1), None),
                (
                    SOLUTION_TOPIC,
                    ev.solution_event(
                        ev.solution(sol_id, title=f"Solar {marker}", organization_id=org_id), 1
                    ),
                    None,
                ),
            ],
        )

        async def found():
            reply = await stub.Search(pb.SearchRequest(query=marker), timeout=5)
            return [h.id for h in reply.hits]

        assert await eventually(found, "the solution found by Search", within=60) == [sol_id]
    finally:
        await channel.close()
        await stop(worker, logs["worker"])
        await stop(api, logs["api"])
        await client.indices.delete(index=f"{settings.index_prefix}-*")
        await client.close()
