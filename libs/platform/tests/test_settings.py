"""Settings fail fast and name the bad variable."""

from __future__ import annotations

import pytest

from ssg.platform.settings import ConfigError, PlatformSettings, load_settings


def test_reads_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSG_SERVICE", "catalog")
    monkeypatch.setenv("SSG_GRPC_PORT", "6001")
    monkeypatch.setenv("SSG_INSTANCE", "asia-pacific")
    settings = load_settings(PlatformSettings)
    assert (settings.service, settings.grpc_port, settings.instance) == (
        "catalog",
        6001,
        "asia-pacific",
    )


def test_missing_service_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSG_SERVICE", raising=False)
    with pytest.raises(ConfigError, match="SSG_SERVICE"):
        load_settings(PlatformSettings)


def test_invalid_port_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSG_SERVICE", "catalog")
    monkeypatch.setenv("SSG_GRPC_PORT", "not-a-port")
    with pytest.raises(ConfigError, match="SSG_GRPC_PORT"):
        load_settings(PlatformSettings)


def test_every_bad_variable_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSG_SERVICE", "Bad Name")
    monkeypatch.setenv("SSG_METRICS_PORT", "70000")
    with pytest.raises(ConfigError) as caught:
        load_settings(PlatformSettings)
    assert "SSG_SERVICE" in str(caught.value)
    assert "SSG_METRICS_PORT" in str(caught.value)


def test_overrides_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSG_SERVICE", "catalog")
    settings = load_settings(PlatformSettings, service="search", grpc_port=0)
    assert settings.service == "search"
    assert settings.grpc_port == 0
