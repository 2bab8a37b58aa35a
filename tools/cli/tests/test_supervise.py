"""deploy/local/supervise.py: the restart delay, how an exit is described, and a real crash loop
of a short command that ends when the supervisor is asked to stop."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from ssg.testing.fixtures import load_script

ROOT = Path(__file__).resolve().parents[3]
SUPERVISE = ROOT / "deploy" / "local" / "supervise.py"
tool = load_script(SUPERVISE, "ssg_supervise")


def test_the_delay_doubles_while_it_keeps_crashing_and_is_capped() -> None:
    delays, delay = [], 0.0
    for _ in range(7):
        delay = tool.next_delay(delay, ran_for=0.5, base=1.0, ceiling=30.0, stable=60.0)
        delays.append(delay)
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_a_stable_run_resets_the_delay() -> None:
    assert tool.next_delay(16.0, ran_for=61.0, base=1.0, ceiling=30.0, stable=60.0) == 1.0


def test_exits_are_described_by_signal_or_code() -> None:
    assert tool.describe(-signal.SIGKILL) == "killed by SIGKILL"
    assert tool.describe(3) == "exited with code 3"


def test_a_crashing_command_is_restarted_until_the_supervisor_is_stopped(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    command = f"open({str(starts)!r}, 'a').write('x'); import sys; sys.exit(3)"
    supervisor = subprocess.Popen(
        [
            sys.executable,
            str(SUPERVISE),
            "--name",
            "crasher",
            "--pid-dir",
            str(tmp_path),
            "--backoff",
            "0.1",
            "--max-backoff",
            "0.2",
            "--",
            sys.executable,
            "-c",
            command,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(_read(starts)) < 3:
            time.sleep(0.05)
        assert len(_read(starts)) >= 3
    finally:
        supervisor.send_signal(signal.SIGTERM)
        out, _ = supervisor.communicate(timeout=30)
    assert "[supervise] crasher: pid" in out and "exited with code 3" in out
    assert "restart 2 in 0.2s" in out
    assert not (tmp_path / "crasher.pid").exists()


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
