"""The platform gRPC server on 127.0.0.1 (real grpc.aio server, real MongoDB-protocol server)."""

from __future__ import annotations

import asyncio
import time
import urllib.request

import grpc
import pymongo
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from ssg.contracts.diagnostics.v1 import diagnostics_pb2 as pb
from ssg.contracts.diagnostics.v1 import diagnostics_pb2_grpc as pb_grpc
from ssg.platform.auth.tokens import DEV_SECRET, DevTokenIssuer, Role, TokenVerifier
from ssg.platform.diagnostics import POLICY, SERVICE_NAME, DiagnosticsServicer
from ssg.platform.grpc.client import channel
from ssg.platform.grpc.server import LIVENESS_SERVICE, PlatformServer, build_server
from ssg.platform.health import mongodb_check
from ssg.platform.metrics import start_metrics_server, stop_metrics_server
from ssg.platform.settings import PlatformSettings, load_settings
from ssg.platform.tracing import bound_trace_id
from ssg.testing.servers import mongodb_uri
from ssg.testing.waiting import eventually

ISSUER = DevTokenIssuer()
SECRET_DETAIL = "connection string mongodb://admin:hunter2@db"


class ExplodingDiagnostics(DiagnosticsServicer):
    """Echo raises an unexpected exception for one magic message (a stand-in for a bug)."""

    async def Echo(self, request, context):
        if request.message == "boom":
            raise RuntimeError(SECRET_DETAIL)
        return await super().Echo(request, context)


def settings(**overrides) -> PlatformSettings:
    return load_settings(
        PlatformSettings,
        service="grpc-test",
        grpc_host="127.0.0.1",
        grpc_port=0,
        health_interval_seconds=0.1,
        **overrides,
    )


@pytest.fixture(scope="module")
async def server():
    srv = build_server(
        settings(),
        [(pb_grpc.add_DiagnosticsServiceServicer_to_server, ExplodingDiagnostics())],
        method_policy=POLICY,
        verifier=TokenVerifier(DEV_SECRET),
    )
    await srv.start()
    yield srv
    await srv.stop(0)


@pytest.fixture
async def stub(server: PlatformServer):
    async with grpc.aio.insecure_channel(server.address) as ch:
        yield pb_grpc.DiagnosticsServiceStub(ch)


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def test_echo_round_trips_and_returns_a_minted_trace_id(stub):
    call = stub.Echo(pb.EchoRequest(message="hello"), timeout=5)
    response = await call
    assert response.message == "hello"
    assert len(response.trace_id) == 32
    assert dict(await call.trailing_metadata())["x-trace-id"] == response.trace_id


async def test_trace_id_from_the_caller_is_used_and_echoed(server):
    async with channel(server.address) as ch:
        stub = pb_grpc.DiagnosticsServiceStub(ch)
        with bound_trace_id("trace-from-caller-0001"):
            call = stub.Echo(pb.EchoRequest(message="hi"))
            response = await call
        assert response.trace_id == "trace-from-caller-0001"
        assert dict(await call.trailing_metadata())["x-trace-id"] == "trace-from-caller-0001"


async def test_malformed_trace_id_is_replaced(stub):
    response = await stub.Echo(
        pb.EchoRequest(message="hi"), metadata=(("x-trace-id", "no spaces allowed!"),), timeout=5
    )
    assert response.trace_id != "no spaces allowed!"
    assert len(response.trace_id) == 32


async def test_client_channel_adds_a_default_deadline(server):
    async with channel(server.address, default_deadline_seconds=0.2) as ch:
        stub = pb_grpc.DiagnosticsServiceStub(ch)
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.Echo(pb.EchoRequest(message="slow", delay_ms=3000))
    assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 2


async def test_invalid_request_names_each_field_in_details_and_bad_request(stub):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Echo(pb.EchoRequest(message="", delay_ms=10_001), timeout=5)
    error = info.value
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "message: must be 1 to 256 characters" in error.details()
    assert "delay_ms: must be at most 10000" in error.details()
    status = rpc_status.from_call(error)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    assert {v.field for v in bad.field_violations} == {"message", "delay_ms"}
    # The trace id travels on errors too, so a user can quote it.
    assert len(dict(error.trailing_metadata())["x-trace-id"]) == 32


async def test_too_long_message_is_invalid(stub):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Echo(pb.EchoRequest(message="x" * 257), timeout=5)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "message" in info.value.details()
    assert await stub.Echo(pb.EchoRequest(message="x" * 256), timeout=5)


async def test_unexpected_exception_is_internal_without_traceback(stub, caplog):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Echo(pb.EchoRequest(message="boom"), timeout=5)
    error = info.value
    assert error.code() is grpc.StatusCode.INTERNAL
    trace_id = dict(error.trailing_metadata())["x-trace-id"]
    assert trace_id in error.details()
    for leaked in ("Traceback", "RuntimeError", "hunter2", "File "):
        assert leaked not in error.details()
        assert leaked not in (error.debug_error_string() or "")
    # ...while the log keeps the stack trace for whoever investigates.
    logged = [r for r in caplog.records if r.exc_info and "unhandled" in r.getMessage()]
    assert logged and logged[-1].exc_info[0] is RuntimeError


@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param((), id="missing"),
        pytest.param(bearer("not-a-jwt"), id="garbage"),
        pytest.param(
            bearer(
                DevTokenIssuer(secret="another-secret-of-at-least-32-bytes").issue(
                    "u", [Role.MEMBER]
                )
            ),
            id="wrong-key",
        ),
        pytest.param(bearer(ISSUER.issue("u", [Role.MEMBER], ttl_seconds=-3600)), id="expired"),
        pytest.param((("authorization", "Basic dTpw"),), id="not-bearer"),
    ],
)
async def test_whoami_without_a_valid_token_is_unauthenticated(stub, metadata):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.WhoAmI(pb.WhoAmIRequest(), metadata=metadata, timeout=5)
    assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED


async def test_invalid_token_is_refused_even_on_a_public_method(stub):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Echo(pb.EchoRequest(message="hi"), metadata=bearer("not-a-jwt"), timeout=5)
    assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED


async def test_public_role_calling_whoami_is_permission_denied(stub):
    token = ISSUER.issue("reader", [Role.PUBLIC])
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.WhoAmI(pb.WhoAmIRequest(), metadata=bearer(token), timeout=5)
    assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED


async def test_whoami_returns_the_verified_identity(server):
    token = ISSUER.issue("alice", [Role.REVIEWER], organization_id="org-7")
    async with channel(server.address, token=token) as ch:
        response = await pb_grpc.DiagnosticsServiceStub(ch).WhoAmI(pb.WhoAmIRequest())
    assert response.subject == "alice"
    assert set(response.roles) == {"public", "signed_in", "reviewer"}
    assert response.organization_id == "org-7"
    assert response.instance == "global"


async def test_anonymous_echo_is_allowed(stub):
    assert (await stub.Echo(pb.EchoRequest(message="hi"), timeout=5)).message == "hi"


async def test_reflection_lists_every_service(server):
    async with grpc.aio.insecure_channel(server.address) as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        call = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        names = set()
        async for response in call:
            names |= {s.name for s in response.list_services_response.service}
    assert {
        SERVICE_NAME,
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    } <= names


def _scrape(port: int) -> dict[tuple[str, frozenset], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def _labels(code: str) -> frozenset:
    return frozenset(
        {
            "grpc_type": "unary",
            "grpc_service": SERVICE_NAME,
            "grpc_method": "Echo",
            "grpc_code": code,
        }.items()
    )


async def test_metrics_endpoint_counts_calls_by_code(stub):
    port = start_metrics_server("127.0.0.1", 0)
    assert port
    try:
        before = await asyncio.to_thread(_scrape, port)
        await stub.Echo(pb.EchoRequest(message="ok"), timeout=5)
        await stub.Echo(pb.EchoRequest(message="ok"), timeout=5)
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.Echo(pb.EchoRequest(message=""), timeout=5)
        after = await asyncio.to_thread(_scrape, port)
    finally:
        stop_metrics_server(port)

    def delta(name: str, labels: frozenset) -> float:
        return after.get((name, labels), 0) - before.get((name, labels), 0)

    assert delta("grpc_server_handled_total", _labels("OK")) == 2
    assert delta("grpc_server_handled_total", _labels("InvalidArgument")) == 1
    assert delta("grpc_server_handling_seconds_count", _labels("OK")) == 2
    started = frozenset(
        {"grpc_type": "unary", "grpc_service": SERVICE_NAME, "grpc_method": "Echo"}.items()
    )
    assert delta("grpc_server_started_total", started) == 3


async def test_denied_calls_are_counted_with_their_code(stub):
    labels = {
        "grpc_type": "unary",
        "grpc_service": SERVICE_NAME,
        "grpc_method": "WhoAmI",
        "grpc_code": "Unauthenticated",
    }
    before = REGISTRY.get_sample_value("grpc_server_handled_total", labels) or 0
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.WhoAmI(pb.WhoAmIRequest(), timeout=5)
    assert REGISTRY.get_sample_value("grpc_server_handled_total", labels) == before + 1


async def _health(address: str, service: str = "") -> int:
    async with grpc.aio.insecure_channel(address) as ch:
        response = await health_pb2_grpc.HealthStub(ch).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=2
        )
    return response.status


async def test_health_follows_the_mongodb_dependency(own_mongodb):
    gate = asyncio.Event()
    ping = mongodb_check(mongodb_uri(own_mongodb.port, "health"), timeout_seconds=0.5)

    async def gated_mongodb() -> None:
        # Holds the first answers back, so "not serving before deps answer" is observable.
        await gate.wait()
        await ping()

    registry = CollectorRegistry()
    srv = build_server(
        settings(),
        [(pb_grpc.add_DiagnosticsServiceServicer_to_server, DiagnosticsServicer())],
        health_checks={"mongodb": gated_mongodb},
        verifier=TokenVerifier(DEV_SECRET),
        check_timeout_seconds=0.5,
        registry=registry,
    )

    def gauges() -> tuple[float | None, float | None]:
        up = registry.get_sample_value("ssg_health_check_up", {"check": "mongodb"})
        return registry.get_sample_value("ssg_health_serving"), up

    await srv.start()
    try:
        serving = health_pb2.HealthCheckResponse.SERVING
        not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
        assert await _health(srv.address) == not_serving
        assert await _health(srv.address, SERVICE_NAME) == not_serving
        # Liveness answers SERVING from the start, whatever the dependencies say.
        assert await _health(srv.address, LIVENESS_SERVICE) == serving
        assert gauges() == (0.0, None)
        # The service answers calls meanwhile; only health says "do not route here yet".
        async with grpc.aio.insecure_channel(srv.address) as ch:
            echo = await pb_grpc.DiagnosticsServiceStub(ch).Echo(pb.EchoRequest(message="x"))
            assert echo.message == "x"

        gate.set()

        async def is_(expected: int, service: str = ""):
            return await _health(srv.address, service) == expected

        await eventually(lambda: is_(serving), what="SERVING after mongodb answers")
        assert await _health(srv.address, SERVICE_NAME) == serving
        assert gauges() == (1.0, 1.0)

        own_mongodb.stop()
        await eventually(lambda: is_(not_serving), what="NOT_SERVING after mongodb stops")
        await eventually(lambda: is_(not_serving, SERVICE_NAME), what="service NOT_SERVING")
        assert not srv.serving
        assert gauges() == (0.0, 0.0)
        # A database outage is no reason to restart the process.
        assert await _health(srv.address, LIVENESS_SERVICE) == serving
    finally:
        await srv.stop(0)


async def test_stop_flips_health_before_draining():
    srv = build_server(
        settings(),
        [(pb_grpc.add_DiagnosticsServiceServicer_to_server, DiagnosticsServicer())],
    )
    await srv.start()
    await eventually(lambda: _serving(srv), what="serving without checks")
    await srv.stop(0)
    request = health_pb2.HealthCheckRequest(service="")
    # The servicer itself (not the stopped server) reports the shutdown state.
    response = await srv.health.Check(request, None)
    assert response.status == health_pb2.HealthCheckResponse.NOT_SERVING


async def _serving(srv: PlatformServer) -> bool:
    return await _health(srv.address) == health_pb2.HealthCheckResponse.SERVING


async def test_a_call_past_its_deadline_is_counted_as_deadline_exceeded(stub):
    labels = {
        "grpc_type": "unary",
        "grpc_service": SERVICE_NAME,
        "grpc_method": "Echo",
        "grpc_code": "DeadlineExceeded",
    }
    before = REGISTRY.get_sample_value("grpc_server_handled_total", labels) or 0
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Echo(pb.EchoRequest(message="slow", delay_ms=2000), timeout=0.2)
    assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    await eventually(
        lambda: REGISTRY.get_sample_value("grpc_server_handled_total", labels) == before + 1,
        "the server to count the expired call",
        within=10,
    )


async def test_a_body_that_is_not_the_request_message_is_invalid_and_counted(server):
    # Regression (fuzz): grpc answered UNKNOWN naming the parser's exception for such bytes.
    labels = {
        "grpc_type": "unary",
        "grpc_service": SERVICE_NAME,
        "grpc_method": "Echo",
        "grpc_code": "InvalidArgument",
    }
    before = REGISTRY.get_sample_value("grpc_server_handled_total", labels) or 0
    async with grpc.aio.insecure_channel(server.address) as ch:
        raw = ch.unary_unary(f"/{SERVICE_NAME}/Echo")  # bytes in, bytes out
        for body in (b"\xff", b"\x0a\xff\xff\xff\xff\x0f", b"\x0f\x00"):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await raw(body, timeout=5)
            assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert "request: is not a valid request message" in info.value.details()
            assert "DecodeError" not in info.value.details()
        # A body that parses still reaches the servicer.
        reply = pb.EchoResponse.FromString(
            await raw(pb.EchoRequest(message="raw").SerializeToString(), timeout=5)
        )
    assert reply.message == "raw"
    assert REGISTRY.get_sample_value("grpc_server_handled_total", labels) == before + 3


class StoredDiagnostics(DiagnosticsServicer):
    """Echo answers from a MongoDB collection, as a service's read calls do."""

    def __init__(self, uri: str) -> None:
        self.client: pymongo.MongoClient = pymongo.MongoClient(uri, serverSelectionTimeoutMS=300)

    async def Echo(self, request, context):
        self.client.get_default_database()["echoes"].find_one({"_id": request.message})
        return await super().Echo(request, context)


async def test_an_unreachable_database_is_unavailable_not_internal(own_mongodb):
    servicer = StoredDiagnostics(mongodb_uri(own_mongodb.port, "echo"))
    srv = build_server(
        settings(),
        [(pb_grpc.add_DiagnosticsServiceServicer_to_server, servicer)],
        method_policy=POLICY,
        verifier=TokenVerifier(DEV_SECRET),
    )
    await srv.start()
    try:
        async with grpc.aio.insecure_channel(srv.address) as ch:
            stub = pb_grpc.DiagnosticsServiceStub(ch)
            assert (await stub.Echo(pb.EchoRequest(message="x"), timeout=5)).message == "x"
            own_mongodb.stop()
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.Echo(pb.EchoRequest(message="x"), timeout=5)
        error = info.value
        assert error.code() is grpc.StatusCode.UNAVAILABLE
        assert dict(error.trailing_metadata())["x-trace-id"] in error.details()
    finally:
        await srv.stop(0)
        servicer.client.close()
