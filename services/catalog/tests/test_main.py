"""``python -m ssg.catalog`` and ``python -m ssg.catalog.worker`` as real processes: the API
serves health SERVING with MongoDB up, answers calls, drains and exits 0 on SIGTERM; bad
configuration exits 2 naming the variable."""

from __future__ import annotations

import grpc
import pytest

from ssg.contracts.catalog.v1 import catalog_service_pb2 as pb
from ssg.contracts.catalog.v1 import catalog_service_pb2_grpc as pb_grpc
from ssg.testing.process import api_process, run_until_exit

HEALTH = "ssg.catalog.v1.CatalogService"


@pytest.mark.parametrize("async_reads", ["0", "1"])
async def test_serves_health_and_stops_cleanly_on_sigterm(mongodb_server, tmp_path, async_reads):
    env = {
        "SSG_MONGODB_URI": mongodb_server.uri("catalog-main-test"),
        "SSG_SWEEP_SECONDS": "1",
        # With the asyncio read client, health pings through it and shutdown closes it.
        "SSG_MONGO_ASYNC_READS": async_reads,
    }
    async with api_process("ssg.catalog", HEALTH, env, tmp_path / "api.log") as channel:
        stub = pb_grpc.CatalogServiceStub(channel)
        listed = await stub.ListSolutions(pb.ListSolutionsRequest(), timeout=5)
        assert list(listed.solutions) == []
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.GetSolution(pb.GetSolutionRequest(id="nope"), timeout=5)
        assert err.value.code() is grpc.StatusCode.NOT_FOUND


def test_api_without_jwt_secret_exits_2_naming_the_variable():
    result = run_until_exit("ssg.catalog", {"SSG_MONGODB_URI": "mongodb://127.0.0.1:1/catalog"})
    assert result.returncode == 2
    assert "SSG_JWT_SECRET" in result.stderr


def test_worker_without_kafka_exits_2_naming_the_variable():
    result = run_until_exit(
        "ssg.catalog.worker", {"SSG_MONGODB_URI": "mongodb://127.0.0.1:1/catalog"}
    )
    assert result.returncode == 2
    assert "SSG_KAFKA_BOOTSTRAP" in result.stderr
