"""SuggestSdgs: goals and targets from labelled text, with confidences (no servers)."""

from __future__ import annotations

import pytest

from ssg.recommendation.domain.suggest import Labelled, SdgSuggester

CORPUS = [
    Labelled(
        "solar pumps bring irrigation water to farmers; wells and boreholes repaired",
        (6,),
        ("6.1",),
    ),
    Labelled(
        "village water committees repair hand pumps and boreholes for safe drinking water",
        (6,),
        ("6.1", "6.b"),
    ),
    Labelled("latrines and hand washing stations in schools improve sanitation", (6,), ("6.2",)),
    Labelled(
        "community health workers visit mothers and newborns; vaccines in clinics",
        (3,),
        ("3.1", "3.2"),
    ),
    Labelled(
        "mobile clinics bring vaccines and malaria bed nets to remote districts", (3,), ("3.3",)
    ),
    Labelled(
        "radio lessons keep children learning; teachers share lesson plans in schools",
        (4,),
        ("4.1",),
    ),
    Labelled(
        "teacher training colleges and school reading programmes for children", (4,), ("4.1", "4.c")
    ),
    Labelled("mini-grids of solar panels electrify villages and clinics", (7,), ("7.1",)),
]


@pytest.fixture(scope="module")
def suggester() -> SdgSuggester:
    return SdgSuggester(CORPUS)


def test_the_closest_goal_comes_first_with_its_targets(suggester):
    found = suggester.suggest(
        "our boreholes and hand pumps break; we want water committees to repair them"
    )
    assert found[0].sdg == 6
    assert 0 < found[0].confidence <= 1
    assert found[0].targets and found[0].targets[0].code == "6.1"
    assert all(t.code.startswith("6.") for t in found[0].targets)


def test_confidences_are_ordered_and_bounded(suggester):
    found = suggester.suggest("vaccines for newborns in rural clinics", k=5, min_confidence=0.0)
    assert found[0].sdg == 3
    confidences = [s.confidence for s in found]
    assert confidences == sorted(confidences, reverse=True) and len(found) == 5


def test_goals_without_examples_are_known_by_their_names(suggester):
    probs = suggester.probabilities("marine protected areas against overfishing by coastal fishers")
    assert set(probs) == set(range(1, 18))
    assert max(probs, key=lambda g: probs[g]) == 14


def test_at_least_one_suggestion_even_when_unsure(suggester):
    assert len(suggester.suggest("zzz qqq", min_confidence=0.99)) == 1
