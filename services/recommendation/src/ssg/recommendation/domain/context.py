"""Development context of countries: the UN lists of LDCs, LLDCs and SIDS, as data.

Sources: UN-OHRLLS lists (LDC list after the 2024 graduation of Bhutan 2023 and Sao Tome and
Principe 2024; LLDC list of 32 countries; SIDS UN members and associate members with an
ISO 3166-1 code). Written as data so a list change is a one-line edit.
"""

from __future__ import annotations

LDC: frozenset[str] = frozenset(
    [
        "AFG",
        "AGO",
        "BGD",
        "BEN",
        "BFA",
        "BDI",
        "KHM",
        "CAF",
        "TCD",
        "COM",
        "COD",
        "DJI",
        "ERI",
        "ETH",
        "GMB",
        "GIN",
        "GNB",
        "HTI",
        "KIR",
        "LAO",
        "LSO",
        "LBR",
        "MDG",
        "MWI",
        "MLI",
        "MRT",
        "MOZ",
        "MMR",
        "NPL",
        "NER",
        "RWA",
        "SEN",
        "SLE",
        "SLB",
        "SOM",
        "SSD",
        "SDN",
        "TLS",
        "TGO",
        "TUV",
        "UGA",
        "TZA",
        "YEM",
        "ZMB",
    ]
)
LLDC: frozenset[str] = frozenset(
    [
        "AFG",
        "ARM",
        "AZE",
        "BTN",
        "BOL",
        "BWA",
        "BFA",
        "BDI",
        "CAF",
        "TCD",
        "SWZ",
        "ETH",
        "KAZ",
        "KGZ",
        "LAO",
        "LSO",
        "MWI",
        "MLI",
        "MDA",
        "MNG",
        "NPL",
        "NER",
        "MKD",
        "PRY",
        "RWA",
        "SSD",
        "TJK",
        "TKM",
        "UGA",
        "UZB",
        "ZMB",
        "ZWE",
    ]
)
SIDS: frozenset[str] = frozenset(
    [
        "ATG",
        "BHS",
        "BRB",
        "BLZ",
        "CPV",
        "COM",
        "CUB",
        "DMA",
        "DOM",
        "FJI",
        "GRD",
        "GNB",
        "GUY",
        "HTI",
        "JAM",
        "KIR",
        "MDV",
        "MHL",
        "FSM",
        "MUS",
        "NRU",
        "PLW",
        "PNG",
        "WSM",
        "STP",
        "SYC",
        "SGP",
        "SLB",
        "KNA",
        "LCA",
        "VCT",
        "SUR",
        "TLS",
        "TON",
        "TTO",
        "TUV",
        "VUT",
        "AIA",
        "ABW",
        "BMU",
        "VGB",
        "CYM",
        "COK",
        "CUW",
        "PYF",
        "GUM",
        "MSR",
        "NCL",
        "NIU",
        "MNP",
        "PRI",
        "SXM",
        "TCA",
        "VIR",
        "ASM",
    ]
)
GROUPS: dict[str, frozenset[str]] = {"LDC": LDC, "LLDC": LLDC, "SIDS": SIDS}


def groups_of(country: str) -> frozenset[str]:
    """The development groups (LDC, LLDC, SIDS) a country belongs to."""
    return frozenset(name for name, members in GROUPS.items() if country in members)


def shared_groups(country: str, others: tuple[str, ...] | list[str]) -> frozenset[str]:
    """Groups that country shares with at least one of others."""
    mine = groups_of(country)
    if not mine:
        return frozenset()
    return frozenset(g for other in others for g in groups_of(other) & mine)
