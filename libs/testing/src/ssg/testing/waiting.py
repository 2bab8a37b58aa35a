"""Wait on a condition with a deadline, never a fixed sleep."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any


async def eventually(
    predicate: Callable[[], Any],
    what: str = "condition",
    within: float = 30.0,
    interval: float = 0.05,
) -> Any:
    """Poll predicate (sync or async) until it returns a truthy value, and return that value.

    Raises AssertionError naming what when within seconds pass first.
    """
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:g}s waiting for {what}")
        await asyncio.sleep(interval)
