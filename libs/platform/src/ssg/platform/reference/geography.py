"""Countries (ISO 3166-1 alpha-3), UN regional groupings and instance names."""

from __future__ import annotations

import re
from functools import cache

import pycountry

from ssg.contracts.common.v1 import geography_pb2

_INSTANCE = re.compile(r"^[a-z][a-z0-9-]{0,62}\Z")


@cache
def _alpha3_codes() -> frozenset[str]:
    return frozenset(c.alpha_3 for c in pycountry.countries)


def is_country(alpha3: str) -> bool:
    """True for an ISO 3166-1 alpha-3 code (upper case), e.g. 'KEN'."""
    return alpha3 in _alpha3_codes()


def country_name(alpha3: str) -> str:
    """The English short name of a country code; ValueError for an unknown code."""
    if not is_country(alpha3):
        raise ValueError(f"not an ISO 3166-1 alpha-3 country code: {alpha3!r}")
    found = pycountry.countries.get(alpha_3=alpha3)
    assert found is not None
    return str(found.name)


def region_name(value: int) -> str:
    """The enum name of a Region value without its prefix, e.g. 'AFRICA'."""
    if value == geography_pb2.REGION_UNSPECIFIED:
        raise ValueError("region is unspecified")
    try:
        return geography_pb2.Region.Name(value).removeprefix("REGION_")  # type: ignore[arg-type]
    except ValueError:
        raise ValueError(f"unknown region {value}") from None


def is_instance_name(name: str) -> bool:
    """True for a valid instance name: lowercase letters, digits and '-', at most 63 chars."""
    return bool(_INSTANCE.match(name))
