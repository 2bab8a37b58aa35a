"""The load mix (tests/load/load_mix.py) on a whole local stack of its own, with its demo data:
throughput, p50 and p99 per call and the errors, for docs/benchmarks.md.

The stack is started as the end-to-end tests start theirs (free ports, its own RabbitMQ vhost,
``stack.py up`` then ``down``), so `make bench` needs nothing running beforehand.

    uv run python tests/load/bench_load.py
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from ssg.testing.fixtures import load_script
from ssg.testing.servers import ensure_rabbitmq

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RATE = float(os.environ.get("SSG_BENCH_LOAD_RATE", "20"))  # calls started per second
SECONDS = float(os.environ.get("SSG_BENCH_LOAD_SECONDS", "60"))


async def run() -> str:
    """Start a stack, offer the mix at RATE for SECONDS, stop the stack; the markdown section."""
    stacks = load_script(ROOT / "tests" / "e2e" / "conftest.py", "ssg_e2e_stacks")
    tool = load_script(HERE / "load_mix.py", "ssg_load_mix")
    with (
        tempfile.TemporaryDirectory(prefix="ssg-bench-load-") as tmp,
        stacks.stack_instance(Path(tmp), ensure_rabbitmq(), "ssg-bench") as stack,
    ):
        report = await tool.run(tool.addresses_from(stack.ports_file), RATE, SECONDS)
        load = os.getloadavg()[0]
    return (
        "## Load mix on the local stack\n\n"
        "`tests/load/load_mix.py` (open loop, every call with a 10 s deadline) against every "
        "process of `deploy/local/ports.toml` started with its demo data on this machine (client, "
        "services, Kafka, MongoDB and OpenSearch stand-ins share its cores). `make load` runs the "
        "same mix against a stack started by `make up`.\n\n"
        f"{report.markdown()}\n\n"
        f"Errors: **{report.errors}**. Load average at the end: {load:.1f}.\n"
    )


if __name__ == "__main__":
    print(asyncio.run(run()))
