"""Trace ids: one per request, carried in gRPC metadata and event envelopes, bound in a contextvar."""

from __future__ import annotations

import contextvars
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

TRACE_METADATA_KEY = "x-trace-id"
_VALID = re.compile(r"^[A-Za-z0-9_-]{8,64}\Z")
_current: contextvars.ContextVar[str] = contextvars.ContextVar("ssg_trace_id", default="")


def new_trace_id() -> str:
    """A fresh random trace id (32 hex characters, W3C trace-id sized)."""
    return uuid.uuid4().hex


def current_trace_id() -> str:
    """The trace id bound to this task, or an empty string."""
    return _current.get()


def accept_trace_id(candidate: str | None) -> str:
    """Use an incoming trace id if it is well formed, else mint one (never trust raw input)."""
    if candidate and _VALID.match(candidate):
        return candidate
    return new_trace_id()


@contextmanager
def bound_trace_id(trace_id: str) -> Iterator[str]:
    """Bind trace_id for the duration of the block (logs and published events pick it up)."""
    token = _current.set(trace_id)
    try:
        yield trace_id
    finally:
        _current.reset(token)
