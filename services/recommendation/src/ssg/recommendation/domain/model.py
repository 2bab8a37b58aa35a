"""What the recommender knows: catalog items, provider organizations and reasons."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class ItemKind(enum.StrEnum):
    """The kind of catalog record an item is (names match ``ItemKind`` without its prefix)."""

    SOLUTION = "SOLUTION"
    KNOWLEDGE_PRODUCT = "KNOWLEDGE_PRODUCT"
    NEED = "NEED"
    FUNDING_OPPORTUNITY = "FUNDING_OPPORTUNITY"


class InteractionKind(enum.StrEnum):
    """What a person did with an item."""

    VIEW = "VIEW"
    SAVE = "SAVE"
    SHARE = "SHARE"
    DOWNLOAD = "DOWNLOAD"
    CONTACT_PROVIDER = "CONTACT_PROVIDER"
    SEARCH_CLICK = "SEARCH_CLICK"


# How much one interaction of each kind says about an interest (a view is the unit).
INTERACTION_WEIGHTS: dict[InteractionKind, float] = {
    InteractionKind.VIEW: 1.0,
    InteractionKind.SEARCH_CLICK: 1.0,
    InteractionKind.DOWNLOAD: 2.0,
    InteractionKind.SHARE: 2.5,
    InteractionKind.SAVE: 3.0,
    InteractionKind.CONTACT_PROVIDER: 4.0,
}

# The verb of an interaction in an explanation ("similar to X you saved").
INTERACTION_VERBS: dict[InteractionKind, str] = {
    InteractionKind.VIEW: "viewed",
    InteractionKind.SEARCH_CLICK: "opened",
    InteractionKind.DOWNLOAD: "downloaded",
    InteractionKind.SHARE: "shared",
    InteractionKind.SAVE: "saved",
    InteractionKind.CONTACT_PROVIDER: "contacted",
}


@dataclass(frozen=True)
class Item:
    """A public catalog record as the recommender sees it (kept from catalog events)."""

    id: str
    kind: ItemKind
    title: str
    text: str
    organization_id: str = ""
    sdgs: tuple[int, ...] = ()
    targets: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    language: str = ""
    modality: str = ""
    published_at: datetime | None = None
    # False once archived or closed: kept for explanations, never recommended.
    active: bool = True
    # The owner's verification as the catalog last stated it (the registration read model
    # wins when it knows the organization).
    verified: bool = False
    # Only for needs: the seeker's country.
    country: str = ""
    instance: str = ""
    version: int = 0


@dataclass(frozen=True)
class Organization:
    """What matching needs of an organization (kept from registration events)."""

    id: str
    name: str = ""
    verified: bool = False
    country: str = ""
    regions: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    version: int = 0


@dataclass(frozen=True, slots=True)
class Reason:
    """One part of a score: a code, a sentence, its weight and what it refers to (slots: an API
    process holds tens of them per stored list in memory, ADR 0055)."""

    code: str
    text: str
    weight: float
    ref: str = ""


@dataclass(frozen=True)
class Scored:
    """An item with its score and the reasons that add up to it."""

    item: Item
    score: float
    reasons: tuple[Reason, ...] = field(default=())
