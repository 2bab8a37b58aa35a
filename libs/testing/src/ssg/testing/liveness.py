"""Did a process restart? Its ``process_start_time_seconds`` (every /metrics page has it) tells.

A supervisor may restart a crashed process before a health check looks, so "healthy now" does
not prove "never crashed": a test compares start times taken before and after what it does.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Mapping

START_TIME = "process_start_time_seconds"


def start_time(host: str, metrics_port: int, timeout: float = 5.0) -> float:
    """The start time (unix seconds) a process reports on its /metrics page."""
    url = f"http://{host}:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=timeout) as response:
        page = response.read().decode()
    for line in page.splitlines():
        if line.startswith(START_TIME + " "):
            return float(line.split()[1])
    raise LookupError(f"{url} has no {START_TIME}")


def start_times(host: str, metrics_ports: Mapping[str, int]) -> dict[str, float]:
    """name -> start time of each process; a process that does not answer is left out."""
    found: dict[str, float] = {}
    for name, port in metrics_ports.items():
        try:
            found[name] = start_time(host, port)
        except (OSError, LookupError):
            continue
    return found


def restarted_or_gone(before: Mapping[str, float], after: Mapping[str, float]) -> list[str]:
    """Processes of before that no longer answer or started again since."""
    return sorted(name for name, started in before.items() if after.get(name) != started)
