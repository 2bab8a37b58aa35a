"""The ``python -m ssg.<service>`` of a gRPC API: settings, token verifier and composition
root checked before anything starts; indexes ensured; periodic tasks beside ``serve()``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any, TypeVar

from ssg.platform.grpc.interceptors import MethodPolicy
from ssg.platform.grpc.server import ServicerRegistration, serve, verifier_from_settings
from ssg.platform.health import HealthCheck
from ssg.platform.mongo import run_sync
from ssg.platform.process import PeriodicTask, Process, run_process
from ssg.platform.settings import PlatformSettings, load_settings

log = logging.getLogger(__name__)

S = TypeVar("S", bound=PlatformSettings)
A = TypeVar("A", bound=Process)


async def serve_with_tasks(
    settings: PlatformSettings,
    servicers: Sequence[ServicerRegistration],
    health_checks: Mapping[str, HealthCheck],
    method_policy: MethodPolicy,
    *,
    ensure_indexes: Callable[[], None] | None = None,
    tasks: Sequence[PeriodicTask] = (),
    logger: logging.Logger = log,
    on_stop: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """``serve()`` until SIGTERM/SIGINT, with each of tasks running beside it.

    ensure_indexes runs first (off the event loop); when MongoDB is down that is logged and
    serving goes on (health stays NOT_SERVING; indexes are created on the next start). The tasks
    get one stop event, set when the server has drained; each is then awaited to its end, and
    on_stop last, still in the event loop (to close asyncio clients).
    """
    verifier = verifier_from_settings(settings)
    if ensure_indexes is not None:
        try:
            await run_sync(ensure_indexes)
        except Exception as exc:
            logger.warning("could not create indexes", extra={"error": repr(exc)})
    stop = asyncio.Event()
    running = [asyncio.create_task(task(stop)) for task in tasks]
    try:
        await serve(settings, servicers, health_checks, method_policy, verifier)
    finally:
        stop.set()
        for task in running:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if on_stop is not None:
            await on_stop()


def api_main(
    settings_type: type[S],
    bootstrap: Callable[[S], A],
    run: Callable[[A], Coroutine[Any, Any, None]],
) -> int:
    """``run_process`` for an API: settings from the environment, the token verifier checked
    (a missing or weak secret exits 2 before anything starts), then bootstrap."""

    def build() -> A:
        settings = load_settings(settings_type)
        verifier_from_settings(settings)
        return bootstrap(settings)

    return run_process(build, run)
