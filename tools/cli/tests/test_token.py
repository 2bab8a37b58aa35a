"""`ssg token` prints a dev JWT that the platform's verifier accepts, and only in dev."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from ssg.cli.main import app
from ssg.platform.auth.tokens import DEV_SECRET, Role, TokenVerifier

runner = CliRunner()


def test_member_token_verifies_and_carries_its_claims(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSG_ENV", raising=False)
    result = runner.invoke(
        app,
        [
            *("token", "--role", "member", "--org", "org-42", "--subject", "alice"),
            *("--instance", "africa", "--ttl", "600"),
        ],
    )
    assert result.exit_code == 0, result.output
    identity = TokenVerifier(DEV_SECRET).verify(result.stdout.strip())
    assert identity.subject == "alice"
    assert Role.MEMBER in identity.roles
    assert identity.organization_id == "org-42"
    assert identity.instance == "africa"


def test_several_roles(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSG_ENV", "test")
    result = runner.invoke(
        app, ["token", "--role", "reviewer", "--role", "operator", "--region", "africa"]
    )
    assert result.exit_code == 0, result.output
    identity = TokenVerifier(DEV_SECRET).verify(result.stdout.strip())
    assert {Role.REVIEWER, Role.OPERATOR} <= identity.roles
    assert identity.region == "africa"


def test_refuses_outside_dev_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSG_ENV", "production")
    refused = runner.invoke(app, ["token", "--role", "operator"])
    assert refused.exit_code == 2
    assert "refusing" in refused.stderr
    assert refused.stdout == ""
    forced = runner.invoke(app, ["token", "--role", "operator", "--i-know-this-is-dev"])
    assert forced.exit_code == 0
    assert Role.OPERATOR in TokenVerifier(DEV_SECRET).verify(forced.stdout.strip()).roles


def test_member_without_organization_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSG_ENV", raising=False)
    result = runner.invoke(app, ["token", "--role", "member"])
    assert result.exit_code == 2
    assert "--org" in result.stderr


def test_unknown_role_and_bad_ttl_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSG_ENV", raising=False)
    assert runner.invoke(app, ["token", "--role", "admin"]).exit_code == 2
    assert runner.invoke(app, ["token", "--ttl", "0"]).exit_code == 2
