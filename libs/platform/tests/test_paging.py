"""Page tokens are opaque, tamper-evident and bound to their query."""

from __future__ import annotations

import pytest

from ssg.platform.paging import PageCodec, PageTokenError, page_codec, page_size
from ssg.platform.settings import ConfigError, PlatformSettings, load_settings

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


@pytest.mark.parametrize(
    "token", ["garbage", "a.b.c", "x" * 2000, "!!!.abc", "abc.\u00e9", "\u00e9.abc"]
)
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


def test_codec_from_settings_prefers_its_own_secret_and_fails_fast_without_one() -> None:
    own = page_codec(load_settings(PlatformSettings, service="x", page_token_secret="p" * 32))
    shared = page_codec(load_settings(PlatformSettings, service="x", jwt_secret="j" * 32))
    token = own.encode({"after": 1})
    with pytest.raises(PageTokenError):
        shared.decode(token)
    with pytest.raises(ConfigError, match="SSG_PAGE_TOKEN_SECRET"):
        page_codec(
            load_settings(PlatformSettings, service="x", jwt_secret="", page_token_secret="")
        )
