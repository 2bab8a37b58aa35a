"""Which platform regions an organization belongs to, for "organizations in your region used it".

An organization's own regions (where it works, from registration) win; without them, the region
of its headquarters country (``ssg.platform.reference.regions``).
"""

from __future__ import annotations

from ssg.contracts.common.v1 import geography_pb2
from ssg.platform.reference.regions import region_of
from ssg.recommendation.domain.model import Organization


def home_regions(org: Organization | None) -> tuple[str, ...]:
    """Region names (as items store them, e.g. ``AFRICA``) of org; empty when unknown."""
    if org is None:
        return ()
    if org.regions:
        return org.regions
    found = region_of(org.country) if org.country else geography_pb2.REGION_UNSPECIFIED
    if found == geography_pb2.REGION_UNSPECIFIED:
        return ()
    return (
        geography_pb2.Region.Name(geography_pb2.Region.ValueType(found)).removeprefix("REGION_"),
    )
