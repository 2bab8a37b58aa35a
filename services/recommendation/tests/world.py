"""A small hand-made catalog for the domain tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ssg.recommendation.domain.model import Item, ItemKind

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def item(
    id: str,
    title: str,
    text: str,
    sdgs: tuple[int, ...],
    *,
    kind: ItemKind = ItemKind.SOLUTION,
    regions: tuple[str, ...] = ("AFRICA",),
    countries: tuple[str, ...] = ("KEN",),
    age_days: float = 100,
    **fields: object,
) -> Item:
    """An item published age_days before NOW."""
    return Item(
        id=id,
        kind=kind,
        title=title,
        text=text,
        sdgs=sdgs,
        regions=regions,
        countries=countries,
        published_at=NOW - timedelta(days=age_days),
        **fields,  # type: ignore[arg-type]
    )


WATER = [
    item(
        "w1",
        "Solar water pumps",
        "solar pumps irrigation water for smallholder farmers",
        (6, 7),
        organization_id="o-water",
    ),
    item(
        "w2",
        "Rainwater harvesting",
        "rainwater harvesting tanks water storage for villages",
        (6,),
        organization_id="o-water",
    ),
    item(
        "w3",
        "Water user associations",
        "community water committees manage wells and water tariffs",
        (6, 16),
        organization_id="o-ngo",
    ),
    item(
        "w4",
        "Drip irrigation kits",
        "drip irrigation saves water for smallholder vegetable farmers",
        (6, 2),
        kind=ItemKind.KNOWLEDGE_PRODUCT,
    ),
]
HEALTH = [
    item(
        "h1",
        "Community health workers",
        "community health workers visit mothers and newborns",
        (3,),
        regions=("ASIA_PACIFIC",),
        countries=("NPL",),
    ),
    item(
        "h2",
        "Mobile clinics",
        "mobile clinics bring vaccines and health checks to remote districts",
        (3,),
        regions=("ASIA_PACIFIC",),
        countries=("BGD",),
    ),
    item(
        "h3",
        "Malaria bed nets",
        "distribution of bed nets against malaria in health districts",
        (3,),
        countries=("UGA",),
    ),
]
EDUCATION = [
    item(
        "e1",
        "Radio schooling",
        "radio lessons keep children learning in remote schools",
        (4,),
        regions=("LATIN_AMERICA_CARIBBEAN",),
        countries=("BOL",),
    ),
    item(
        "e2",
        "Teacher peer networks",
        "teachers share lesson plans in peer networks for schools",
        (4,),
        regions=("LATIN_AMERICA_CARIBBEAN",),
        countries=("PER",),
    ),
]
ITEMS = [*WATER, *HEALTH, *EDUCATION]
