"""Gauges of counts held in a service's datastore (organizations by status, solutions by SDG),
recounted periodically by a task beside the API.

Every replica counts the same shared datastore and reports the same value, so dashboards and
alerts aggregate these gauges with ``max``, never ``sum``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client import Gauge

from ssg.platform.process import every

log = logging.getLogger(__name__)

Counts = Mapping[tuple[str, ...], float]
"""A count per label-value tuple, in the order of the gauge's label names."""


@dataclass
class StoreGauge:
    """A labelled gauge set from ``read()``: label sets that disappear are removed."""

    gauge: Gauge
    read: Callable[[], Counts]
    _shown: set[tuple[str, ...]] = field(default_factory=set)

    def refresh(self) -> None:
        """Blocking: read the counts and publish them."""
        counts = self.read()
        for labels, value in counts.items():
            self.gauge.labels(*labels).set(value)
        for gone in self._shown - set(counts):
            self.gauge.remove(*gone)
        self._shown = set(counts)


async def refresh_forever(
    gauges: Sequence[StoreGauge], interval_seconds: float, stop: asyncio.Event
) -> None:
    """Recount every gauge now and then every interval until stop is set (off the event loop)."""

    async def one_round() -> None:
        for gauge in gauges:
            await asyncio.to_thread(gauge.refresh)

    await every(interval_seconds, one_round, stop, log=log, failure="store gauges refresh failed")


def with_zeros(counts: Mapping[str, float], every_value: Sequence[str]) -> Counts:
    """Counts keyed by one label, with 0 for each expected value the store has none of (a status
    nobody is in still shows, so a drop to zero is visible rather than a vanished series)."""
    return {(value,): float(counts.get(value, 0)) for value in [*every_value, *counts]}
