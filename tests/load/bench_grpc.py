"""Benchmark: unary Echo through the full platform stack vs a bare grpc.aio server.

Both servers serve the same DiagnosticsServicer, each in its own process on loopback; the
same client (this process, concurrency 32, a valid bearer token) loads them in alternating
rounds so that machine noise hits both sides alike. Goal: platform >= 0.75x bare req/s.

    uv run python tests/load/bench_grpc.py            # prints a markdown section
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import grpc
from prometheus_client.parser import text_string_to_metric_families

from ssg.contracts.diagnostics.v1 import diagnostics_pb2 as pb
from ssg.contracts.diagnostics.v1 import diagnostics_pb2_grpc as pb_grpc
from ssg.platform.auth.tokens import DEV_SECRET, DevTokenIssuer, Role
from ssg.platform.grpc.client import channel
from ssg.testing.servers import free_port

CONCURRENCY = 32
ROUNDS = 10
ROUND_SECONDS = 0.5
WARMUP_SECONDS = 0.5
GOAL = 0.75


@dataclass
class Side:
    """One server under test and what the client measured against it."""

    name: str
    process: subprocess.Popen[bytes]
    address: str
    requests: int = 0
    seconds: float = 0.0
    errors: int = 0
    cpu_seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    round_rps: list[float] = field(default_factory=list)

    @property
    def rps(self) -> float:
        """Completed requests per second over all measured rounds."""
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_us_per_request(self) -> float:
        """Server process CPU time per request (noise-resistant: work done, not wall time)."""
        return self.cpu_seconds / self.requests * 1e6 if self.requests else float("nan")

    def percentile(self, q: float) -> float:
        """Latency percentile q (0..100) in milliseconds."""
        if len(self.latencies) < 2:
            return float("nan")
        cuts = statistics.quantiles(self.latencies, n=100, method="inclusive")
        return cuts[int(q) - 1] * 1000


async def _serve_bare(port: int) -> None:
    """A grpc.aio server with the same servicer and no platform pieces at all."""
    from ssg.platform.diagnostics import DiagnosticsServicer

    server = grpc.aio.server()
    pb_grpc.add_DiagnosticsServiceServicer_to_server(DiagnosticsServicer(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(1)


def _start(name: str, argv: list[str], port: int, env: dict[str, str]) -> Side:
    process = subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        # The platform side still formats its JSON access log per call; only the sink is cheap.
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return Side(name, process, f"127.0.0.1:{port}")


def _start_servers() -> tuple[Side, Side]:
    platform_port, bare_port = free_port(), free_port()
    env = {
        **os.environ,
        "SSG_SERVICE": "diagnostics",
        "SSG_GRPC_HOST": "127.0.0.1",
        "SSG_GRPC_PORT": str(platform_port),
        "SSG_METRICS_PORT": "0",
        "SSG_JWT_SECRET": DEV_SECRET,
    }
    env.pop("SSG_MONGODB_URI", None)
    platform = _start(
        "platform stack", [sys.executable, "-m", "ssg.platform.diagnostics"], platform_port, env
    )
    bare = _start(
        "bare grpc.aio",
        [sys.executable, os.path.abspath(__file__), "--serve-bare", str(bare_port)],
        bare_port,
        dict(os.environ),
    )
    return platform, bare


async def _wait_ready(stub: pb_grpc.DiagnosticsServiceStub, side: Side, within: float) -> None:
    deadline = time.monotonic() + within
    while True:
        if side.process.poll() is not None:
            raise RuntimeError(f"{side.name} exited with {side.process.returncode}")
        try:
            await stub.Echo(pb.EchoRequest(message="ready?"), timeout=0.5)
            return
        except grpc.aio.AioRpcError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def _round(
    stub: pb_grpc.DiagnosticsServiceStub, side: Side, seconds: float, record: bool
) -> None:
    """CONCURRENCY workers send Echo back to back for seconds; record counts and latencies."""
    request = pb.EchoRequest(message="ping")
    await round_of(side, lambda: stub.Echo(request), seconds, record)


async def round_of(
    side: Side,
    call: Callable[[], Awaitable[object]],
    seconds: float,
    record: bool,
    error_codes: collections.Counter[str] | None = None,
) -> None:
    """CONCURRENCY workers start calls back to back for seconds; the round ends when every call
    has finished. Recorded into side if record; failures counted by status in error_codes."""
    stop_at = time.perf_counter() + seconds
    latencies: list[float] = []
    errors = 0

    async def worker() -> None:
        nonlocal errors
        while (started := time.perf_counter()) < stop_at:
            try:
                await call()
            except grpc.aio.AioRpcError as exc:
                errors += 1
                if error_codes is not None:
                    error_codes[exc.code().name] += 1
                continue
            latencies.append(time.perf_counter() - started)

    cpu_before = _cpu_seconds(side.process.pid)
    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - began
    if record:
        side.requests += len(latencies)
        side.seconds += elapsed
        side.errors += errors
        side.cpu_seconds += _cpu_seconds(side.process.pid) - cpu_before
        side.latencies.extend(latencies)
        side.round_rps.append(len(latencies) / elapsed)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc; 0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def api_env(
    service: str, mongodb_uri: str, port: int, metrics_port: int, extra: dict[str, str], **more: str
) -> dict[str, str]:
    """The environment of a service's API process under a benchmark: ours without SSG_
    settings, extra (``--api-env``), then the benchmark's own (``more``: SSG_NAME=value)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSG_")}
    return (
        extra
        | env
        | {
            "SSG_SERVICE": service,
            "SSG_INSTANCE": "global",
            "SSG_GRPC_HOST": "127.0.0.1",
            "SSG_GRPC_PORT": str(port),
            "SSG_METRICS_HOST": "127.0.0.1",
            "SSG_METRICS_PORT": str(metrics_port),
            "SSG_MONGODB_URI": mongodb_uri,
            "SSG_JWT_SECRET": DEV_SECRET,
            "SSG_GRACE_SECONDS": "1",
        }
        | {f"SSG_{name.upper()}": value for name, value in more.items()}
    )


def env_overrides(pairs: Sequence[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings (``--api-env``) as a dict; each key must be an SSG_ setting."""
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.startswith("SSG_"):
            raise SystemExit(f"--api-env wants SSG_NAME=value, got {pair!r}")
        result[key] = value
    return result


def read_cache_counts(metrics_port: int) -> collections.Counter[str]:
    """The API's read cache calls by outcome (hit, miss, bypass), from its /metrics."""
    counts: collections.Counter[str] = collections.Counter()
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as reply:
        for family in text_string_to_metric_families(reply.read().decode()):
            if family.name != "ssg_read_cache_requests":
                continue
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    counts[sample.labels["outcome"]] += int(sample.value)
    return counts


async def wait_cache_current(metrics_port: int, within: float = 120.0) -> None:
    """Wait until the API's read cache feed says it is current (at once without a feed)."""
    deadline = time.monotonic() + within
    url = f"http://127.0.0.1:{metrics_port}/metrics"

    def scrape() -> str:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return str(reply.read().decode())

    while True:
        text = await asyncio.to_thread(scrape)
        values = [
            sample.value
            for family in text_string_to_metric_families(text)
            if family.name == "ssg_read_cache_feed_up"
            for sample in family.samples
        ]
        if not values or all(v == 1 for v in values):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"read cache feed not current within {within:g} s")
        await asyncio.sleep(0.2)


def cache_note(before: collections.Counter[str], after: collections.Counter[str]) -> str:
    """'hit 97.1%, miss 2.9%, bypass 0.0% of N cache reads' between two readings."""
    delta = {k: after[k] - before[k] for k in ("hit", "miss", "bypass")}
    total = sum(delta.values())
    if not total:
        return "no read cache reads (cache off)"
    shares = ", ".join(f"{k} {v / total:.1%}" for k, v in delta.items())
    return f"{shares} of {total:,} cache reads"


def _stop(side: Side) -> None:
    if side.process.poll() is None:
        side.process.send_signal(signal.SIGTERM)
        try:
            side.process.wait(15)
        except subprocess.TimeoutExpired:
            side.process.kill()
            side.process.wait(5)


async def run() -> str:
    """Run the benchmark and return a markdown section with the results."""
    platform, bare = _start_servers()
    token = DevTokenIssuer().issue("bench", [Role.MEMBER])
    try:
        async with (
            channel(platform.address, token=token) as platform_channel,
            channel(bare.address, token=token) as bare_channel,
        ):
            stubs = {
                platform.name: pb_grpc.DiagnosticsServiceStub(platform_channel),
                bare.name: pb_grpc.DiagnosticsServiceStub(bare_channel),
            }
            for side in (platform, bare):
                await _wait_ready(stubs[side.name], side, within=30)
                await _round(stubs[side.name], side, WARMUP_SECONDS, record=False)
            for index in range(ROUNDS):
                # Alternate which side goes first, so neither always follows the other.
                order = (platform, bare) if index % 2 == 0 else (bare, platform)
                for side in order:
                    await _round(stubs[side.name], side, ROUND_SECONDS, record=True)
    finally:
        _stop(platform)
        _stop(bare)
    return _report(platform, bare)


def _report(platform: Side, bare: Side) -> str:
    ratio = platform.rps / bare.rps if bare.rps else 0.0
    # Rounds of the two sides run back to back, so the ratio within a pair shares the
    # machine's load at that moment; the median of those ratios shrugs off a noisy pair.
    paired = statistics.median(
        p / b for p, b in zip(platform.round_rps, bare.round_rps, strict=True) if b
    )
    cpu_ratio = bare.cpu_us_per_request / platform.cpu_us_per_request
    verdict = "met" if ratio >= GOAL else "NOT met"
    rows = [
        f"| {s.name} | {s.rps:,.0f} | {s.percentile(50):.2f} | {s.percentile(99):.2f} "
        f"| {s.cpu_us_per_request:,.0f} | {s.requests:,} | {s.errors} |"
        for s in (platform, bare)
    ]
    return "\n".join(
        [
            "## gRPC server stack overhead",
            "",
            f"Unary Echo, concurrency {CONCURRENCY}, {ROUNDS} alternating rounds of "
            f"{ROUND_SECONDS:g} s per side, loopback, each server in its own process; the "
            "platform side runs every interceptor (metrics, trace id, JSON access log, "
            "bearer-token auth, error mapping) and the client sends a valid token to both.",
            "",
            "| server | req/s | p50 ms | p99 ms | server CPU us/req | requests | errors |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            f"Ratio platform / bare req/s: **{ratio:.2f}x** (goal >= {GOAL}x: {verdict}); "
            f"median of paired rounds {paired:.2f}x; by server CPU per request {cpu_ratio:.2f}x.",
            f"Machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end "
            "(the client shares the machine; a busy machine widens the spread).",
            "",
        ]
    )


def main() -> None:
    """Print the benchmark's markdown section (or serve the bare side when asked to)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        asyncio.run(_serve_bare(args.serve_bare))
        return
    print(asyncio.run(run()))


if __name__ == "__main__":
    main()
