"""run_process: exit 2 on bad configuration, close whatever run did; every: a periodic loop that
survives a failed round and stops at once when asked."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import pytest

from ssg.platform.process import every, run_process
from ssg.platform.settings import ConfigError, PlatformSettings
from ssg.testing.waiting import eventually


@dataclass
class FakeProcess:
    settings: PlatformSettings = field(default_factory=lambda: PlatformSettings(service="p"))
    closed: bool = False
    ran: bool = False

    def close(self) -> None:
        self.closed = True


def test_config_error_exits_2_with_the_message_on_stderr(capsys) -> None:
    def build() -> FakeProcess:
        raise ConfigError("SSG_SOMETHING: required")

    async def run(process: FakeProcess) -> None:
        raise AssertionError("must not run")

    assert run_process(build, run) == 2
    assert "SSG_SOMETHING: required" in capsys.readouterr().err


def test_runs_then_closes_and_exits_0() -> None:
    process = FakeProcess()

    async def run(p: FakeProcess) -> None:
        p.ran = True

    assert run_process(lambda: process, run) == 0
    assert process.ran and process.closed


def test_closes_even_when_run_fails() -> None:
    process = FakeProcess()

    async def run(p: FakeProcess) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        run_process(lambda: process, run)
    assert process.closed


async def test_every_survives_a_failed_round_and_logs_it(caplog) -> None:
    stop = asyncio.Event()
    rounds = 0

    async def one_round() -> None:
        nonlocal rounds
        rounds += 1
        if rounds == 1:
            raise RuntimeError("database down")
        if rounds == 3:
            stop.set()

    with caplog.at_level(logging.ERROR, logger="test.every"):
        await asyncio.wait_for(
            every(
                0.01, one_round, stop, log=logging.getLogger("test.every"), failure="sweep failed"
            ),
            5,
        )
    assert rounds == 3
    assert [r.getMessage() for r in caplog.records] == ["sweep failed"]


async def test_every_stops_during_the_wait_without_waiting_out_the_interval() -> None:
    stop = asyncio.Event()
    rounds = 0

    async def one_round() -> None:
        nonlocal rounds
        rounds += 1

    task = asyncio.create_task(
        every(3600, one_round, stop, log=logging.getLogger("test.every"), failure="x")
    )
    await eventually(lambda: rounds, "the first round", within=2)
    stop.set()
    await asyncio.wait_for(task, 2)
    assert rounds == 1
