"""utc_now is what MongoDB stores (UTC, milliseconds); new_id is 32 fresh hex digits."""

from __future__ import annotations

from datetime import UTC

from ssg.platform.clock import new_id, utc_now


def test_utc_now_is_aware_utc_at_millisecond_precision() -> None:
    now = utc_now()
    assert now.tzinfo is UTC
    assert now.microsecond % 1000 == 0


def test_new_id_is_32_hex_digits_and_fresh() -> None:
    ids = {new_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
