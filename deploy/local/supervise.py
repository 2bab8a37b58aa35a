"""Run one process of the local stack and restart it when it exits, with backoff (like a kubelet).

    python deploy/local/supervise.py --name NAME --pid-dir DIR -- COMMAND [ARG...]

honcho stops its whole group as soon as one of its processes exits; each supervised process is
therefore started through this wrapper, which honcho sees as the process. A crash (any exit that
was not asked for) is logged and the command started again after a delay that doubles from
``--backoff`` up to ``--max-backoff`` and resets once the process has run ``--stable`` seconds.
SIGTERM or SIGINT is passed on to the command, whose exit then ends the wrapper with its code.
The command's current pid is kept in ``DIR/NAME.pid`` (for `stack.py down` and for fault tests).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

_PR_SET_PDEATHSIG = 1


def say(name: str, message: str) -> None:
    """One log line (honcho prefixes it with the process name and time)."""
    print(f"[supervise] {name}: {message}", flush=True)


def describe(returncode: int) -> str:
    """How a process ended, in words."""
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-returncode).name}"
        return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


def next_delay(
    previous: float, ran_for: float, base: float, ceiling: float, stable: float
) -> float:
    """Delay before the next start: base after a stable run, else double the last, capped."""
    if ran_for >= stable or previous <= 0:
        return base
    return min(previous * 2, ceiling)


def _die_with_parent() -> None:
    # A supervisor killed with SIGKILL must not leave its command running (Linux only).
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class Supervisor:
    """Keeps one command running until asked to stop."""

    def __init__(self, name: str, command: list[str], pid_file: Path) -> None:
        self.name = name
        self.command = command
        self.pid_file = pid_file
        self.child: subprocess.Popen[bytes] | None = None
        self.stopping: int | None = None  # the signal that asked us to stop

    def stop(self, signum: int, _frame: FrameType | None = None) -> None:
        """Pass a stop signal on to the command, once, and restart nothing after it."""
        if self.stopping is not None:
            return
        self.stopping = signum
        if self.child is not None and self.child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.child.pid, signum)

    def start(self) -> subprocess.Popen[bytes]:
        """Start the command in a process group of its own; record its pid."""
        # Its own group, so that honcho's killpg reaches it once (through stop), not twice.
        child = subprocess.Popen(self.command, start_new_session=True, preexec_fn=_die_with_parent)
        self.pid_file.write_text(f"{child.pid}\n")
        return child

    def run(self, base: float, ceiling: float, stable: float) -> int:
        """Start, wait, restart after crashes; return the command's code once stopped."""
        restarts, delay = 0, 0.0
        while True:
            started = time.monotonic()
            self.child = self.start()
            if self.stopping is not None:  # asked to stop while it was starting
                self.stop_child()
            returncode = self.child.wait()
            ran_for = time.monotonic() - started
            if self.stopping is not None:
                self.pid_file.unlink(missing_ok=True)
                return returncode if returncode >= 0 else 128 - returncode
            delay = next_delay(delay, ran_for, base, ceiling, stable)
            restarts += 1
            say(
                self.name,
                f"pid {self.child.pid} {describe(returncode)} after {ran_for:.1f}s; "
                f"restart {restarts} in {delay:.1f}s",
            )
            deadline = time.monotonic() + delay
            while self.stopping is None and time.monotonic() < deadline:
                time.sleep(0.05)
            if self.stopping is not None:
                self.pid_file.unlink(missing_ok=True)
                return 0

    def stop_child(self) -> None:
        """Signal the command with the stop signal received."""
        if self.child is not None and self.stopping is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.child.pid, self.stopping)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and supervise the command."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--name", required=True)
    parser.add_argument("--pid-dir", type=Path, required=True)
    parser.add_argument("--backoff", type=float, default=1.0, help="first restart delay (s)")
    parser.add_argument("--max-backoff", type=float, default=30.0, help="longest delay (s)")
    parser.add_argument("--stable", type=float, default=60.0, help="run time that resets it (s)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("a command to run is required after --")
    args.pid_dir.mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor(args.name, command, args.pid_dir / f"{args.name}.pid")
    signal.signal(signal.SIGTERM, supervisor.stop)
    signal.signal(signal.SIGINT, supervisor.stop)
    return supervisor.run(args.backoff, args.max_backoff, args.stable)


if __name__ == "__main__":
    sys.exit(main())
