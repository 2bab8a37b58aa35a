"""Deterministic ids: the same event (or digest period) for the same subscription and channel
always yields the same delivery id, which is the idempotency key end to end."""

from __future__ import annotations

import uuid

_NAMESPACE = uuid.UUID("8d3c5a4e-3f0b-4c55-9a51-6a1f0a5e2c11")


def delivery_id(source: str, subscription_id: str, channel: int) -> str:
    """The delivery id of source (an event id or a digest period) for a subscription."""
    return uuid.uuid5(_NAMESPACE, f"{source}|{subscription_id}|{channel}").hex


def digest_source(period_start: str) -> str:
    """The source part of a digest's delivery id: its period's start."""
    return f"digest:{period_start}"
