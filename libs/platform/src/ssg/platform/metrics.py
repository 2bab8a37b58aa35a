"""Prometheus ``/metrics`` (and ``/healthz``) on a port of its own, failing soft at start-up."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TypeVar, cast

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder

log = logging.getLogger(__name__)

_servers: dict[int, ThreadingHTTPServer] = {}

T = TypeVar("T")
_BUILT: dict[tuple[Callable[[CollectorRegistry], object], int], object] = {}


def once_per_registry(build: Callable[[CollectorRegistry], T], registry: CollectorRegistry) -> T:
    """``build(registry)`` the first time for this registry, the same metrics after that.

    prometheus_client refuses a second registration of a name in one registry, while servers
    (and tests) are created many times in one process.
    """
    key = (build, id(registry))
    if key not in _BUILT:
        _BUILT[key] = build(registry)
    return cast(T, _BUILT[key])


def start_metrics_server(
    host: str,
    port: int,
    *,
    healthy: Callable[[], bool] | None = None,
    registry: CollectorRegistry = REGISTRY,
) -> int | None:
    """Serve /metrics and /healthz in a daemon thread; return the bound port, or None if it failed.

    Telemetry must never stop a service from starting, so a taken port is logged, not raised.
    ``/healthz`` answers 200 while ``healthy()`` is true (always, without it), else 503.
    """
    handler = _handler_class(registry, healthy)
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        log.error(
            "metrics server not started",
            extra={"metrics_host": host, "metrics_port": port, "error": str(exc)},
        )
        return None
    server.daemon_threads = True
    bound = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, name=f"metrics-{bound}", daemon=True)
    thread.start()
    _servers[bound] = server
    log.info("metrics server listening", extra={"metrics_host": host, "metrics_port": bound})
    return bound


def stop_metrics_server(port: int) -> None:
    """Stop the metrics server started on port (no-op when there is none)."""
    server = _servers.pop(port, None)
    if server is not None:
        server.shutdown()
        server.server_close()


def _handler_class(
    registry: CollectorRegistry, healthy: Callable[[], bool] | None
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                self._reply(200, encoder(registry), content_type)
            elif path == "/healthz":
                ok = healthy is None or healthy()
                self._reply(200 if ok else 503, b"ok\n" if ok else b"unhealthy\n", "text/plain")
            else:
                self._reply(404, b"not found\n", "text/plain")

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            # Scrapes every few seconds would drown the JSON logs; errors still surface.
            return

    return Handler
