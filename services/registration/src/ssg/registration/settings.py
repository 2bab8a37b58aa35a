"""Settings of the registration service (``SSG_*`` on top of the platform's)."""

from __future__ import annotations

from pydantic import Field

from ssg.platform.settings import PlatformSettings


class RegistrationSettings(PlatformSettings):
    """What the registration API process reads from its environment."""

    service: str = Field(default="registration", pattern=r"^[a-z][a-z0-9-]*$")
    # A verification lapses after this long and the organization is flagged for re-confirmation.
    verification_period_days: int = Field(default=730, ge=1, le=3650)
    # How often each replica looks for lapsed verifications (0 turns the sweep off).
    expiry_sweep_seconds: float = Field(default=300.0, ge=0)
    expiry_sweep_batch: int = Field(default=100, ge=1, le=10_000)
    # Consumer group of the worker taking in the ingress bridge's proposals.
    proposals_group: str = "registration-proposals"
