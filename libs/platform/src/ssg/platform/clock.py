"""Time and identity values every service stamps on its records."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime


def utc_now() -> datetime:
    """Now in UTC at millisecond precision (what MongoDB stores), so reads equal writes."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def new_id() -> str:
    """A fresh entity id: 32 hex digits."""
    return uuid.uuid4().hex
