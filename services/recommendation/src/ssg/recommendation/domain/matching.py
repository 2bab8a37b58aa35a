"""Matchmaking: rank published solutions and their providers for a need, with reasons.

The score is in [0, 1]: a weighted sum of problem-text similarity, SDG and target overlap,
country context (same region, shared language, shared development context from the UN
LDC/LLDC/SIDS lists, the need's own country), provider verification and track record (matches
that went on to be implemented). Each non-zero term is a reason with its weight.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ssg.recommendation.domain.context import GROUPS, groups_of, shared_groups
from ssg.recommendation.domain.index import ItemIndex, Vector
from ssg.recommendation.domain.model import Item, ItemKind, Organization, Reason, Scored
from ssg.recommendation.domain.scoring import MIN_REASON_WEIGHT

# Matches whose providers reached this many implemented partnerships get the full weight.
TRACK_RECORD_FULL = 3
# How far under its array sum a score can fall (each of nine reasons may drop below
# MIN_REASON_WEIGHT), and how many near the k-th best are scored one by one at most.
SLACK = 9 * MIN_REASON_WEIGHT
MAX_RESCORED = 200
BoolVector = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class MatchWeights:
    """How much each part of a match counts (sums to 1)."""

    text: float = 0.35
    sdg: float = 0.20
    target: float = 0.10
    region: float = 0.07
    language: float = 0.04
    development: float = 0.05
    country: float = 0.04
    verified: float = 0.10
    track_record: float = 0.05


@dataclass(frozen=True)
class NeedSpec:
    """A need to match: posted (from catalog events) or described in a request."""

    title: str
    problem: str
    sdgs: tuple[int, ...] = ()
    targets: tuple[str, ...] = ()
    country: str = ""
    seeker_organization_id: str = ""
    id: str = ""

    @classmethod
    def of(cls, need: Item) -> NeedSpec:
        """The spec of a posted need item."""
        return cls(
            need.title,
            need.text,
            need.sdgs,
            need.targets,
            need.country,
            need.organization_id,
            need.id,
        )


@dataclass(frozen=True)
class SolutionMatch:
    """A scored solution with its provider (and, once attached, the experts behind it)."""

    scored: Scored
    provider: Organization
    # ScoredExpert values (domain.experts), best first.
    experts: tuple[Any, ...] = ()


class Matcher:
    """Scores the active solutions of an index for needs."""

    def __init__(self, index: ItemIndex, weights: MatchWeights | None = None) -> None:
        self.index = index
        self.weights = weights or MatchWeights()

    def match(
        self,
        need: NeedSpec,
        organizations: Mapping[str, Organization],
        track_record: Mapping[str, int],
        k: int,
        min_score: float = 0.0,
    ) -> list[SolutionMatch]:
        """The k best active solutions for need with a score of at least min_score.

        Every component is computed for all items at once as arrays; only the few that can
        reach the k-th best are scored one by one with their reasons.
        """
        index, w = self.index, self.weights
        if not len(index):
            return []
        text = np.clip(index.similarities(index.text_vector(f"{need.title}\n{need.problem}")), 0, 1)
        seeker = organizations.get(need.seeker_organization_id)
        total = w.text * text + self._rest(need, seeker, organizations, track_record)
        eligible = index.active & index.any_of(index.by_kind, [ItemKind.SOLUTION])
        if need.seeker_organization_id:
            eligible &= np.array(
                [o != need.seeker_organization_id for o in index.organization_ids], dtype=bool
            )[index.organization_codes]
        eligible &= total > 0
        candidates = np.flatnonzero(eligible)
        if not len(candidates):
            return []
        if len(candidates) > k:
            kth = np.partition(-total[candidates], k - 1)[k - 1]
            # Reasons below MIN_REASON_WEIGHT are dropped, so a score is at most that much per
            # component under its sum: keep everything that could still reach the k-th.
            near = candidates[-total[candidates] <= kth + SLACK]
            candidates = near[np.argsort(-total[near], kind="stable")[: MAX_RESCORED + k]]
        results: list[SolutionMatch] = []
        for i in candidates:
            item = index.items[int(i)]
            provider = organizations.get(item.organization_id) or Organization(
                item.organization_id, verified=item.verified
            )
            scored = self.score(need, item, float(text[i]), seeker, provider, track_record)
            if scored.score >= min_score and scored.score > 0:
                results.append(SolutionMatch(scored, provider))
        results.sort(key=lambda m: (-m.scored.score, m.scored.item.id))
        return results[:k]

    def _rest(
        self,
        need: NeedSpec,
        seeker: Organization | None,
        organizations: Mapping[str, Organization],
        track_record: Mapping[str, int],
    ) -> Vector:
        """Every component but text for every item at once (the sums ``score`` explains)."""
        index, w = self.index, self.weights
        n = len(index)
        rest = np.zeros(n)
        sdgs, targets = set(need.sdgs), set(need.targets)
        for g in sdgs:
            rest += w.sdg / len(sdgs) * index.any_of(index.by_sdg, [g])
        for t in targets:
            rest += w.target / len(targets) * index.any_of(index.by_target, [t])
        if seeker is not None:
            rest += w.region * index.any_of(index.by_region, seeker.regions)
            rest += w.language * index.any_of(index.by_language, seeker.languages)
        if need.country:
            peers = {c for g in groups_of(need.country) for c in GROUPS[g]}
            rest += w.development * index.any_of(index.by_country, peers)
            rest += w.country * index.any_of(index.by_country, [need.country])
        known = [organizations.get(o) for o in index.organization_ids]
        by_owner = np.array([o is not None for o in known], dtype=bool)[index.organization_codes]
        owner_verified = np.array([o is not None and o.verified for o in known], dtype=bool)
        verified = np.where(by_owner, owner_verified[index.organization_codes], index.verified)
        rest += w.verified * verified
        done = np.array(
            [min(track_record.get(o, 0), TRACK_RECORD_FULL) for o in index.organization_ids],
            dtype=np.float64,
        )
        rest += w.track_record * done[index.organization_codes] / TRACK_RECORD_FULL
        return rest

    def score(
        self,
        need: NeedSpec,
        solution: Item,
        text_similarity: float,
        seeker: Organization | None,
        provider: Organization,
        track_record: Mapping[str, int],
    ) -> Scored:
        """One solution scored for need with its reasons."""
        w = self.weights
        reasons: list[Reason] = []

        def add(code: str, text: str, weight: float, ref: str = "") -> None:
            if weight >= MIN_REASON_WEIGHT:
                reasons.append(Reason(code, text, float(weight), ref))

        add(
            "text_similarity",
            "describes a similar problem",
            w.text * float(np.clip(text_similarity, 0, 1)),
        )
        shared_sdgs = sorted(set(need.sdgs) & set(solution.sdgs))
        if need.sdgs and shared_sdgs:
            add(
                "sdg_overlap",
                "works on " + ", ".join(f"SDG {g}" for g in shared_sdgs),
                w.sdg * len(shared_sdgs) / len(set(need.sdgs)),
                ",".join(map(str, shared_sdgs)),
            )
        shared_targets = sorted(set(need.targets) & set(solution.targets))
        if need.targets and shared_targets:
            add(
                "target_overlap",
                "addresses target " + ", ".join(shared_targets),
                w.target * len(shared_targets) / len(set(need.targets)),
                ",".join(shared_targets),
            )
        if seeker is not None:
            regions = sorted(set(seeker.regions) & set(solution.regions))
            if regions:
                add(
                    "same_region",
                    f"implemented in your region ({regions[0]})",
                    w.region,
                    regions[0],
                )
            if solution.language and solution.language in seeker.languages:
                add(
                    "shared_language",
                    f"documented in a language you use ({solution.language})",
                    w.language,
                    solution.language,
                )
        if need.country:
            groups = sorted(shared_groups(need.country, solution.countries))
            if groups:
                add(
                    "development_context",
                    f"implemented in countries that share your {'/'.join(groups)} context",
                    w.development,
                    ",".join(groups),
                )
            if need.country in solution.countries:
                add(
                    "same_country",
                    f"already implemented in {need.country}",
                    w.country,
                    need.country,
                )
        if provider.verified:
            add("verified_provider", "provider is a verified organization", w.verified, provider.id)
        done = track_record.get(provider.id, 0)
        if done:
            add(
                "track_record",
                f"provider completed {done} partnership{'s' if done != 1 else ''} here",
                w.track_record * min(done, TRACK_RECORD_FULL) / TRACK_RECORD_FULL,
                provider.id,
            )
        reasons.sort(key=lambda r: -r.weight)
        return Scored(solution, sum(r.weight for r in reasons), tuple(reasons))
