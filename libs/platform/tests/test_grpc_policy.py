"""Pure logic of the gRPC stack: method policy, token cache, client retry config."""

from __future__ import annotations

import json

import grpc
import pytest

from ssg.platform.auth.tokens import (
    ANONYMOUS,
    DEV_SECRET,
    DevTokenIssuer,
    Identity,
    Role,
    TokenError,
    TokenVerifier,
)
from ssg.platform.diagnostics import POLICY, registration
from ssg.platform.grpc.client import retry_service_config
from ssg.platform.grpc.interceptors import (
    PUBLIC,
    TokenCache,
    _Denied,
    authorize,
    normalize_policy,
)
from ssg.platform.grpc.server import build_server, verifier_from_settings
from ssg.platform.settings import ConfigError, PlatformSettings, load_settings

STAFF = frozenset({Role.MEMBER, Role.REVIEWER, Role.OPERATOR})
MEMBER = Identity("m1", frozenset({Role.PUBLIC, Role.MEMBER}))


def test_public_methods_admit_anyone():
    authorize(ANONYMOUS, False, PUBLIC, "/s/M")


def test_anonymous_caller_of_protected_method_is_unauthenticated():
    with pytest.raises(_Denied) as info:
        authorize(ANONYMOUS, False, STAFF, "/s/M")
    assert info.value.code is grpc.StatusCode.UNAUTHENTICATED


def test_wrong_role_is_permission_denied_and_names_the_roles():
    with pytest.raises(_Denied) as info:
        authorize(MEMBER, True, frozenset({Role.OPERATOR}), "/s/M")
    assert info.value.code is grpc.StatusCode.PERMISSION_DENIED
    assert "operator" in str(info.value)


def test_any_allowed_role_suffices():
    authorize(MEMBER, True, STAFF, "/s/M")


def test_signed_in_policy_admits_any_verified_token_and_refuses_anonymous():
    reader = TokenVerifier(DEV_SECRET).verify(DevTokenIssuer().issue("reader", [Role.PUBLIC]))
    assert reader.authenticated
    authorize(reader, True, frozenset({Role.SIGNED_IN}), "/s/M")
    with pytest.raises(_Denied) as info:
        authorize(ANONYMOUS, False, frozenset({Role.SIGNED_IN}), "/s/M")
    assert info.value.code is grpc.StatusCode.UNAUTHENTICATED
    assert not ANONYMOUS.authenticated


def test_policy_keys_get_a_leading_slash_and_empty_roles_are_refused():
    assert normalize_policy({"pkg.S/M": STAFF}) == {"/pkg.S/M": STAFF}
    with pytest.raises(ValueError):
        normalize_policy({"/pkg.S/M": frozenset()})


def test_token_cache_returns_identity_and_still_rejects_bad_tokens():
    issuer = DevTokenIssuer()
    cache = TokenCache(TokenVerifier(DEV_SECRET))
    token = issuer.issue("u1", [Role.MEMBER])
    assert cache.identity(token).subject == "u1"
    assert cache.identity(token).subject == "u1"  # served from the cache
    with pytest.raises(TokenError):
        cache.identity(token + "x")
    with pytest.raises(TokenError):
        cache.identity(issuer.issue("u2", ttl_seconds=-3600))


def test_token_cache_forgets_a_token_once_it_expires():
    # Issued already past exp but inside the verifier's leeway: valid now, never cached
    # beyond its exp, so the next lookup verifies again (and would fail once leeway ends).
    cache = TokenCache(TokenVerifier(DEV_SECRET, leeway_seconds=60))
    token = DevTokenIssuer().issue("u1", ttl_seconds=-10)
    assert cache.identity(token).subject == "u1"
    assert token not in cache._entries


def test_retry_config_names_services_and_methods_and_retries_only_unavailable():
    config = json.loads(
        retry_service_config(["pkg.Catalog/GetSolution", "/pkg.Search"], max_attempts=3)
    )
    (method_config,) = config["methodConfig"]
    assert method_config["name"] == [
        {"service": "pkg.Catalog", "method": "GetSolution"},
        {"service": "pkg.Search"},
    ]
    assert method_config["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert method_config["retryPolicy"]["maxAttempts"] == 3


def test_no_retryable_methods_means_no_retry_policy():
    assert json.loads(retry_service_config([])) == {"methodConfig": []}


def _settings(**overrides) -> PlatformSettings:
    return load_settings(PlatformSettings, service="policy-test", grpc_port=0, **overrides)


def test_policy_naming_an_unknown_method_fails_at_build_time():
    typo = {"/ssg.diagnostics.v1.DiagnosticsService/WhoAmIx": STAFF}
    with pytest.raises(ConfigError, match="WhoAmIx"):
        build_server(_settings(), [registration()], method_policy=typo)


def test_diagnostics_policy_matches_served_methods():
    server = build_server(_settings(), [registration()], method_policy=POLICY)
    assert server.service_names == ("ssg.diagnostics.v1.DiagnosticsService",)
    assert server.port > 0


def test_verifier_needs_a_key():
    with pytest.raises(ConfigError, match="SSG_JWT_SECRET"):
        verifier_from_settings(_settings(jwt_secret="", jwt_public_key=""))
    assert verifier_from_settings(_settings(jwt_secret=DEV_SECRET)).key == DEV_SECRET
