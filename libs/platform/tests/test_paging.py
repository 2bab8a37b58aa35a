"""Page tokens are opaque, tamper-evident and bound to their query."""

from __future__ import annotations

import pytest

from ssg.platform.paging import PageCodec, PageTokenError, page_size

CODEC = PageCodec(b"k" * 32)


def test_round_trip() -> None:
    token = CODEC.encode({"after": ["2026-01-01", "s-9"]}, query="sdg=6")
    assert CODEC.decode(token, query="sdg=6") == {"after": ["2026-01-01", "s-9"]}


def test_empty_token_is_the_first_page() -> None:
    assert CODEC.decode("") is None


def test_token_from_another_query_is_rejected() -> None:
    token = CODEC.encode({"after": 10}, query="sdg=6")
    with pytest.raises(PageTokenError, match="not issued"):
        CODEC.decode(token, query="sdg=7")


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "x" * 2000, "!!!.abc"])
def test_malformed_tokens_are_rejected(token: str) -> None:
    with pytest.raises(PageTokenError):
        CODEC.decode(token)


def test_altered_token_is_rejected() -> None:
    token = CODEC.encode({"after": 10})
    body, mac = token.split(".")
    forged = PageCodec(b"other-key").encode({"after": 99}).split(".")[0] + "." + mac
    with pytest.raises(PageTokenError):
        CODEC.decode(forged)
    assert body != forged.split(".")[0]


def test_page_size_bounds() -> None:
    assert page_size(0) == 20
    assert page_size(50) == 50
    with pytest.raises(ValueError, match="at most 100"):
        page_size(101)
    with pytest.raises(ValueError, match="negative"):
        page_size(-1)
