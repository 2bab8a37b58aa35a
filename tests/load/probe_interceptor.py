"""Probe: CPU per call of the platform interceptor's own work, layer by layer, in one process.

The wrapped handler of ``PlatformInterceptor`` is called directly, the way grpc.aio calls it,
with a stand-in servicer context (metadata in, trailers out), so no transport, serialization or
event-loop hop is measured: only what the platform adds (metrics, trace id, token check,
identity, access log), against the servicer coroutine called alone. Alternating rounds.

    uv run python tests/load/probe_interceptor.py          # prints a markdown table
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from prometheus_client import CollectorRegistry

from ssg.platform.auth.tokens import DEV_SECRET, DevTokenIssuer, Role, TokenVerifier
from ssg.platform.grpc.interceptors import PlatformInterceptor
from ssg.platform.logging import configure_logging

CALLS = 20_000
ROUNDS = 5


class Context:
    """What the wrapper uses of grpc.aio's ServicerContext."""

    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self._metadata = metadata

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def set_trailing_metadata(self, metadata: object) -> None:
        return None

    def code(self) -> None:
        return None

    def time_remaining(self) -> float:
        return 10.0


async def servicer(request: bytes, context: Any) -> bytes:
    """The servicer: returns what it got."""
    return request


async def wrapped(access_log: bool) -> Callable[[bytes, Any], Awaitable[Any]]:
    """The platform handler around servicer, as the interceptor builds it for a method."""
    interceptor = PlatformInterceptor(
        TokenVerifier(DEV_SECRET), {}, registry=CollectorRegistry(), access_log_enabled=access_log
    )
    handler = grpc.unary_unary_rpc_method_handler(
        servicer, request_deserializer=bytes, response_serializer=bytes
    )

    async def continuation(details: object) -> grpc.RpcMethodHandler:
        return handler

    class Details:
        method = "/ssg.probe.v1.Probe/Get"

    result = await interceptor.intercept_service(continuation, Details())
    assert result is not None
    return result.unary_unary


async def cpu_per_call(call: Callable[[bytes, Any], Awaitable[Any]], context: Context) -> float:
    """Process CPU microseconds per call over CALLS calls."""
    started = time.process_time()
    for _ in range(CALLS):
        await call(b"x", context)
    return (time.process_time() - started) / CALLS * 1e6


async def main() -> None:
    """Print the table."""
    token = DevTokenIssuer().issue("probe", [Role.MEMBER])
    signed = Context((("authorization", f"Bearer {token}"), ("user-agent", "grpc-python")))
    anonymous = Context((("user-agent", "grpc-python"),))
    sides = {
        "servicer coroutine alone": (servicer, signed),
        "platform handler, token, JSON access log": (await wrapped(True), signed),
        "platform handler, token, no access log": (await wrapped(False), signed),
        "platform handler, anonymous, JSON access log": (await wrapped(True), anonymous),
    }
    for call, context in sides.values():
        await cpu_per_call(call, context)  # warm-up: token cache, metric children, code paths
    results: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(ROUNDS):
        for name, (call, context) in sides.items():
            results[name].append(await cpu_per_call(call, context))
    print("| path | CPU us/call (median of rounds) | min | max |")
    print("|---|---:|---:|---:|")
    for name, values in results.items():
        print(
            f"| {name} | {statistics.median(values):.1f} | {min(values):.1f} | {max(values):.1f} |"
        )
    print(
        f"\n{ROUNDS} alternating rounds of {CALLS:,} calls; load average {os.getloadavg()[0]:.1f}."
    )


if __name__ == "__main__":
    with open(os.devnull, "w") as sink:
        # JSON lines to /dev/null: formatting and the write are measured, no terminal.
        configure_logging("probe", stream=sink)
        asyncio.run(main())
