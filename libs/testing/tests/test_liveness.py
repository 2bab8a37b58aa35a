"""Start times read from a real /metrics endpoint tell a restarted or vanished process."""

from __future__ import annotations

from prometheus_client import REGISTRY

from ssg.platform.metrics import start_metrics_server, stop_metrics_server
from ssg.testing.liveness import restarted_or_gone, start_time, start_times
from ssg.testing.servers import LOOPBACK, free_port


def test_the_start_time_of_this_process_is_read_from_its_metrics_page() -> None:
    port = start_metrics_server(LOOPBACK, 0)
    assert port is not None
    try:
        seen = start_time(LOOPBACK, port)
        both = start_times(LOOPBACK, {"me": port, "nobody": free_port()})
    finally:
        stop_metrics_server(port)
    assert seen == REGISTRY.get_sample_value("process_start_time_seconds")
    assert both == {"me": seen}  # the port nothing listens on is left out


def test_restarted_and_vanished_processes_are_named() -> None:
    before = {"api": 100.0, "worker": 100.0, "relay": 100.0}
    after = {"api": 100.0, "worker": 160.0}
    assert restarted_or_gone(before, after) == ["relay", "worker"]
    assert restarted_or_gone(before, dict(before)) == []
