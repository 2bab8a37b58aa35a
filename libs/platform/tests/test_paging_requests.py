"""page_request reads size and token into violations; next_page cuts a page and signs the next."""

from __future__ import annotations

from datetime import datetime

import pytest

from ssg.platform.errors import ValidationError, Violations
from ssg.platform.paging import MAX_PAGE_SIZE, PageCodec, next_page, page_request

CODEC = PageCodec(b"k" * 32)


def _fields(exc: ValidationError) -> dict[str, str]:
    return {v.field: v.reason for v in exc.violations}


def test_first_page_has_default_size_and_no_cursor() -> None:
    assert page_request(CODEC, Violations(), 0, "", "q") == (20, None)


def test_next_page_token_round_trips_to_the_last_item() -> None:
    items = [("b", "2"), ("a", "1"), ("a", "0")]
    page = next_page(CODEC, items, 2, lambda item: item, "q")
    assert page.items == [("b", "2"), ("a", "1")]
    assert page_request(CODEC, Violations(), 2, page.next_page_token, "q") == (2, ("a", "1"))


def test_last_page_has_no_token() -> None:
    page = next_page(CODEC, ["x"], 2, lambda item: (item, item), "q")
    assert page.items == ["x"]
    assert page.next_page_token == ""


def test_cursor_key_name_is_the_callers() -> None:
    page = next_page(CODEC, [1, 2], 1, lambda n: (str(n), f"id{n}"), "q", key="t")
    assert CODEC.decode(page.next_page_token, "q") == {"t": "1", "id": "id1"}
    with pytest.raises(ValidationError) as info:
        page_request(CODEC, Violations(), 1, page.next_page_token, "q")  # expects "k"
    assert set(_fields(info.value)) == {"page.page_token"}


def test_bad_size_and_token_are_both_reported_with_earlier_violations() -> None:
    v = Violations()
    v.add("sdg", "SDG must be 1 to 17, got 18")
    with pytest.raises(ValidationError) as info:
        page_request(CODEC, v, MAX_PAGE_SIZE + 1, "garbage", "q")
    found = _fields(info.value)
    assert set(found) == {"sdg", "page.page_size", "page.page_token"}
    assert found["page.page_token"] == "page_token is malformed"


def test_token_of_another_query_is_refused() -> None:
    token = CODEC.encode({"k": "a", "id": "1"}, "q1")
    with pytest.raises(ValidationError, match="not issued"):
        page_request(CODEC, Violations(), 1, token, "q2")


def test_check_key_refuses_a_sort_key_of_the_wrong_form() -> None:
    token = CODEC.encode({"t": "not-a-time", "id": "1"}, "q")
    with pytest.raises(ValidationError) as info:
        page_request(CODEC, Violations(), 1, token, "q", key="t", check_key=datetime.fromisoformat)
    assert set(_fields(info.value)) == {"page.page_token"}
