"""Run every benchmark side by side and write docs/benchmarks.md with the machine and date.

Each bench module in this folder exposes ``async def run() -> str`` returning a markdown
section; this runner adds the context a reader needs to trust the numbers.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUTPUT = HERE.parent.parent / "docs" / "benchmarks.md"
BENCHES = [
    "bench_grpc",
    "bench_outbox",
    "bench_registration",
    "bench_catalog",
    "bench_notifications",
    "bench_ingress",
    "bench_recommendation",
    "bench_search",
    "bench_search_perf",
    "bench_recommendation_perf",
    "bench_load",
]


def machine() -> str:
    """One line describing where the numbers were taken."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores{memory}; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}"
    )


async def main(names: list[str]) -> str:
    """Run the named benches one after another; return the whole report."""
    sys.path.insert(0, str(HERE))
    started = datetime.now(UTC)
    sections = []
    for name in names:
        module = importlib.import_module(name)
        t0 = time.monotonic()
        section = await module.run()
        sections.append(f"{section.rstrip()}\n\n_{name} took {time.monotonic() - t0:.0f} s._\n")
    header = (
        "# Benchmarks\n\n"
        "Written by `make bench` (tests/load/run_all.py). Each comparison runs both sides in one "
        "process tree on the same machine in alternating rounds, because these machines are shared "
        "and noisy: read the ratios, not the absolute numbers.\n\n"
        f"- Date: {started:%Y-%m-%d %H:%M} UTC\n- Machine: {machine()}\n"
    )
    return header + "\n" + "\n".join(sections)


if __name__ == "__main__":
    chosen = sys.argv[1:] or BENCHES
    report = asyncio.run(main(chosen))
    OUTPUT.write_text(report)
    print(report)
