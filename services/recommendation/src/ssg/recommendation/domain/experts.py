"""Experts behind a matched solution: the provider's affiliated experts, ranked for the need.

An expert counts for a need by SDG overlap, expertise areas the need's text mentions, countries
of experience (the need's own country), and a language shared with the seeker; each non-zero
term is a reason with its weight, so an expert's reasons add up to its score. Only profiles the
caller may see are returned (public ones; members-only ones to signed-in callers).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ssg.recommendation.domain.matching import NeedSpec
from ssg.recommendation.domain.model import Organization, Reason
from ssg.recommendation.domain.scoring import MIN_REASON_WEIGHT

# Experts attached to one matched solution at most.
EXPERTS_PER_MATCH = 3
_WORD = re.compile(r"[a-z0-9]{4,}")


@dataclass(frozen=True)
class Expert:
    """What matching keeps of an expert profile (kept from registration expert events)."""

    id: str
    name: str
    organization_id: str = ""
    expertise: tuple[str, ...] = ()
    sdgs: tuple[int, ...] = ()
    languages: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    # False: members only (hidden profiles are never kept).
    public: bool = True
    version: int = 0


@dataclass(frozen=True)
class ExpertWeights:
    """How much each part counts (sums to 1)."""

    sdg: float = 0.40
    expertise: float = 0.30
    country: float = 0.20
    language: float = 0.10


@dataclass(frozen=True)
class ScoredExpert:
    """An expert with its score for a need and the reasons that add up to it."""

    expert: Expert
    score: float
    reasons: tuple[Reason, ...] = ()


def visible(experts: Iterable[Expert], signed_in: bool) -> list[Expert]:
    """The experts a caller may see."""
    return [e for e in experts if e.public or signed_in]


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def score_expert(
    need: NeedSpec,
    seeker: Organization | None,
    expert: Expert,
    weights: ExpertWeights | None = None,
) -> ScoredExpert:
    """One expert scored for need with its reasons."""
    w = weights or ExpertWeights()
    reasons: list[Reason] = []

    def add(code: str, text: str, weight: float, ref: str = "") -> None:
        if weight >= MIN_REASON_WEIGHT:
            reasons.append(Reason(code, text, float(weight), ref))

    shared = sorted(set(need.sdgs) & set(expert.sdgs))
    if need.sdgs and shared:
        add(
            "expert_sdgs",
            "works on " + ", ".join(f"SDG {g}" for g in shared),
            w.sdg * len(shared) / len(set(need.sdgs)),
            ",".join(map(str, shared)),
        )
    need_words = _words(f"{need.title}\n{need.problem}")
    mentioned = [a for a in expert.expertise if _words(a) and _words(a) <= need_words]
    if mentioned:
        add(
            "expertise",
            f"expert in '{mentioned[0]}', which your need mentions",
            w.expertise * min(len(mentioned), 2) / 2,
            mentioned[0],
        )
    if need.country and need.country in expert.countries:
        add("expert_country", f"has worked in {need.country}", w.country, need.country)
    if seeker is not None:
        languages = [lang for lang in expert.languages if lang in seeker.languages]
        if languages:
            add(
                "expert_language",
                f"speaks {languages[0]}, a language you use",
                w.language,
                languages[0],
            )
    reasons.sort(key=lambda r: -r.weight)
    return ScoredExpert(expert, sum(r.weight for r in reasons), tuple(reasons))


def rank_experts(
    need: NeedSpec,
    seeker: Organization | None,
    experts: Sequence[Expert],
    limit: int = EXPERTS_PER_MATCH,
) -> list[ScoredExpert]:
    """The best limit experts for need, best first (ties by name, then id)."""
    scored = [score_expert(need, seeker, e) for e in experts]
    scored.sort(key=lambda s: (-s.score, s.expert.name, s.expert.id))
    return scored[:limit]
