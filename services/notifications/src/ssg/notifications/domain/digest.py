"""Digest periods: a daily digest covers one UTC day, a weekly one a week from Monday 00:00
UTC. A digest is due once its period has ended."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ssg.notifications.domain.languages import ENGLISH, phrase
from ssg.notifications.domain.model import Frequency


def period_start(frequency: Frequency, at: datetime) -> datetime:
    """Start of the period that contains at."""
    day = at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if frequency is Frequency.DAILY:
        return day
    if frequency is Frequency.WEEKLY:
        return day - timedelta(days=day.weekday())
    raise ValueError("instant subscriptions have no digest period")


def next_boundary(frequency: Frequency, at: datetime) -> datetime:
    """End of the period that contains at (when its digest becomes due)."""
    step = timedelta(days=1 if frequency is Frequency.DAILY else 7)
    return period_start(frequency, at) + step


def period_label(frequency: Frequency, start: datetime, language: str = ENGLISH) -> str:
    """How a digest names its period, e.g. 'Daily digest, 2026-11-27', in language."""
    date = f"{start:%Y-%m-%d}"
    if frequency is Frequency.DAILY:
        return phrase(language, "Daily digest, {date}", date=date)
    return phrase(language, "Weekly digest, week of {date}", date=date)
