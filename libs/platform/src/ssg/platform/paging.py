"""Page tokens: opaque to clients, tamper-evident, bound to the query they came from."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from ssg.platform.settings import ConfigError, PlatformSettings

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_TOKEN_CHARS = 1024


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
