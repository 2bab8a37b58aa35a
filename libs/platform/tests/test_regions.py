"""Every country belongs to exactly one platform region, by the documented rule."""

from __future__ import annotations

import pycountry
import pytest

from ssg.contracts.common.v1 import geography_pb2 as geo
from ssg.platform.reference.regions import countries_of, region_of


def test_every_iso_country_but_antarctica_has_a_region():
    codes = {c.alpha_3 for c in pycountry.countries}
    unplaced = {code for code in codes if region_of(code) == geo.REGION_UNSPECIFIED}
    assert unplaced == {"ATA"}


def test_the_table_lists_only_iso_codes():
    codes = {c.alpha_3 for c in pycountry.countries}
    listed = set().union(*(countries_of(r) for r in geo.Region.values() if r))
    assert listed <= codes


@pytest.mark.parametrize(
    ("country", "region"),
    [
        ("KEN", geo.REGION_AFRICA),
        ("EGY", geo.REGION_ARAB_STATES),  # Arab League, though in Africa
        ("MRT", geo.REGION_ARAB_STATES),
        ("SAU", geo.REGION_ARAB_STATES),
        ("KAZ", geo.REGION_EUROPE_CENTRAL_ASIA),
        ("TUR", geo.REGION_EUROPE_CENTRAL_ASIA),
        ("SRB", geo.REGION_EUROPE_CENTRAL_ASIA),
        ("HRV", geo.REGION_WESTERN_EUROPE),
        ("IND", geo.REGION_ASIA_PACIFIC),
        ("FJI", geo.REGION_ASIA_PACIFIC),
        ("BRA", geo.REGION_LATIN_AMERICA_CARIBBEAN),
        ("HTI", geo.REGION_LATIN_AMERICA_CARIBBEAN),
        ("CAN", geo.REGION_NORTH_AMERICA),
    ],
)
def test_examples(country, region):
    assert region_of(country) == region


def test_unknown_values():
    assert region_of("XXX") == geo.REGION_UNSPECIFIED
    assert countries_of(geo.REGION_UNSPECIFIED) == frozenset()
