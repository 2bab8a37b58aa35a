"""``python -m ssg.registration`` as a real process: serves health SERVING with MongoDB up,
answers calls, and drains and exits 0 on SIGTERM; bad configuration exits 2 naming the variable."""

from __future__ import annotations

import grpc
import pytest

from ssg.contracts.registration.v1 import registration_service_pb2 as pb
from ssg.contracts.registration.v1 import registration_service_pb2_grpc as pb_grpc
from ssg.testing.process import api_process, run_until_exit

HEALTH = "ssg.registration.v1.RegistrationService"


@pytest.mark.parametrize("async_reads", ["0", "1"])
async def test_serves_health_and_stops_cleanly_on_sigterm(mongodb_server, tmp_path, async_reads):
    env = {
        "SSG_MONGODB_URI": mongodb_server.uri("registration-main-test"),
        "SSG_EXPIRY_SWEEP_SECONDS": "1",
        # With the asyncio read client, health pings through it and shutdown closes it.
        "SSG_MONGO_ASYNC_READS": async_reads,
    }
    async with api_process("ssg.registration", HEALTH, env, tmp_path / "api.log") as channel:
        stub = pb_grpc.RegistrationServiceStub(channel)
        listed = await stub.ListOrganizations(pb.ListOrganizationsRequest(), timeout=5)
        assert list(listed.organizations) == []
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.GetOrganization(pb.GetOrganizationRequest(id="nope"), timeout=5)
        assert err.value.code() is grpc.StatusCode.NOT_FOUND


def test_missing_jwt_secret_exits_2_naming_the_variable():
    result = run_until_exit(
        "ssg.registration", {"SSG_MONGODB_URI": "mongodb://127.0.0.1:1/registration"}
    )
    assert result.returncode == 2
    assert "SSG_JWT_SECRET" in result.stderr
