"""Store gauges: counts published, vanished label sets removed, zeros for expected values."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, Gauge

from ssg.platform.gauges import Counts, StoreGauge, refresh_forever, with_zeros
from ssg.testing.waiting import eventually


def test_refresh_sets_counts_and_removes_label_sets_that_vanished() -> None:
    registry = CollectorRegistry()
    gauge = Gauge("things", "Things.", ["kind", "region"], registry=registry)
    reads: list[Counts] = [{("a", "x"): 2, ("b", "y"): 5}, {("a", "x"): 3}]
    store_gauge = StoreGauge(gauge, lambda: reads.pop(0))

    store_gauge.refresh()
    assert registry.get_sample_value("things", {"kind": "b", "region": "y"}) == 5
    store_gauge.refresh()
    assert registry.get_sample_value("things", {"kind": "a", "region": "x"}) == 3
    assert registry.get_sample_value("things", {"kind": "b", "region": "y"}) is None


def test_with_zeros_keeps_every_expected_value_and_unexpected_ones() -> None:
    counts = with_zeros({"B": 4, "Z": 1}, ["A", "B"])
    assert counts == {("A",): 0.0, ("B",): 4.0, ("Z",): 1.0}


async def test_refresh_forever_survives_a_failed_read_and_stops_on_the_event() -> None:
    registry = CollectorRegistry()
    gauge = Gauge("polled", "Polled.", ["k"], registry=registry)
    calls: list[int] = []
    stop = asyncio.Event()

    def read() -> Counts:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("datastore away")
        return {("k",): float(len(calls))}

    task = asyncio.create_task(refresh_forever([StoreGauge(gauge, read)], 0.01, stop))
    await eventually(lambda: len(calls) >= 3, what="three rounds", within=5, interval=0.01)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert (registry.get_sample_value("polled", {"k": "k"}) or 0) >= 2
