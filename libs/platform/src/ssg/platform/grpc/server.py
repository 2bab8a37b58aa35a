"""The platform gRPC server: interceptors, reflection, health flipped by dependency checks,
graceful shutdown on SIGTERM/SIGINT, and ``serve()`` that does all of it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection
from prometheus_client import REGISTRY, CollectorRegistry, Gauge

from ssg.platform.auth.tokens import TokenVerifier
from ssg.platform.grpc.interceptors import MethodPolicy, PlatformInterceptor, normalize_policy
from ssg.platform.health import HealthCheck
from ssg.platform.metrics import once_per_registry, start_metrics_server, stop_metrics_server
from ssg.platform.settings import ConfigError, PlatformSettings

log = logging.getLogger(__name__)

AddServicerFn = Callable[[Any, Any], None]
"""A generated ``add_XServicer_to_server(servicer, server)`` function."""

ServicerRegistration = tuple[AddServicerFn, object]

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
# Health service name that is SERVING while the process answers at all, whatever its
# dependencies: a liveness probe on it restarts a wedged process, never one whose database is down.
LIVENESS_SERVICE = "liveness"


class _RecordingServer:
    """Stands in for the server while generated ``add_*_to_server`` functions run, so that the
    platform learns every service and method name (for reflection, health and policy checks)."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server
        self.methods: dict[str, list[str]] = {}

    def add_generic_rpc_handlers(self, handlers: Sequence[Any]) -> None:
        # Code generated before grpcio 1.62 registers only generic handlers: keep its name.
        for handler in handlers:
            name = getattr(handler, "service_name", None)
            if callable(name):
                self.methods.setdefault(name(), [])
        self._server.add_generic_rpc_handlers(handlers)

    def add_registered_method_handlers(self, service: str, handlers: Mapping[str, Any]) -> None:
        self.methods[service] = list(handlers)
        self._server.add_registered_method_handlers(service, handlers)


def verifier_from_settings(settings: PlatformSettings) -> TokenVerifier:
    """The token verifier configured by SSG_JWT_PUBLIC_KEY or SSG_JWT_SECRET (fails fast)."""
    key = settings.jwt_public_key or settings.jwt_secret
    if not key:
        raise ConfigError("invalid configuration: SSG_JWT_SECRET or SSG_JWT_PUBLIC_KEY must be set")
    return TokenVerifier(key, issuer=settings.jwt_issuer, audience=settings.jwt_audience)


class PlatformServer:
    """A grpc.aio server with the platform stack; bound on construction, serving after start()."""

    def __init__(
        self,
        settings: PlatformSettings,
        servicers: Sequence[ServicerRegistration],
        health_checks: Mapping[str, HealthCheck] | None = None,
        method_policy: MethodPolicy | None = None,
        verifier: TokenVerifier | None = None,
        *,
        check_timeout_seconds: float = 2.0,
        registry: CollectorRegistry = REGISTRY,
        access_log: bool = True,
    ) -> None:
        self.settings = settings
        self._checks = dict(health_checks or {})
        self._check_timeout = check_timeout_seconds
        self._failing: dict[str, str] = {}
        self._serving = False
        self._poller: asyncio.Task[None] | None = None
        self._stop_requested: asyncio.Event | None = None
        self._gauges = once_per_registry(_build_health_gauges, registry)
        self.interceptor = PlatformInterceptor(
            verifier, method_policy, registry=registry, access_log_enabled=access_log
        )
        self._server = grpc.aio.server(
            interceptors=[self.interceptor],
            options=[
                ("grpc.max_send_message_length", settings.max_message_bytes),
                ("grpc.max_receive_message_length", settings.max_message_bytes),
                # Two processes must never share a port silently.
                ("grpc.so_reuseport", 0),
            ],
        )
        recorder = _RecordingServer(self._server)
        for add, servicer in servicers:
            add(servicer, recorder)
        self.service_names: tuple[str, ...] = tuple(recorder.methods)
        _check_policy(method_policy, recorder.methods)

        self.health = HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        reflection.enable_server_reflection(
            (
                *self.service_names,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            self._server,
        )
        address = f"{settings.grpc_host}:{settings.grpc_port}"
        try:
            self.port: int = self._server.add_insecure_port(address)
        except RuntimeError as exc:
            raise ConfigError(f"cannot listen on {address} (SSG_GRPC_PORT): {exc}") from None
        if not self.port:
            raise ConfigError(f"cannot listen on {address} (SSG_GRPC_PORT)")

    @property
    def address(self) -> str:
        """host:port that clients dial."""
        return f"{self.settings.grpc_host}:{self.port}"

    @property
    def serving(self) -> bool:
        """True while every dependency check passes (and the server is not shutting down)."""
        return self._serving

    @property
    def failing(self) -> dict[str, str]:
        """The failing dependency checks of the last round and why each failed."""
        return dict(self._failing)

    async def start(self) -> None:
        """Start serving (health NOT_SERVING until the first round of checks passes)."""
        self._stop_requested = asyncio.Event()
        for name in ("", *self.service_names):
            await self.health.set(name, NOT_SERVING)
        await self.health.set(LIVENESS_SERVICE, SERVING)
        self._gauges.serving.set(0)
        await self._server.start()
        self._poller = asyncio.create_task(self._poll(), name="health-poller")
        log.info(
            "grpc server listening",
            extra={"address": self.address, "services": list(self.service_names)},
        )

    async def check_dependencies(self) -> bool:
        """Run every check once (concurrently, each with a timeout) and publish the result."""
        results = await asyncio.gather(
            *(self._run_check(name, check) for name, check in self._checks.items())
        )
        failing = {name: error for name, error in results if error is not None}
        for name, error in failing.items():
            if name not in self._failing:
                log.warning("dependency check failing", extra={"check": name, "error": error})
        for name in self._failing.keys() - failing.keys():
            log.info("dependency check recovered", extra={"check": name})
        self._failing = failing
        for name in self._checks:
            self._gauges.check_up.labels(check=name).set(0 if name in failing else 1)
        serving = not failing
        self._gauges.serving.set(1 if serving else 0)
        if serving != self._serving:
            self._serving = serving
            status = SERVING if serving else NOT_SERVING
            for name in ("", *self.service_names):
                await self.health.set(name, status)
            log.info("health changed", extra={"serving": serving, "failing": sorted(failing)})
        return serving

    async def _run_check(self, name: str, check: HealthCheck) -> tuple[str, str | None]:
        try:
            await asyncio.wait_for(check(), self._check_timeout)
        except TimeoutError:
            return name, f"no answer within {self._check_timeout:g}s"
        except Exception as exc:
            return name, f"{type(exc).__name__}: {exc}"
        return name, None

    async def _poll(self) -> None:
        while True:
            try:
                await self.check_dependencies()
            except Exception:
                # A bug in the poller must not leave the health service frozen silently.
                log.exception("health poll failed")
            await asyncio.sleep(self.settings.health_interval_seconds)

    async def wait_for_termination(self) -> None:
        """Block until SIGTERM/SIGINT arrives or stop() is called."""
        assert self._stop_requested is not None, "start() first"
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self._on_signal, sig)
                installed.append(sig)
        try:
            # Not grpc's own wait_for_termination: cancelling that one cancels the future
            # server.stop() awaits. The server only terminates through stop(), which sets this.
            await self._stop_requested.wait()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        # stop() (run by the caller's finally) flips health before draining in-flight calls.
        log.info("shutdown requested", extra={"signal": sig.name})
        if self._stop_requested is not None:
            self._stop_requested.set()

    async def stop(self, grace: float | None = None) -> None:
        """Health NOT_SERVING, then stop accepting calls and let in-flight ones finish (grace s).

        Health flips first so that load balancers stop routing here while calls drain.
        """
        grace = self.settings.grace_seconds if grace is None else grace
        self._serving = False
        self._gauges.serving.set(0)
        await self.health.enter_graceful_shutdown()
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None
        if self._stop_requested is not None:
            self._stop_requested.set()
        await self._server.stop(grace)
        log.info("grpc server stopped", extra={"address": self.address})


@dataclass(frozen=True)
class _HealthGauges:
    serving: Gauge
    check_up: Gauge


def _build_health_gauges(registry: CollectorRegistry) -> _HealthGauges:
    """The health gauges in a registry (alerts watch them: deploy/monitoring)."""
    return _HealthGauges(
        serving=Gauge(
            "ssg_health_serving",
            "1 while the health service reports SERVING (every dependency check passes).",
            registry=registry,
        ),
        check_up=Gauge(
            "ssg_health_check_up",
            "1 while the named dependency check passes, 0 while it fails.",
            ["check"],
            registry=registry,
        ),
    )


def _check_policy(policy: MethodPolicy | None, methods: Mapping[str, list[str]]) -> None:
    """A policy entry for a method that is not served is a typo that would leave it public."""
    known = {f"/{service}/{method}" for service, names in methods.items() for method in names}
    unknown = sorted(set(normalize_policy(policy)) - known)
    if unknown:
        raise ConfigError(f"method policy names methods this server does not serve: {unknown}")


def build_server(
    settings: PlatformSettings,
    servicers: Sequence[ServicerRegistration],
    health_checks: Mapping[str, HealthCheck] | None = None,
    method_policy: MethodPolicy | None = None,
    verifier: TokenVerifier | None = None,
    **options: Any,
) -> PlatformServer:
    """A bound, not yet started PlatformServer (see PlatformServer for options)."""
    return PlatformServer(settings, servicers, health_checks, method_policy, verifier, **options)


async def serve(
    settings: PlatformSettings,
    servicers: Sequence[ServicerRegistration],
    health_checks: Mapping[str, HealthCheck] | None = None,
    method_policy: MethodPolicy | None = None,
    verifier: TokenVerifier | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT, with /metrics on its own port, then drain and return."""
    server = build_server(settings, servicers, health_checks, method_policy, verifier)
    metrics_port = start_metrics_server(settings.metrics_host, settings.metrics_port)
    await server.start()
    try:
        await server.wait_for_termination()
    finally:
        await server.stop(settings.grace_seconds)
        if metrics_port is not None:
            stop_metrics_server(metrics_port)
