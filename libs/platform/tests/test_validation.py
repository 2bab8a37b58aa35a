"""The shared field checks: ids, repeats, ISO 639-1 language codes."""

from __future__ import annotations

import pytest

from ssg.platform.errors import ValidationError, Violations
from ssg.platform.validation import check_id, check_unique, is_id, is_language, require_id


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
