"""Settings of the catalog service (``SSG_*`` on top of the platform's)."""

from __future__ import annotations

from pydantic import Field

from ssg.platform.settings import PlatformSettings


class CatalogSettings(PlatformSettings):
    """What the catalog processes read from their environment."""

    service: str = Field(default="catalog", pattern=r"^[a-z][a-z0-9-]*$")
    # Large enough for an import batch and for an oversized field to reach validation (and be
    # answered INVALID_ARGUMENT naming it) rather than being cut off by the transport.
    max_message_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    # Sum of the six 1-5 criterion scores a review needs to approve (of 30).
    review_pass_threshold: int = Field(default=18, ge=6, le=30)
    # Published solutions not confirmed for this long are flagged stale.
    stale_after_days: int = Field(default=730, ge=1, le=3650)
    # How often each API replica looks for stale solutions and expired funding (0 = off).
    sweep_seconds: float = Field(default=300.0, ge=0)
    sweep_batch: int = Field(default=100, ge=1, le=10_000)
    # Consumer group of the organizations read model (the worker).
    organizations_group: str = "catalog-organizations"
    # Consumer group of the worker's proposals intake: a group of its own, so a proposal waiting
    # for its organization never holds the organization events it waits for.
    proposals_group: str = "catalog-proposals"
