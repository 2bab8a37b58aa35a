"""SuggestSdgs never waits for a refit once a classifier exists (found by the fuzz pass: every
call after the items changed fitted the classifier inside the call, past callers' deadlines)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, cast

from ssg.platform.paging import PageCodec
from ssg.recommendation.domain.model import ItemKind
from ssg.recommendation.service import RecommendationService
from ssg.testing.waiting import eventually


@dataclass(frozen=True)
class Item:
    title: str
    text: str
    sdgs: tuple[int, ...]
    targets: tuple[str, ...] = ()
    active: bool = True
    kind: ItemKind = ItemKind.SOLUTION


@dataclass
class Index:
    items: list[Item]


@dataclass
class Snapshot:
    index: Index


@dataclass
class Snapshots:
    """The service reads only ``current().index`` of its snapshot cache."""

    snapshot: Snapshot = field(default_factory=lambda: Snapshot(Index([])))

    def current(self) -> Snapshot:
        return self.snapshot


def service(snapshots: Snapshots) -> RecommendationService:
    # SuggestSdgs uses neither the store nor the event factory.
    return RecommendationService(
        cast(Any, None),
        cast(Any, snapshots),
        cast(Any, None),
        instance="global",
        pages=PageCodec(b"unused"),
    )


WATER = Item("Borehole committees", "village boreholes and hand pumps repaired", (6,))
SCHOOLS = Item("School meals", "pupils get a cooked lunch from local farms", (2, 4))


async def test_the_last_classifier_answers_while_the_new_one_is_fitted() -> None:
    snapshots = Snapshots(Snapshot(Index([WATER])))
    svc = service(snapshots)
    first = svc._current_suggester()  # the first one is fitted in the call

    snapshots.snapshot = Snapshot(Index([WATER, SCHOOLS]))
    started = time.perf_counter()
    assert svc._current_suggester() is first  # no waiting for the refit
    assert time.perf_counter() - started < 0.5
    assert svc._current_suggester() is first  # and only one refit runs at a time

    refitted = await eventually(
        lambda: svc._current_suggester() is not first and svc._current_suggester(),
        "the refitted classifier",
        within=60,
    )
    assert refitted is svc._current_suggester()  # stays until the items change again
    found = await svc.suggest_sdgs("pupils get a cooked lunch at school", 3)
    assert {s.sdg for s in found} & {2, 4}


async def test_the_first_classifier_is_fitted_as_the_api_starts() -> None:
    svc = service(Snapshots(Snapshot(Index([WATER, SCHOOLS]))))
    await svc.warm_up(asyncio.Event())
    fitted = svc._suggester
    assert fitted is not None
    # A call then takes the classifier fitted at start instead of fitting its own.
    assert await svc.suggest_sdgs("hand pumps for villages", 1)
    assert svc._suggester is fitted
