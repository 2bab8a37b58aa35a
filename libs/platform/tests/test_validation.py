"""The shared field checks: ids, repeats, ISO 639-1 language codes, timestamps."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from ssg.platform.errors import ValidationError, Violations
from ssg.platform.validation import (
    TIMESTAMP_MAX_SECONDS,
    TIMESTAMP_MIN_SECONDS,
    check_id,
    check_unique,
    is_id,
    is_language,
    require_id,
    to_datetime,
)


@pytest.mark.parametrize("value", ["a", "0f" * 16, "org_1-x", "x" * 64])
def test_ids(value: str) -> None:
    assert is_id(value)
    v = Violations()
    assert check_id(v, "id", value) == value
    assert not v


@pytest.mark.parametrize("value", ["x" * 65, "a b", "a/b", "é", "\na", "abc\n"])
def test_not_ids(value: str) -> None:
    v = Violations()
    check_id(v, "parent_id", value)
    assert [(i.field, i.reason) for i in v.items] == [("parent_id", "is not a valid id")]


def test_empty_id_is_required_unless_optional() -> None:
    v = Violations()
    check_id(v, "id", "")
    check_id(v, "other", "", required=False)
    assert [(i.field, i.reason) for i in v.items] == [("id", "is required")]


def test_require_id_raises_naming_the_path() -> None:
    assert require_id("abc") == "abc"
    with pytest.raises(ValidationError) as info:
        require_id("no way", path="solution_id")
    assert [i.field for i in info.value.violations] == ["solution_id"]


def test_check_unique() -> None:
    v = Violations()
    check_unique(v, "tags", ["a", "b"])
    check_unique(v, "sdgs", [1, 2, 1])
    assert [(i.field, i.reason) for i in v.items] == [("sdgs", "must not repeat a value")]


@pytest.mark.parametrize(
    ("code", "known"), [("en", True), ("sw", True), ("EN", False), ("eng", False), ("", False)]
)
def test_is_language(code: str, known: bool) -> None:
    assert is_language(code) is known


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [
        (-62_135_596_801, 0),  # a second before 0001-01-01
        (253_402_300_800, 0),  # a second after 9999-12-31T23:59:59
        (2**63 - 1, 0),
        (-(2**63), 0),
        (0, -1),
        (0, 1_000_000_000),
    ],
)
def test_a_timestamp_outside_its_range_names_the_field(seconds: int, nanos: int) -> None:
    # Regression (fuzz): ToDatetime raised ValueError/OverflowError, answered as INTERNAL.
    with pytest.raises(ValidationError) as info:
        to_datetime(Timestamp(seconds=seconds, nanos=nanos), "updated_since")
    assert [v.field for v in info.value.violations] == ["updated_since"]


def test_timestamps_at_the_edges_of_the_range_are_aware_datetimes() -> None:
    first = to_datetime(Timestamp(seconds=TIMESTAMP_MIN_SECONDS), "t")
    last = to_datetime(Timestamp(seconds=TIMESTAMP_MAX_SECONDS, nanos=999_999_999), "t")
    assert first == datetime(1, 1, 1, tzinfo=UTC)
    assert last.year == 9999 and last.tzinfo is not None
