"""The catalog's read model of registered organizations: what an organization event says, and
how merged ids redirect."""

from __future__ import annotations

from collections.abc import Callable

from ssg.catalog.domain.model import OrganizationRef, OrganizationStatus

MAX_REDIRECTS = 5  # a merged organization may itself have been merged later


def resolve(org_id: str, lookup: Callable[[str], OrganizationRef | None]) -> OrganizationRef | None:
    """The organization org_id stands for now, following merges; None when unknown."""
    org = lookup(org_id)
    hops = 0
    while org is not None and org.merged_into and hops < MAX_REDIRECTS:
        org = lookup(org.merged_into)
        hops += 1
    return org


def is_known(org: OrganizationRef | None) -> bool:
    """An organization a record may name: registered, and neither rejected nor an orphaned merge."""
    return org is not None and org.status is not OrganizationStatus.REJECTED


def may_vouch(org: OrganizationRef | None) -> bool:
    """Whether an organization's word counts now (shown with every record it vouches for)."""
    return org is not None and org.status is OrganizationStatus.VERIFIED
