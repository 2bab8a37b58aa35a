"""SuggestSdgs: SDG goals and targets for a submission text, with a confidence each.

A multi-label classifier (scikit-learn: TF-IDF word 1-2-grams, one logistic regression per
goal) learns from labelled text: the published catalog, whose SDG tags reviewers approved,
plus the goal names as a floor so every goal can be suggested before it has examples. Targets
are suggested from the labelled texts most similar to the submission, within the suggested
goals.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import MultiLabelBinarizer

from ssg.platform.reference.sdg import GOAL_NAMES, goal_of_target

GOALS = tuple(range(1, 18))
# The goals' official statements (public text) with the themes of their targets, so that
# every goal can be suggested from its own words before the catalog has examples of it.
GOAL_TEXTS: dict[int, str] = {
    1: "End poverty in all its forms everywhere. Extreme poverty, social protection systems, "
    "equal rights to economic resources, land ownership, basic services, resilience of the poor.",
    2: "End hunger, achieve food security and improved nutrition and promote sustainable "
    "agriculture. Malnutrition, stunting, smallholder farmers, crop yields, seeds, food prices.",
    3: "Ensure healthy lives and promote well-being for all at all ages. Maternal mortality, "
    "newborn and child deaths, epidemics, malaria, tuberculosis, vaccines, health coverage.",
    4: "Ensure inclusive and equitable quality education and promote lifelong learning "
    "opportunities for all. Primary and secondary school, early childhood, literacy, teachers.",
    5: "Achieve gender equality and empower all women and girls. Discrimination, violence "
    "against women, child marriage, unpaid care work, women's leadership and land rights.",
    6: "Ensure availability and sustainable management of water and sanitation for all. Safe "
    "drinking water, sanitation and hygiene, wastewater, water-use efficiency, watersheds.",
    7: "Ensure access to affordable, reliable, sustainable and modern energy for all. "
    "Electricity access, renewable energy, solar, clean cooking, energy efficiency.",
    8: "Promote sustained, inclusive and sustainable economic growth, full and productive "
    "employment and decent work for all. Jobs, small enterprises, youth employment, wages.",
    9: "Build resilient infrastructure, promote inclusive and sustainable industrialization and "
    "foster innovation. Roads, industry, small manufacturers, research, internet access.",
    10: "Reduce inequality within and among countries. Income growth of the poorest, social and "
    "economic inclusion, migration, remittances, equal opportunity.",
    11: "Make cities and human settlements inclusive, safe, resilient and sustainable. Housing, "
    "slums, public transport, urban planning, disaster risk, waste, air quality.",
    12: "Ensure sustainable consumption and production patterns. Natural resources, food waste, "
    "chemicals, recycling, reuse, sustainable public procurement.",
    13: "Take urgent action to combat climate change and its impacts. Climate adaptation, "
    "resilience to climate hazards, early warning, emissions, climate education.",
    14: "Conserve and sustainably use the oceans, seas and marine resources. Marine pollution, "
    "coastal ecosystems, overfishing, small-scale fishers, marine protected areas.",
    15: "Protect, restore and promote sustainable use of terrestrial ecosystems, sustainably "
    "manage forests, combat desertification, halt land degradation and biodiversity loss.",
    16: "Promote peaceful and inclusive societies, provide access to justice for all and build "
    "effective, accountable and inclusive institutions. Violence, corruption, legal identity.",
    17: "Strengthen the means of implementation and revitalize the global partnership for "
    "sustainable development. Finance, technology transfer, capacity building, trade, data.",
}
# Neighbours whose targets are considered.
TARGET_NEIGHBOURS = 15


@dataclass(frozen=True)
class Labelled:
    """One labelled text."""

    text: str
    sdgs: tuple[int, ...]
    targets: tuple[str, ...] = ()


@dataclass(frozen=True)
class TargetSuggestion:
    """A target code with its confidence."""

    code: str
    confidence: float


@dataclass(frozen=True)
class SdgSuggestion:
    """A goal with its confidence and its likely targets."""

    sdg: int
    confidence: float
    targets: tuple[TargetSuggestion, ...] = ()


class SdgSuggester:
    """A classifier fitted once on a labelled corpus."""

    def __init__(self, corpus: Sequence[Labelled]) -> None:
        floor = [
            Labelled(f"{name}. SDG {g}. {GOAL_TEXTS[g]}", (g,)) for g, name in GOAL_NAMES.items()
        ]
        docs = [*floor, *(d for d in corpus if d.sdgs and d.text.strip())]
        self._docs = docs
        self._vectorizer = TfidfVectorizer(
            stop_words="english", sublinear_tf=True, ngram_range=(1, 2), min_df=1
        )
        matrix = self._vectorizer.fit_transform([d.text for d in docs])
        self._matrix = matrix
        self._labels = MultiLabelBinarizer(classes=GOALS)
        y = self._labels.fit_transform([d.sdgs for d in docs])
        self._model = OneVsRestClassifier(
            LogisticRegression(C=20.0, max_iter=2000, class_weight="balanced")
        )
        self._model.fit(matrix, y)

    def probabilities(self, text: str) -> dict[int, float]:
        """Each goal's probability for text."""
        row = self._vectorizer.transform([text])
        probs = np.asarray(self._model.predict_proba(row)).ravel()
        return {int(g): float(p) for g, p in zip(self._labels.classes_, probs, strict=True)}

    def suggest(self, text: str, k: int = 3, min_confidence: float = 0.5) -> list[SdgSuggestion]:
        """Up to k goals with confidence >= min_confidence (at least the best one), best first."""
        probs = self.probabilities(text)
        ranked = sorted(probs.items(), key=lambda kv: -kv[1])
        chosen = [(g, p) for g, p in ranked[:k] if p >= min_confidence] or ranked[:1]
        targets = self._targets(text, {g for g, _ in chosen})
        return [
            SdgSuggestion(g, p, tuple(t for t in targets if goal_of_target(t.code) == g))
            for g, p in chosen
        ]

    def _targets(self, text: str, goals: set[int]) -> list[TargetSuggestion]:
        row = self._vectorizer.transform([text])
        sims = np.asarray((self._matrix @ row.T).toarray()).ravel()
        votes: dict[str, float] = defaultdict(float)
        total = 0.0
        for n in np.argsort(-sims)[:TARGET_NEIGHBOURS]:
            if sims[n] <= 0:
                break
            total += float(sims[n])
            for code in self._docs[int(n)].targets:
                if goal_of_target(code) in goals:
                    votes[code] += float(sims[n])
        if not total:
            return []
        return sorted(
            (TargetSuggestion(code, v / total) for code, v in votes.items() if v / total >= 0.2),
            key=lambda t: -t.confidence,
        )
