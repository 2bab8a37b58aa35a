"""DiagnosticsService: the smallest real service, to check a process end to end through the stack.

``python -m ssg.platform.diagnostics`` serves it with every platform piece (settings from
``SSG_*``; ``SSG_SERVICE`` defaults to ``diagnostics``; ``SSG_MONGODB_URI`` adds a MongoDB check).
"""

from __future__ import annotations

import asyncio
import os
import sys

import grpc

from ssg.contracts.diagnostics.v1 import diagnostics_pb2, diagnostics_pb2_grpc
from ssg.platform.auth.tokens import Role
from ssg.platform.errors import Violations
from ssg.platform.grpc.interceptors import MethodPolicy, current_identity
from ssg.platform.grpc.server import ServicerRegistration, serve, verifier_from_settings
from ssg.platform.health import HealthCheck, mongodb_check
from ssg.platform.logging import configure_logging
from ssg.platform.settings import ConfigError, PlatformSettings, load_settings
from ssg.platform.tracing import current_trace_id

SERVICE_NAME = diagnostics_pb2.DESCRIPTOR.services_by_name["DiagnosticsService"].full_name
MAX_MESSAGE_CHARS = 256
MAX_DELAY_MS = 10_000

POLICY: MethodPolicy = {
    f"/{SERVICE_NAME}/WhoAmI": frozenset({Role.MEMBER, Role.REVIEWER, Role.OPERATOR}),
}
"""Echo is public (probes use it); WhoAmI needs a signed-in staff role."""


class DiagnosticsServicer(diagnostics_pb2_grpc.DiagnosticsServiceServicer):
    """Echo and WhoAmI, validated like any other API."""

    async def Echo(
        self, request: diagnostics_pb2.EchoRequest, context: grpc.aio.ServicerContext
    ) -> diagnostics_pb2.EchoResponse:
        """Return the message (after delay_ms) with the trace id the server saw."""
        v = Violations()
        v.check(
            1 <= len(request.message) <= MAX_MESSAGE_CHARS,
            "message",
            f"must be 1 to {MAX_MESSAGE_CHARS} characters, got {len(request.message)}",
        )
        v.check(
            request.delay_ms <= MAX_DELAY_MS,
            "delay_ms",
            f"must be at most {MAX_DELAY_MS}, got {request.delay_ms}",
        )
        v.raise_if_any()
        if request.delay_ms:
            await asyncio.sleep(request.delay_ms / 1000)
        return diagnostics_pb2.EchoResponse(message=request.message, trace_id=current_trace_id())

    async def WhoAmI(
        self, request: diagnostics_pb2.WhoAmIRequest, context: grpc.aio.ServicerContext
    ) -> diagnostics_pb2.WhoAmIResponse:
        """Describe the caller as the server's auth interceptor verified it."""
        identity = current_identity()
        return diagnostics_pb2.WhoAmIResponse(
            subject=identity.subject,
            roles=sorted(str(r) for r in identity.roles),
            organization_id=identity.organization_id,
            instance=identity.instance,
        )


def registration() -> ServicerRegistration:
    """The (add function, servicer) pair to pass to build_server or serve."""
    return diagnostics_pb2_grpc.add_DiagnosticsServiceServicer_to_server, DiagnosticsServicer()


def health_checks(settings: PlatformSettings) -> dict[str, HealthCheck]:
    """Dependency checks for the configured dependencies (MongoDB when SSG_MONGODB_URI is set)."""
    checks: dict[str, HealthCheck] = {}
    if settings.mongodb_uri:
        checks["mongodb"] = mongodb_check(settings.mongodb_uri)
    return checks


def main() -> int:
    """Serve DiagnosticsService until SIGTERM/SIGINT; exit status 0 after a clean drain."""
    try:
        settings = load_settings(
            PlatformSettings, service=os.environ.get("SSG_SERVICE") or "diagnostics"
        )
        verifier = verifier_from_settings(settings)
    except ConfigError as exc:
        print(exc, file=sys.stderr)  # logging is not configured yet: stderr is all there is
        return 2
    configure_logging(settings.service, settings.instance, settings.log_level)
    asyncio.run(serve(settings, [registration()], health_checks(settings), POLICY, verifier))
    return 0


if __name__ == "__main__":
    sys.exit(main())
