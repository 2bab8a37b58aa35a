"""Deterministic ids: the same event (or digest period) for the same subscription and channel
always yields the same delivery id, which is the idempotency key end to end."""

from __future__ import annotations

import hashlib


def delivery_id(source: str, subscription_id: str, channel: int) -> str:
    """The delivery id of source (an event id or a digest period) for a subscription: 32 hex
    digits of SHA-256 over the three."""
    return hashlib.sha256(f"delivery|{source}|{subscription_id}|{channel}".encode()).hexdigest()[
        :32
    ]


def digest_source(period_start: str) -> str:
    """The source part of a digest's delivery id: its period's start."""
    return f"digest:{period_start}"
