"""``python -m ssg.search.worker``: the indexer (a faust worker) keeping the search indices from
the registration and catalog topics, with /metrics and /healthz on SSG_METRICS_PORT.

Any number of replicas may run: the consumer group (SSG_INDEXER_APP_ID) shares the
partitions, and every write is versioned by the event's aggregate_version. /healthz answers
503 while OpenSearch or Kafka does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from dataclasses import dataclass, field

from ssg.platform.events.consumer import RetryPolicy
from ssg.platform.events.faust_app import ensure_faust_topics
from ssg.platform.health import HealthCheck, kafka_check, opensearch_check
from ssg.platform.metrics import start_metrics_server, stop_metrics_server
from ssg.platform.process import run_process
from ssg.platform.settings import ConfigError, load_settings
from ssg.search.bootstrap import opensearch_client
from ssg.search.events.indexer import create_indexer_app
from ssg.search.events.topics import SOURCE_TOPICS
from ssg.search.settings import SearchSettings
from ssg.search.store.indices import ensure_indices
from ssg.search.store.writer import BulkWriter

log = logging.getLogger("ssg.search.worker")
RETRY_SECONDS = 2.0
# A faust worker whose broker vanished can hang on stop: bound it.
STOP_TIMEOUT_SECONDS = 30.0


@dataclass
class Worker:
    """The indexer process: settings and its health."""

    settings: SearchSettings
    checks: dict[str, HealthCheck] = field(default_factory=dict)
    healthy: bool = False

    def close(self) -> None:
        """Nothing held outside ``run``."""

    async def watch_health(self, stop: asyncio.Event) -> None:
        """Keep ``healthy`` current: every dependency check passes."""
        failing: set[str] = set()
        while not stop.is_set():
            ok = True
            for name, check in self.checks.items():
                try:
                    await asyncio.wait_for(check(), 2.0)
                except Exception as exc:
                    ok = False
                    # Once per outage: the reason (e.g. refused credentials) is what operators need.
                    if name not in failing:
                        failing.add(name)
                        log.warning(
                            "dependency down", extra={"dependency": name, "error": str(exc)}
                        )
                else:
                    failing.discard(name)
            self.healthy = ok
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.health_interval_seconds)


def build() -> Worker:
    """Settings checked before anything starts (Kafka and OpenSearch are required)."""
    settings = load_settings(SearchSettings)
    if not settings.kafka_bootstrap:
        raise ConfigError("invalid configuration: SSG_KAFKA_BOOTSTRAP is required")
    if not settings.opensearch_url:
        raise ConfigError("invalid configuration: SSG_OPENSEARCH_URL is required")
    return Worker(
        settings,
        {
            "opensearch": opensearch_check(settings),
            "kafka": kafka_check(settings.kafka_bootstrap),
        },
    )


async def run(worker: Worker) -> None:
    """Index until SIGTERM/SIGINT, then stop the faust app (bounded) and release."""
    settings = worker.settings
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    metrics_port = start_metrics_server(
        settings.metrics_host, settings.metrics_port, healthy=lambda: worker.healthy
    )
    health = asyncio.create_task(worker.watch_health(stop))
    client = opensearch_client(settings)
    try:
        while not stop.is_set():
            try:
                await ensure_indices(client, settings.index_prefix)
                break
            except Exception as exc:
                log.warning("waiting for OpenSearch", extra={"error": str(exc)})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), RETRY_SECONDS)
        if stop.is_set():
            return
        writer = BulkWriter(
            client,
            settings.index_prefix,
            RetryPolicy.from_settings(settings),
            refresh=settings.bulk_refresh,
            stop=stop,
        )
        app, _ = create_indexer_app(settings, writer)
        await ensure_faust_topics(app, list(SOURCE_TOPICS))
        await app.start()
        log.info("indexer started", extra={"topics": list(SOURCE_TOPICS)})
        try:
            await stop.wait()
        finally:
            try:
                async with asyncio.timeout(STOP_TIMEOUT_SECONDS):
                    await app.stop()
            except TimeoutError:
                log.error("the faust worker did not stop in time")
    finally:
        stop.set()
        await health
        await client.close()
        if metrics_port is not None:
            stop_metrics_server(metrics_port)


def main() -> int:
    """Entry point; exit status 2 on bad configuration."""
    return run_process(build, run)


if __name__ == "__main__":
    sys.exit(main())
