"""The handler registry and the retry policy: plain Python, no servers."""

from __future__ import annotations

import random

import pytest

from ssg.contracts.diagnostics.v1.diagnostics_pb2 import EchoRequest, EchoResponse
from ssg.platform.events.consumer import Event, HandlerRegistry, RetryPolicy, next_wait
from ssg.platform.settings import PlatformSettings, load_settings


def test_registry_dispatches_by_event_type():
    handlers = HandlerRegistry()
    seen = []

    @handlers.on("test.Echoed", EchoRequest)
    def on_echoed(event: Event[EchoRequest]) -> None:
        seen.append(event.payload.message)

    registration = handlers.get("test.Echoed")
    assert registration is not None
    assert registration.payload_type is EchoRequest
    assert registration.handler is on_echoed  # the decorator returns the function unchanged
    assert handlers.get("test.Other") is None
    assert handlers.event_types == {"test.Echoed"}
    assert len(handlers) == 1


def test_registry_refuses_a_second_handler_for_a_type():
    handlers = HandlerRegistry()
    handlers.add("test.Echoed", EchoRequest, lambda event: None)
    with pytest.raises(ValueError, match=r"test\.Echoed"):
        handlers.add("test.Echoed", EchoResponse, lambda event: None)


def test_backoff_grows_exponentially_and_is_capped():
    policy = RetryPolicy(attempts=6, base_seconds=0.5, multiplier=2, max_seconds=3, jitter=0)
    assert policy.delays() == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert RetryPolicy(attempts=1).delays() == []


def test_backoff_jitter_only_shortens_within_its_fraction():
    policy = RetryPolicy(attempts=4, base_seconds=1, multiplier=2, max_seconds=60, jitter=0.25)
    rng = random.Random(7)
    delays = [policy.delay(3, rng) for _ in range(200)]
    assert all(3.0 <= d <= 4.0 for d in delays)
    assert len(set(delays)) > 100  # actually spread, not a constant


@pytest.mark.parametrize(
    "kwargs",
    [{"attempts": 0}, {"base_seconds": -1}, {"multiplier": 0.5}, {"jitter": 1.0}],
)
def test_retry_policy_rejects_nonsense(kwargs):
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


def test_retry_numbers_start_at_one():
    with pytest.raises(ValueError):
        RetryPolicy().delay(0)


def test_retry_policy_from_settings(monkeypatch):
    monkeypatch.setenv("SSG_EVENT_RETRY_ATTEMPTS", "2")
    monkeypatch.setenv("SSG_EVENT_RETRY_BASE_SECONDS", "0.25")
    policy = RetryPolicy.from_settings(load_settings(PlatformSettings, service="worker"))
    assert (policy.attempts, policy.base_seconds) == (2, 0.25)
    monkeypatch.delenv("SSG_EVENT_RETRY_ATTEMPTS")
    monkeypatch.delenv("SSG_EVENT_RETRY_BASE_SECONDS")
    defaults = RetryPolicy.from_settings(load_settings(PlatformSettings, service="worker"))
    assert (defaults.attempts, defaults.base_seconds) == (
        RetryPolicy().attempts,
        RetryPolicy().base_seconds,
    )


def test_a_wait_backs_off_and_its_last_retry_falls_on_the_bound():
    policy = RetryPolicy(base_seconds=1, multiplier=2, max_seconds=4, jitter=0)
    first = next_wait(None, 7, now=100.0, bound_seconds=10, retry=policy)
    assert first is not None
    assert (first.offset, first.since, first.retries, first.resume_at) == (7, 100.0, 1, 101.0)
    second = next_wait(first, 7, now=101.0, bound_seconds=10, retry=policy)
    assert second is not None and (second.since, second.retries, second.resume_at) == (
        100.0,
        2,
        103.0,
    )
    # Capped by the policy, then by the bound itself.
    later = next_wait(second, 7, now=107.0, bound_seconds=10, retry=policy)
    assert later is not None and later.resume_at == 110.0
    assert next_wait(later, 7, now=110.0, bound_seconds=10, retry=policy) is None


def test_a_wait_for_another_offset_starts_afresh():
    policy = RetryPolicy(base_seconds=1, jitter=0)
    old = next_wait(None, 7, now=100.0, bound_seconds=10, retry=policy)
    fresh = next_wait(old, 8, now=200.0, bound_seconds=10, retry=policy)
    assert fresh is not None and (fresh.offset, fresh.since, fresh.retries) == (8, 200.0, 1)


def test_no_bound_means_no_wait():
    assert next_wait(None, 7, now=100.0, bound_seconds=0, retry=RetryPolicy()) is None


def test_the_wait_bound_is_configured(monkeypatch):
    assert load_settings(PlatformSettings, service="worker").event_wait_seconds == 120
    monkeypatch.setenv("SSG_EVENT_WAIT_SECONDS", "5")
    assert load_settings(PlatformSettings, service="worker").event_wait_seconds == 5
