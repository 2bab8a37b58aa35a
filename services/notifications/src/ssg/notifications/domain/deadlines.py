"""Funding-deadline reminders: an open funding opportunity whose deadline is at most
``window`` ahead is news once more, for the same subscribers as its publication, once per
deadline (a moved deadline is reminded again)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from ssg.notifications.domain.model import Item

REMINDER_EVENT_TYPE = "notifications.FundingDeadline"


def reminder_due(
    deadline: datetime | None, reminded_for: datetime | None, now: datetime, window: timedelta
) -> bool:
    """True when a reminder for this deadline should go out now."""
    if deadline is None or deadline <= now or deadline - now > window:
        return False
    return reminded_for != deadline


def reminder_source(funding_id: str, deadline: datetime) -> str:
    """The source part of a reminder's delivery ids (one reminder per deadline)."""
    return f"deadline:{funding_id}:{deadline.isoformat()}"


def reminder_item(item: Item, deadline: datetime, now: datetime) -> Item:
    """The funding item as a reminder: 'Funding deadline in N days'."""
    days = max(0, (deadline - now).days)
    when = "today" if days == 0 else f"in {days} day{'s' if days != 1 else ''}"
    return replace(
        item,
        headline=f"Funding deadline {when}",
        details=(("deadline", deadline.date().isoformat()),),
    )
