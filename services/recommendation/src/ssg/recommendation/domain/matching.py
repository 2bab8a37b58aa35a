"""Matchmaking: rank published solutions and their providers for a need, with reasons.

The score is in [0, 1]: a weighted sum of problem-text similarity, SDG and target overlap,
country context (same region, shared language, shared development context from the UN
LDC/LLDC/SIDS lists, the need's own country), provider verification and track record (matches
that went on to be implemented). Each non-zero term is a reason with its weight.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ssg.recommendation.domain.context import shared_groups
from ssg.recommendation.domain.index import ItemIndex
from ssg.recommendation.domain.model import Item, ItemKind, Organization, Reason, Scored
from ssg.recommendation.domain.scoring import MIN_REASON_WEIGHT

# Matches whose providers reached this many implemented partnerships get the full weight.
TRACK_RECORD_FULL = 3


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
    """A scored solution with its provider."""

    scored: Scored
    provider: Organization


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

        Solutions are visited best first by text and SDG overlap (computed for all at once);
        the visit stops when even the rest of the score at its maximum could not lift the next
        one above the k-th best, so most solutions are never scored one by one.
        """
        index, w = self.index, self.weights
        if not len(index):
            return []
        text = np.clip(index.similarities(index.text_vector(f"{need.title}\n{need.problem}")), 0, 1)
        overlap = np.zeros(len(index))
        for g in set(need.sdgs):
            found = index.by_sdg.get(g)
            if found is not None:
                overlap[found] += 1.0 / len(set(need.sdgs))
        rough = w.text * text + w.sdg * overlap
        rest = (
            w.target
            + w.region
            + w.language
            + w.development
            + w.country
            + w.verified
            + w.track_record
        )
        seeker = organizations.get(need.seeker_organization_id)
        results: list[SolutionMatch] = []
        for i in np.argsort(-rough, kind="stable"):
            if len(results) >= k and rough[i] + rest < results[k - 1].scored.score:
                break
            item = index.items[int(i)]
            if item.kind is not ItemKind.SOLUTION or not item.active:
                continue
            if need.seeker_organization_id and item.organization_id == need.seeker_organization_id:
                continue  # an organization is not its own provider
            provider = organizations.get(item.organization_id) or Organization(
                item.organization_id, verified=item.verified
            )
            scored = self.score(need, item, float(text[i]), seeker, provider, track_record)
            if scored.score >= min_score and scored.score > 0:
                results.append(SolutionMatch(scored, provider))
                results.sort(key=lambda m: (-m.scored.score, m.scored.item.id))
                del results[k:]
        return results

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
