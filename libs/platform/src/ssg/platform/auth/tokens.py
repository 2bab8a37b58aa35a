"""Signed bearer tokens (JWT): claims, verification, and a dev issuer for the local stack and tests."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum

import jwt

DEV_SECRET = "ssg-local-development-only-secret-change-me"


class Role(StrEnum):
    """What a caller may do; see the security model in docs/architecture.md."""

    PUBLIC = "public"
    # Held by every caller with a valid token (implied, never needs to be in the claims), so a
    # method policy can ask for "any signed-in person" without naming staff roles.
    SIGNED_IN = "signed_in"
    MEMBER = "member"
    REVIEWER = "reviewer"
    OPERATOR = "operator"


class TokenError(Exception):
    """A token is missing, malformed, expired or wrongly signed."""


@dataclass(frozen=True)
class Identity:
    """Who is calling, as verified from the token (anonymous callers are public)."""

    subject: str
    roles: frozenset[Role] = field(default_factory=lambda: frozenset({Role.PUBLIC}))
    organization_id: str = ""
    instance: str = ""
    region: str = ""
    # False only for the anonymous caller: every other identity came from a verified token.
    authenticated: bool = True

    def has_any(self, roles: frozenset[Role]) -> bool:
        """True when the identity holds at least one of roles."""
        return bool(self.roles & roles)


ANONYMOUS = Identity(subject="anonymous", authenticated=False)


@dataclass(frozen=True)
class TokenVerifier:
    """Verifies tokens signed with an HMAC secret (HS256) or a public key (RS256/ES256)."""

    key: str
    issuer: str = "ssg"
    audience: str = "ssg"
    leeway_seconds: int = 30

    def verify(self, token: str) -> Identity:
        """Decode token and return its identity; TokenError with the reason otherwise."""
        algorithms = ["HS256"] if "PUBLIC KEY" not in self.key else ["RS256", "ES256"]
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=algorithms,
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway_seconds,
                options={"require": ["exp", "sub", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise TokenError(str(exc)) from None
        raw_roles = claims.get("roles", ["public"])
        if not isinstance(raw_roles, list) or not all(isinstance(r, str) for r in raw_roles):
            raise TokenError("claim roles must be a list of strings")
        try:
            roles = frozenset(Role(r) for r in raw_roles)
        except ValueError as exc:
            raise TokenError(f"unknown role: {exc}") from None
        for claim in ("org", "instance", "region"):
            if not isinstance(claims.get(claim, ""), str):
                raise TokenError(f"claim {claim} must be a string")
        return Identity(
            subject=str(claims["sub"]),
            roles=roles | {Role.PUBLIC, Role.SIGNED_IN},
            organization_id=str(claims.get("org", "")),
            instance=str(claims.get("instance", "")),
            region=str(claims.get("region", "")),
        )


@dataclass(frozen=True)
class DevTokenIssuer:
    """Issues HS256 tokens for the local stack and tests; production uses the real IdP."""

    secret: str = DEV_SECRET
    issuer: str = "ssg"
    audience: str = "ssg"

    def issue(
        self,
        subject: str,
        roles: list[Role] | tuple[Role, ...] = (Role.PUBLIC,),
        *,
        organization_id: str = "",
        instance: str = "global",
        region: str = "",
        ttl_seconds: int = 3600,
    ) -> str:
        """A signed token for subject with roles, valid for ttl_seconds."""
        now = int(time.time())
        claims: dict[str, object] = {
            "sub": subject,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "exp": now + ttl_seconds,
            "jti": uuid.uuid4().hex,
            "roles": [str(r) for r in roles],
            "instance": instance,
        }
        if organization_id:
            claims["org"] = organization_id
        if region:
            claims["region"] = region
        return jwt.encode(claims, self.secret, algorithm="HS256")
