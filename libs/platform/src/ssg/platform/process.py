"""How every service process starts and what runs beside its main loop.

``run_process`` is the shape of every ``main()``: build from settings (exit status 2 with the
message on stderr for bad configuration), configure logging, run, release. ``every`` is the
loop of a periodic task (a sweep) that must outlive a failed round; a ``PeriodicTask`` is such
a loop bound to its arguments, waiting only for the stop event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol, TypeVar

from ssg.platform.logging import configure_logging
from ssg.platform.settings import ConfigError, PlatformSettings

PeriodicTask = Callable[[asyncio.Event], Coroutine[Any, Any, None]]
"""A background loop that runs until the event is set (e.g. ``partial(sweep, service, ...)``)."""


class Process(Protocol):
    """What a process's composition root gives ``run_process``."""

    @property
    def settings(self) -> PlatformSettings: ...

    def close(self) -> None:
        """Release what the process holds (database clients)."""


P = TypeVar("P", bound=Process)


def run_process(build: Callable[[], P], run: Callable[[P], Coroutine[Any, Any, None]]) -> int:
    """Entry point of a process: build it, run it to the end, close it; the exit status.

    A ConfigError from build is printed to stderr (logging is not configured yet: stderr is all
    there is) and gives exit status 2; otherwise logging is configured from the settings, run
    is awaited on a fresh event loop and the process is closed, whatever run raised.
    """
    try:
        process = build()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    settings = process.settings
    configure_logging(settings.service, settings.instance, settings.log_level)
    try:
        asyncio.run(run(process))
    finally:
        process.close()
    return 0


async def every(
    interval_seconds: float,
    round_: Callable[[], Awaitable[object]],
    stop: asyncio.Event,
    *,
    log: logging.Logger,
    failure: str,
) -> None:
    """Run round_ now and then every interval_seconds until stop is set.

    A failed round is logged (``log.exception(failure)``) and the loop goes on: a database
    outage must not end a sweep, the next round tries again. Setting stop ends the wait at once.
    """
    while not stop.is_set():
        try:
            await round_()
        except Exception:
            log.exception(failure)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_seconds)
