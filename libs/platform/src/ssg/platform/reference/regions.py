"""Which platform region (``ssg.common.v1.Region``) each country belongs to.

The rule, so that anyone can check an entry: the UN M49 geographic regions, except that the
members of the League of Arab States form ARAB_STATES, and Eastern Europe, the Western Balkans,
Türkiye, the South Caucasus and Central Asia form EUROPE_CENTRAL_ASIA; the rest of M49 Europe is
WESTERN_EUROPE, M49 Northern America is NORTH_AMERICA, the rest of Asia and Oceania is
ASIA_PACIFIC. Antarctica belongs to none.
"""

from __future__ import annotations

from functools import cache

from ssg.contracts.common.v1 import geography_pb2

_MEMBERS: dict[str, str] = {
    "ARAB_STATES": (
        "DZA BHR COM DJI EGY IRQ JOR KWT LBN LBY MRT MAR OMN PSE QAT SAU SOM SDN SYR TUN ARE YEM"
    ),
    "AFRICA": (
        "ESH BDI ERI ETH KEN MDG MWI MUS MYT MOZ REU RWA SYC SSD UGA TZA ZMB ZWE IOT ATF "
        "AGO CMR CAF TCD COG COD GNQ GAB STP BWA SWZ LSO NAM ZAF "
        "BEN BFA CPV CIV GMB GHA GIN GNB LBR MLI NER NGA SHN SEN SLE TGO"
    ),
    "LATIN_AMERICA_CARIBBEAN": (
        "AIA ATG ABW BHS BRB BES VGB CYM CUB CUW DMA DOM GRD GLP HTI JAM MTQ MSR PRI BLM KNA "
        "LCA MAF VCT SXM TTO TCA VIR BLZ CRI SLV GTM HND MEX NIC PAN "
        "ARG BOL BRA CHL COL ECU FLK GUF GUY PRY PER SUR URY VEN SGS BVT"
    ),
    "NORTH_AMERICA": "BMU CAN GRL SPM USA",
    "EUROPE_CENTRAL_ASIA": (
        "BLR BGR CZE HUN MDA POL ROU RUS SVK UKR ALB BIH MNE MKD SRB TUR "
        "ARM AZE GEO KAZ KGZ TJK TKM UZB"
    ),
    "WESTERN_EUROPE": (
        "ALA DNK EST FRO FIN GGY ISL IRL IMN JEY LVA LTU NOR SJM SWE GBR "
        "AND HRV GIB GRC VAT ITA MLT PRT SMR SVN ESP "
        "AUT BEL FRA DEU LIE LUX MCO NLD CHE"
    ),
    "ASIA_PACIFIC": (
        "CHN HKG MAC PRK JPN MNG KOR TWN "
        "BRN KHM IDN LAO MYS MMR PHL SGP THA TLS VNM "
        "AFG BGD BTN IND IRN MDV NPL PAK LKA CYP ISR "
        "AUS NZL NFK CXR CCK HMD FJI NCL PNG SLB VUT GUM KIR MHL FSM NRU MNP PLW UMI "
        "ASM COK PYF NIU PCN WSM TKL TON TUV WLF"
    ),
}


@cache
def _region_by_country() -> dict[str, int]:
    table: dict[str, int] = {}
    for name, codes in _MEMBERS.items():
        value = geography_pb2.Region.Value(f"REGION_{name}")
        for code in codes.split():
            if code in table:
                raise AssertionError(f"{code} is listed in two regions")
            table[code] = value
    return table


def region_of(alpha3: str) -> int:
    """The Region value of a country code; REGION_UNSPECIFIED for one outside every region."""
    return _region_by_country().get(alpha3, geography_pb2.REGION_UNSPECIFIED)


def countries_of(region: int) -> frozenset[str]:
    """The country codes of a Region value (empty for REGION_UNSPECIFIED or an unknown value)."""
    return frozenset(code for code, value in _region_by_country().items() if value == region)
