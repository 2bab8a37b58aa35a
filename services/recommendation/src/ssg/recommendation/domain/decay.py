"""Exponential time decay kept as sums that commute, so counts stay exact in any order.

A weight w observed at time t is stored as ``w * 2 ** ((t - EPOCH) / half_life)``. Adding such
terms is order-independent (an ``$inc``), so two workers, redeliveries handled once and
out-of-order events all give the same sum; reading at ``now`` multiplies by
``2 ** (-(now - EPOCH) / half_life)``, which is the sum of each w halved once per half-life
since it was observed. Floats hold this for centuries of half-lives of a week or more.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


def _half_lives(at: datetime, half_life: timedelta) -> float:
    return (at - EPOCH) / half_life


def boosted(weight: float, at: datetime, half_life: timedelta) -> float:
    """The stored form of weight observed at at."""
    return float(weight * 2.0 ** _half_lives(at, half_life))


def value_at(stored: float, now: datetime, half_life: timedelta) -> float:
    """The decayed value at now of a stored sum."""
    return float(stored * 2.0 ** -_half_lives(now, half_life))
