"""A short run of the load mix (tests/load/load_mix.py) on the session's local stack: no call may
fail and no kind's p99 may pass a generous bound. The full run is `make load`."""

from __future__ import annotations

import importlib.util
from types import ModuleType

import pytest

from .conftest import ROOT, LocalStack

RATE = 20.0  # calls started per second
SECONDS = 15.0
P99_BOUND_MS = 2_000.0


def load_mix() -> ModuleType:
    """tests/load/load_mix.py (a script) as a module."""
    spec = importlib.util.spec_from_file_location("ssg_load_mix", ROOT / "tests/load/load_mix.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(300)
async def test_a_fixed_rate_mix_has_no_errors_and_a_bounded_p99(local_stack: LocalStack) -> None:
    tool = load_mix()
    report = await tool.run(tool.addresses_from(local_stack.ports_file), RATE, SECONDS)
    print(report.markdown())
    answered = sum(len(k.latencies) for k in report.kinds)
    assert report.errors == 0, report.markdown()
    assert answered == int(RATE * SECONDS)
    assert report.worst_p99_ms() < P99_BOUND_MS, report.markdown()
