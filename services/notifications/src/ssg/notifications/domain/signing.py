"""Keys and signatures derived from the service's signing key: one-click unsubscribe tokens,
per-subscription webhook secrets, and the webhook request signature.

Nothing here is stored: each value is an HMAC of the signing key, so the API (which shows a
webhook secret once) and the delivery workers (which sign with it) agree without sharing a
table, and a token cannot be made without the key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

TOKEN_VERSION = "u1"
SIGNATURE_VERSION = "v1"


def _mac(key: bytes, purpose: str, value: str) -> bytes:
    # hmac.digest: the one-shot C path (a fan-out signs one link per subscriber).
    return hmac.digest(key, f"{purpose}:{value}".encode(), "sha256")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unsubscribe_token(key: bytes, subscription_id: str) -> str:
    """The token of a subscription's one-click unsubscribe link."""
    return f"{TOKEN_VERSION}.{subscription_id}.{_b64(_mac(key, 'unsubscribe', subscription_id))}"


def verify_unsubscribe_token(key: bytes, token: str) -> str | None:
    """The subscription id a genuine token names, or None for a forged or malformed one."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != TOKEN_VERSION or not parts[1]:
        return None
    expected = _b64(_mac(key, "unsubscribe", parts[1]))
    return parts[1] if hmac.compare_digest(expected, parts[2]) else None


def webhook_secret(key: bytes, subscription_id: str) -> str:
    """The HMAC-SHA256 key a subscription's webhook requests are signed with."""
    return _b64(_mac(key, "webhook", subscription_id))


def webhook_signature(secret: str, timestamp: int, body: bytes) -> str:
    """``v1=<hex>``: HMAC-SHA256 of ``<timestamp>.<body>`` under the subscription's secret."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={mac.hexdigest()}"


def verify_webhook_signature(
    secret: str, timestamp: int, body: bytes, signature: str, now: int, tolerance: int = 300
) -> bool:
    """What a receiver checks: the signature matches and the timestamp is recent."""
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(webhook_signature(secret, timestamp, body), signature)
