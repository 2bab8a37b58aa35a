"""Page tokens: opaque to clients, tamper-evident, bound to the query they came from."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ssg.platform.errors import Violations
from ssg.platform.settings import ConfigError, PlatformSettings

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_TOKEN_CHARS = 1024
T = TypeVar("T")
# Where a list resumes: the last item's sort key and its id (the tie-breaker).
Cursor = tuple[str, str]


class PageTokenError(ValueError):
    """A page token is malformed, was altered, or belongs to another query."""


@dataclass(frozen=True)
class PageCodec:
    """Encodes a cursor (e.g. the last sort key) into a signed token and back."""

    key: bytes

    def _mac(self, body: bytes, query: str) -> str:
        digest = hmac.new(self.key, body + b"\x00" + query.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:12]).decode().rstrip("=")

    def encode(self, cursor: dict[str, Any], query: str = "") -> str:
        """A token for cursor; query fingerprints the request so a token can't cross queries."""
        body = json.dumps(cursor, separators=(",", ":"), sort_keys=True).encode()
        return base64.urlsafe_b64encode(body).decode().rstrip("=") + "." + self._mac(body, query)

    def decode(self, token: str, query: str = "") -> dict[str, Any] | None:
        """The cursor in token, or None for an empty token (first page)."""
        if not token:
            return None
        if len(token) > MAX_TOKEN_CHARS or token.count(".") != 1 or not token.isascii():
            raise PageTokenError("page_token is malformed")
        encoded, mac = token.split(".")
        try:
            body = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except ValueError:
            raise PageTokenError("page_token is malformed") from None
        if not hmac.compare_digest(mac, self._mac(body, query)):
            raise PageTokenError("page_token was not issued for this request")
        try:
            cursor = json.loads(body)
        except ValueError:
            raise PageTokenError("page_token is malformed") from None
        if not isinstance(cursor, dict):
            raise PageTokenError("page_token is malformed")
        return cursor


def page_size(
    requested: int, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE
) -> int:
    """The page size to use: default for 0; ValueError when negative or above maximum."""
    if requested < 0:
        raise ValueError("page_size must not be negative")
    if requested > maximum:
        raise ValueError(f"page_size must be at most {maximum}")
    return requested or default


def page_codec(settings: PlatformSettings) -> PageCodec:
    """The page token signer from SSG_PAGE_TOKEN_SECRET (or SSG_JWT_SECRET); fails fast without."""
    secret = settings.page_token_secret or settings.jwt_secret
    if not secret:
        raise ConfigError(
            "invalid configuration: SSG_PAGE_TOKEN_SECRET (or SSG_JWT_SECRET) must be set"
        )
    return PageCodec(secret.encode())


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list and the token of the next one ('' when it is the last)."""

    items: list[T]
    next_page_token: str


def page_request(
    codec: PageCodec,
    v: Violations,
    size: int,
    token: str,
    fingerprint: str,
    *,
    key: str = "k",
    check_key: Callable[[str], object] | None = None,
) -> tuple[int, Cursor | None]:
    """The page size and the cursor to resume after (None: the first page) of a list request.

    A bad size or token is added to v as ``page.page_size`` / ``page.page_token``; then v is
    raised (with whatever the caller had already found) if it holds any violation. The token's
    cursor is ``{key: sort key, "id": id}``; check_key may raise ValueError for a sort key of
    the wrong form.
    """
    limit = 0
    try:
        limit = page_size(size)
    except ValueError as exc:
        v.add("page.page_size", str(exc))
    after: Cursor | None = None
    try:
        cursor = codec.decode(token, fingerprint)
        if cursor is not None:
            after = (str(cursor[key]), str(cursor["id"]))
            if check_key is not None:
                check_key(after[0])
    except (KeyError, ValueError) as exc:  # PageTokenError is a ValueError
        v.add("page.page_token", str(exc) or "page_token is malformed")
    v.raise_if_any()
    return limit, after


def next_page(
    codec: PageCodec,
    items: list[T],
    limit: int,
    cursor: Callable[[T], Cursor],
    fingerprint: str,
    *,
    key: str = "k",
) -> Page[T]:
    """The first limit of items (the store was asked for one more, to tell whether there is a
    next page) and the token of the next page, from the cursor of the last item kept."""
    if len(items) <= limit:
        return Page(items, "")
    sort_key, last_id = cursor(items[limit - 1])
    return Page(items[:limit], codec.encode({key: sort_key, "id": last_id}, fingerprint))
