"""Probe: server CPU per unary Echo for the bare grpc.aio server and the platform interceptor
with and without its JSON access log, each server in its own process, rounds alternating.

Unlike bench_grpc (the platform's whole server: health, reflection, metrics), the servers here
differ only in the interceptor, so the difference is what the interceptor costs a call inside
a real server (which the in-process probe_interceptor.py cannot see: transport, GC, the
logging machinery under a server's heap).

    uv run python tests/load/probe_grpc_layers.py
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import sys
from pathlib import Path

import grpc
from bench_grpc import Side, _round, _start, _stop, _wait_ready

from ssg.contracts.diagnostics.v1 import diagnostics_pb2_grpc as pb_grpc
from ssg.platform.auth.tokens import DEV_SECRET, DevTokenIssuer, Role, TokenVerifier
from ssg.platform.grpc.client import channel
from ssg.testing.servers import free_port

KINDS = ("bare", "platform", "platform without access log")
ROUNDS = 8
ROUND_SECONDS = 0.5


async def serve(kind: str, port: int) -> None:
    """One server of the given kind until SIGTERM (its JSON lines go to /dev/null)."""
    from ssg.platform.diagnostics import DiagnosticsServicer
    from ssg.platform.grpc.interceptors import PlatformInterceptor

    interceptors: list[grpc.aio.ServerInterceptor] = []
    if kind != "bare":
        interceptors.append(
            PlatformInterceptor(
                TokenVerifier(DEV_SECRET), {}, access_log_enabled=kind == "platform"
            )
        )
    server = grpc.aio.server(interceptors=interceptors)
    pb_grpc.add_DiagnosticsServiceServicer_to_server(DiagnosticsServicer(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(1)


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def main() -> None:
    """Print one line per server kind."""
    token = DevTokenIssuer().issue("probe", [Role.MEMBER])
    sides: list[tuple[str, Side]] = []
    for kind in KINDS:
        port = free_port()
        argv = [sys.executable, __file__, "--serve", kind, str(port)]
        sides.append((kind, _start(kind, argv, port, dict(os.environ))))
    channels = [channel(side.address, token=token) for _, side in sides]
    try:
        stubs = [pb_grpc.DiagnosticsServiceStub(ch) for ch in channels]
        for (_, side), stub in zip(sides, stubs, strict=True):
            await _wait_ready(stub, side, 30)
            await _round(stub, side, ROUND_SECONDS, False)
        totals: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0, 0.0])
        for index in range(ROUNDS):
            order = list(zip(sides, stubs, strict=True))
            if index % 2:
                order.reverse()
            for (kind, side), stub in order:
                requests, seconds = side.requests, side.seconds
                cpu = _cpu_seconds(side.process.pid)
                await _round(stub, side, ROUND_SECONDS, True)
                totals[kind][0] += side.requests - requests
                totals[kind][1] += side.seconds - seconds
                totals[kind][2] += _cpu_seconds(side.process.pid) - cpu
        for kind, (n, seconds, cpu) in totals.items():
            print(
                f"{kind}: {n / seconds:.0f} req/s, server CPU {cpu / n * 1e6:.0f} us/req ({n:.0f})"
            )
        print(f"load average {os.getloadavg()[0]:.1f}")
    finally:
        for ch in channels:
            await ch.close()
        for _, side in sides:
            _stop(side)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    if sys.argv[1:2] == ["--serve"]:
        from ssg.platform.logging import configure_logging

        with open(os.devnull, "w") as sink:
            configure_logging("probe", stream=sink)
            asyncio.run(serve(sys.argv[2], int(sys.argv[3])))
    else:
        asyncio.run(main())
