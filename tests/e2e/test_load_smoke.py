"""A short run of the load mix (tests/load/load_mix.py) on the session's local stack: no call may
fail and no kind's p99 may pass a generous bound. The full run is `make load`."""

from __future__ import annotations

import pytest

from ssg.testing.fixtures import load_script

from .conftest import ROOT, LocalStack

RATE = 20.0  # calls started per second
SECONDS = 15.0
# Generous: the local MongoDB stand-in scans the whole collection for every filtered list.
P99_BOUND_MS = 5_000.0


@pytest.mark.timeout(300)
async def test_a_fixed_rate_mix_has_no_errors_and_a_bounded_p99(local_stack: LocalStack) -> None:
    tool = load_script(ROOT / "tests" / "load" / "load_mix.py", "ssg_load_mix")
    report = await tool.run(tool.addresses_from(local_stack.ports_file), RATE, SECONDS)
    print(report.markdown())
    answered = sum(len(k.latencies) for k in report.kinds)
    assert report.errors == 0, report.markdown()
    assert answered == int(RATE * SECONDS)
    assert report.worst_p99_ms() < P99_BOUND_MS, report.markdown()
