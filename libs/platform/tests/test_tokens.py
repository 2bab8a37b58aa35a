"""Bearer tokens: verified strictly, roles and claims carried."""

from __future__ import annotations

import jwt
import pytest

from ssg.platform.auth.tokens import DEV_SECRET, DevTokenIssuer, Role, TokenError, TokenVerifier

VERIFIER = TokenVerifier(DEV_SECRET)


def test_issued_token_verifies_with_claims() -> None:
    token = DevTokenIssuer().issue(
        "alice", [Role.MEMBER], organization_id="org-1", instance="africa", region="REGION_AFRICA"
    )
    who = VERIFIER.verify(token)
    assert who.subject == "alice"
    assert who.roles == {Role.MEMBER, Role.PUBLIC, Role.SIGNED_IN}
    assert who.authenticated
    assert (who.organization_id, who.instance, who.region) == ("org-1", "africa", "REGION_AFRICA")
    assert who.has_any(frozenset({Role.MEMBER}))
    assert not who.has_any(frozenset({Role.OPERATOR}))


def test_expired_token_is_rejected() -> None:
    token = DevTokenIssuer().issue("alice", ttl_seconds=-120)
    with pytest.raises(TokenError, match="expired"):
        VERIFIER.verify(token)


def test_wrong_key_is_rejected() -> None:
    token = DevTokenIssuer(secret="another-secret-of-sufficient-length-0123").issue("mallory")
    with pytest.raises(TokenError, match="Signature"):
        VERIFIER.verify(token)


def test_wrong_audience_is_rejected() -> None:
    token = DevTokenIssuer(audience="other").issue("alice")
    with pytest.raises(TokenError, match=r"(?i)audience"):
        VERIFIER.verify(token)


def test_unknown_role_is_rejected() -> None:
    claims = {"sub": "x", "iss": "ssg", "aud": "ssg", "exp": 4102444800, "roles": ["root"]}
    with pytest.raises(TokenError, match="unknown role"):
        VERIFIER.verify(jwt.encode(claims, DEV_SECRET, algorithm="HS256"))


def test_unsigned_token_is_rejected() -> None:
    claims = {"sub": "x", "iss": "ssg", "aud": "ssg", "exp": 4102444800, "roles": ["operator"]}
    with pytest.raises(TokenError):
        VERIFIER.verify(jwt.encode(claims, "", algorithm="none"))


def test_anonymous_is_not_authenticated() -> None:
    from ssg.platform.auth.tokens import ANONYMOUS

    assert not ANONYMOUS.authenticated
    assert ANONYMOUS.roles == {Role.PUBLIC}


@pytest.mark.parametrize(
    ("claim", "value"), [("roles", 7), ("roles", None), ("roles", [1]), ("org", ["a"])]
)
def test_claims_of_the_wrong_type_are_token_errors(claim: str, value: object) -> None:
    claims = {"sub": "x", "iss": "ssg", "aud": "ssg", "exp": 4102444800, claim: value}
    with pytest.raises(TokenError, match=claim):
        VERIFIER.verify(jwt.encode(claims, DEV_SECRET, algorithm="HS256"))
