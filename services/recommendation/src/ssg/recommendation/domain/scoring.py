"""Hybrid scoring: content similarity to the profile, co-interaction, popularity, freshness.

Each component is in [0, 1]; the score is their weighted sum and each non-zero term becomes a
reason with its weight, so an explanation adds up to the score it explains. A profile with no
history is scored on popularity and freshness alone (cold start). The top of the ranking is
re-ordered by MMR so one SDG or one kind of record does not fill the list.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np
import numpy.typing as npt

from ssg.platform.reference.sdg import GOAL_NAMES
from ssg.recommendation.domain.diversity import DEFAULT_LAMBDA, mmr
from ssg.recommendation.domain.index import ItemIndex, Positions, Vector
from ssg.recommendation.domain.model import INTERACTION_VERBS, Item, ItemKind, Reason, Scored
from ssg.recommendation.domain.profile import COUNTRY, REGION, SDG, Profile

# Below this a component is noise and gives no reason.
MIN_REASON_WEIGHT = 1e-3
# Items whose text similarity is computed per Recommend (the best on every other component).
CANDIDATES = 1000


@dataclass(frozen=True)
class Weights:
    """How much each component counts (each set sums to 1)."""

    # Chosen on a validation window of the synthetic world (tests/load/bench_recommendation.py:
    # train days 0-120, validate 120-150), never on its test window.
    text: float = 0.10
    sdg: float = 0.30
    place: float = 0.05
    co: float = 0.15
    popular: float = 0.30
    fresh: float = 0.10
    # Part of the popularity weight given to use by organizations of the profile's region
    # when its region is known (the offline world has no organizations: chosen by hand).
    regional: float = 0.10
    cold_popular: float = 0.65
    cold_fresh: float = 0.35
    fresh_half_life_days: float = 180.0
    mmr_lambda: float = DEFAULT_LAMBDA


@dataclass(frozen=True)
class Filter:
    """Optional restrictions; empty means everything."""

    sdgs: frozenset[int] = frozenset()
    regions: frozenset[str] = frozenset()
    kinds: frozenset[ItemKind] = frozenset()

    def allows(self, item: Item) -> bool:
        """True when item passes every restriction."""
        return (
            (not self.sdgs or bool(self.sdgs.intersection(item.sdgs)))
            and (not self.regions or bool(self.regions.intersection(item.regions)))
            and (not self.kinds or item.kind in self.kinds)
        )


@dataclass(frozen=True)
class Signals:
    """Behaviour of everyone: decayed popularity per item, and co-interaction neighbours of
    the profile's items as cosine similarities (users in common / sqrt(users of each))."""

    popularity: Mapping[str, float] = field(default_factory=dict)
    neighbours: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    # The same popularity already in index order (``ItemIndex.aligned``): wins when given.
    popularity_by_position: Vector | None = None
    # Decayed use by organizations of each of the profile's regions, in index order
    # (``regions.REGIONS`` names); empty when the profile's region is not known.
    regional: Mapping[str, Vector] = field(default_factory=dict)
    # The neighbours as (index positions, cosines) per source item: wins over neighbours when
    # given (the API keeps them in this form, so a request does no per-neighbour Python work).
    neighbour_positions: Mapping[str, tuple[Positions, Vector]] | None = None

    def on(self, index: ItemIndex) -> Signals:
        """These signals with the neighbours as positions in index (converted once per call)."""
        if self.neighbour_positions is not None:
            return self
        return replace(self, neighbour_positions=self.positioned(index))

    def positioned(self, index: ItemIndex) -> Mapping[str, tuple[Positions, Vector]]:
        """The neighbours per source as positions in index and cosines (items not in it left
        out), in the order of the sources."""
        if self.neighbour_positions is not None:
            return self.neighbour_positions
        found: dict[str, tuple[Positions, Vector]] = {}
        for source, neighbours in self.neighbours.items():
            pairs = [
                (at, cosine)
                for other, cosine in neighbours.items()
                if (at := index.position.get(other)) is not None
            ]
            found[source] = (
                np.array([at for at, _ in pairs], dtype=np.int64),
                np.array([cosine for _, cosine in pairs], dtype=np.float64),
            )
        return found


@dataclass
class _Components:
    """Per-item component arrays and what each reason needs."""

    text: Vector
    sdg: Vector
    place: Vector
    co: Vector
    popular: Vector
    fresh: Vector
    # Use by organizations of the profile's regions, scaled like popular (zeros when unknown).
    regional: Vector | None = None
    # The profile's shares per feature family (SDG, REGION, COUNTRY), read once per call.
    shares: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    # The profile's text centroid as a dense row (None when it has no words).
    centroid: Vector | None = None


class Recommender:
    """Scores the items of one index for profiles."""

    def __init__(self, index: ItemIndex, weights: Weights | None = None) -> None:
        self.index = index
        self.weights = weights or Weights()

    def recommend(
        self,
        profile: Profile,
        signals: Signals,
        now: datetime,
        k: int,
        item_filter: Filter | None = None,
    ) -> list[Scored]:
        """The k best unseen active items for profile, diversified, each with its reasons.

        Text similarity is the costly component, so it is computed only for the CANDIDATES items
        that score best on the others; as text adds at most its weight, the result is exact
        whenever the pool's last score beats the best left-out item by that weight, and close
        otherwise (text weighs 0.10).
        """
        index, w = self.index, self.weights
        if not len(index):
            return []
        signals = signals.on(index)
        comps = self._components(profile, signals, now, with_text=False)
        partial = self._combine(profile, comps)
        allowed = self._allowed(profile, item_filter or Filter())
        candidates = np.flatnonzero(allowed)
        if not len(candidates):
            return []
        if not profile.cold and len(candidates) > CANDIDATES:
            best = np.argpartition(-partial[candidates], CANDIDATES - 1)[:CANDIDATES]
            candidates = candidates[best]
        if not profile.cold:
            comps.text[candidates] = self._text(comps.centroid, candidates)
        scores = partial[candidates] + (0.0 if profile.cold else w.text) * comps.text[candidates]
        pool_size = min(len(candidates), max(5 * k, 50))
        top = np.argpartition(-scores, pool_size - 1)[:pool_size]
        top = top[np.lexsort((candidates[top], -scores[top]))]
        pool = candidates[top]
        similarity = self._pool_similarity(pool)
        order = mmr(
            [float(x) for x in scores[top]],
            lambda a, b: float(similarity[a, b]),
            k,
            w.mmr_lambda,
        )
        chosen = [int(pool[o]) for o in order]
        closest = self._closest_histories(profile, chosen)
        peers = self._co_sources(profile, signals, chosen)
        return [
            self._scored(profile, signals, comps, at, closest.get(at), peers.get(at))
            for at in chosen
        ]

    def _allowed(self, profile: Profile, item_filter: Filter) -> npt.NDArray[np.bool_]:
        """Active, unseen items that pass the filter, as a mask in index order."""
        index = self.index
        allowed = index.active.copy()
        seen = [p for i in profile.seen if (p := index.position.get(i)) is not None]
        allowed[seen] = False
        if item_filter.sdgs:
            allowed &= index.any_of(index.by_sdg, item_filter.sdgs)
        if item_filter.regions:
            allowed &= index.any_of(index.by_region, item_filter.regions)
        if item_filter.kinds:
            allowed &= index.any_of(index.by_kind, item_filter.kinds)
        return allowed

    def _text(self, centroid: Vector | None, positions: Positions) -> Vector:
        """Text cosine of the profile centroid (dense) with the items at positions."""
        if centroid is None:
            return np.zeros(len(positions))
        return np.clip(np.asarray(self.index.matrix[positions] @ centroid).ravel(), 0.0, 1.0)

    def _pool_similarity(self, pool: Positions) -> Vector:
        """Pairwise item similarity for diversity: text cosine, SDG Jaccard and same kind."""
        index = self.index
        rows = index.matrix[pool]
        text = np.asarray((rows @ rows.T).toarray())
        sdgs = index.sdg_matrix[pool].astype(np.float64)
        both = sdgs @ sdgs.T
        sizes = sdgs.sum(axis=1)
        union = sizes[:, None] + sizes[None, :] - both
        jac = np.divide(both, union, out=np.zeros_like(both), where=union > 0)
        kinds = index.kind_codes[pool]
        same = (kinds[:, None] == kinds[None, :]).astype(np.float64)
        return 0.5 * text + 0.3 * jac + 0.2 * same

    def explain(self, profile: Profile, signals: Signals, now: datetime, item_id: str) -> Scored:
        """item_id scored for profile with every reason (seen or inactive items too)."""
        at = self.index.position.get(item_id)
        if at is None:
            raise KeyError(item_id)
        signals = signals.on(self.index)
        comps = self._components(profile, signals, now, with_text=False)
        if not profile.cold:
            comps.text[at] = self._text(comps.centroid, np.array([at]))[0]
        peer = self._co_sources(profile, signals, [at]).get(at)
        return self._scored(profile, signals, comps, at, self._closest_history(profile, at), peer)

    def similar(self, item_id: str, k: int) -> list[Scored]:
        """The k active items most like item_id by text and SDGs."""
        index = self.index
        at = index.position.get(item_id)
        if at is None:
            raise KeyError(item_id)
        item = index.items[at]
        text = index.similarities(index.matrix[at])
        results: list[Scored] = []
        sdg = index.sdg_jaccard(at)
        total = 0.7 * text + 0.3 * sdg
        total[at] = -1.0
        total[~index.active] = -1.0
        for p in np.argsort(-total, kind="stable")[:k]:
            if total[p] <= 0:
                break
            other = index.items[int(p)]
            reasons = []
            if text[p] * 0.7 >= MIN_REASON_WEIGHT:
                reasons.append(
                    Reason(
                        "text_similarity",
                        f"similar in content to '{item.title}'",
                        0.7 * float(text[p]),
                        item.id,
                    )
                )
            shared = sorted(set(item.sdgs) & set(other.sdgs))
            if shared:
                reasons.append(
                    Reason(
                        "shared_sdgs",
                        "shares " + ", ".join(f"SDG {g}" for g in shared),
                        0.3 * float(sdg[p]),
                    )
                )
            results.append(Scored(other, float(total[p]), tuple(reasons)))
        return results

    def _components(
        self, profile: Profile, signals: Signals, now: datetime, with_text: bool = True
    ) -> _Components:
        """Every component per item; text only when with_text (else zeros to fill in)."""
        index, n = self.index, len(self.index)
        zeros = np.zeros(n)
        popularity = (
            signals.popularity_by_position
            if signals.popularity_by_position is not None
            else index.aligned(signals.popularity)
        )
        top = float(popularity.max(initial=0.0))
        popular = np.log1p(popularity) / math.log1p(top) if top > 0 else zeros
        fresh = index.freshness(now, self.weights.fresh_half_life_days)
        if profile.cold:
            return _Components(zeros.copy(), zeros, zeros, zeros, popular, fresh)
        shares = {family: profile.shares(family) for family in (SDG, REGION, COUNTRY)}
        history = {index.position[i]: w for i, w in profile.items.items() if i in index.position}
        centroid_row = index.weighted_centroid(history)
        centroid = np.asarray(centroid_row.toarray()).ravel() if centroid_row.nnz else None
        text = zeros.copy()
        if with_text:
            text = self._text(centroid, np.arange(n))
        sdg = self._affinity(shares[SDG], index.by_sdg, int)
        place = np.maximum(
            self._affinity(shares[REGION], index.by_region, str),
            self._affinity(shares[COUNTRY], index.by_country, str),
        )
        co = zeros.copy()
        total = sum(profile.items.values()) or 1.0
        for source, (at_, cos_) in signals.positioned(index).items():
            if len(at_):
                # A source lists each neighbour once, so a fancy-index add is exact.
                co[at_] += (profile.items.get(source, 0.0) / total) * cos_
        return _Components(
            text,
            sdg,
            place,
            np.clip(co, 0.0, 1.0),
            popular,
            fresh,
            self._regional(signals),
            shares,
            centroid,
        )

    def _regional(self, signals: Signals) -> Vector | None:
        """Per item, the log-scaled use by organizations of the profile's busiest region for it
        (relative to that region's most used item); None without a region."""
        if not signals.regional:
            return None
        result = np.zeros(len(self.index))
        for values in signals.regional.values():
            top = float(values.max(initial=0.0))
            if top > 0:
                result = np.maximum(result, np.log1p(values) / math.log1p(top))
        return result

    def _affinity(
        self, shares: Mapping[str, float], positions: Mapping[object, Positions], cast: type
    ) -> Vector:
        """Per item, the largest share among its values of one feature family, scaled so the
        profile's strongest value counts 1."""
        result = np.zeros(len(self.index))
        strongest = max(shares.values(), default=0.0)
        for value, share in shares.items():
            try:
                found = positions.get(cast(value))
            except ValueError:
                continue
            if found is not None:
                result[found] = np.maximum(result[found], share / strongest)
        return result

    def _combine(self, profile: Profile, c: _Components) -> Vector:
        w = self.weights
        if profile.cold:
            return w.cold_popular * c.popular + w.cold_fresh * c.fresh
        popular, regional = self._popularity_split(c)
        score = (
            w.text * c.text
            + w.sdg * c.sdg
            + w.place * c.place
            + w.co * c.co
            + popular * c.popular
            + w.fresh * c.fresh
        )
        if c.regional is not None:
            score = score + regional * c.regional
        return score

    def _popularity_split(self, c: _Components) -> tuple[float, float]:
        """(platform-wide, regional) popularity weights: regional only with a known region."""
        w = self.weights
        if c.regional is None:
            return w.popular, 0.0
        return w.popular - w.regional, w.regional

    def _scored(
        self,
        profile: Profile,
        signals: Signals,
        c: _Components,
        at: int,
        source: Item | None,
        peer: Item | None,
    ) -> Scored:
        """The item at position at with its reasons; source is the profile item closest in
        text, peer the one whose co-interaction neighbours lift it most."""
        item, w = self.index.items[at], self.weights
        reasons: list[Reason] = []

        def add(code: str, text: str, weight: float, ref: str = "") -> None:
            if weight >= MIN_REASON_WEIGHT:
                reasons.append(Reason(code, text, float(weight), ref))

        if profile.cold:
            add("popular", "popular on the platform right now", w.cold_popular * c.popular[at])
            add("fresh", "recently published", w.cold_fresh * c.fresh[at])
        else:
            if source is not None:
                verb = (
                    INTERACTION_VERBS[profile.strongest[source.id]]
                    if source.id in profile.strongest
                    else "used"
                )
                add(
                    "similar_to",
                    f"similar to '{source.title}' you {verb}",
                    w.text * c.text[at],
                    source.id,
                )
            else:
                add("text_similarity", "close to what you read", w.text * c.text[at])
            sdg_shares = c.shares[SDG]
            focus = max(item.sdgs, key=lambda g: sdg_shares.get(str(g), 0.0), default=None)
            if focus is not None:
                add(
                    "sdg_focus",
                    f"matches your SDG {focus} focus ({GOAL_NAMES[focus]})",
                    w.sdg * c.sdg[at],
                    str(focus),
                )
            place = self._place(c, item)
            add("region", f"about {place}, where your interests lie", w.place * c.place[at], place)
            add(
                "co_interaction",
                f"people who used '{peer.title}' also used it"
                if peer
                else "used by people with your interests",
                w.co * c.co[at],
                peer.id if peer else "",
            )
            popular, regional = self._popularity_split(c)
            add("popular", "popular on the platform right now", popular * c.popular[at])
            if c.regional is not None:
                region = max(signals.regional, key=lambda r: signals.regional[r][at])
                add(
                    "regional_use",
                    f"organizations in your region ({region}) used it",
                    regional * c.regional[at],
                    region,
                )
            add("fresh", "recently published", w.fresh * c.fresh[at])
        reasons.sort(key=lambda r: -r.weight)
        return Scored(item, sum(r.weight for r in reasons), tuple(reasons))

    def _closest_histories(self, profile: Profile, chosen: list[int]) -> dict[int, Item]:
        """For each chosen position, the profile item contributing most to its text similarity
        (one sparse product for all of them)."""
        positions = [
            (p, w)
            for item_id, w in profile.items.items()
            if (p := self.index.position.get(item_id)) is not None
        ]
        if not positions or not chosen:
            return {}
        rows = self.index.matrix[[p for p, _ in positions]]
        cosines = np.asarray((rows @ self.index.matrix[chosen].T).toarray())
        values = cosines * np.array([w for _, w in positions])[:, None]
        found: dict[int, Item] = {}
        for j, at in enumerate(chosen):
            column = values[:, j].copy()
            column[[n for n, (p, _) in enumerate(positions) if p == at]] = 0.0
            best = int(np.argmax(column))
            if column[best] > 0:
                found[at] = self.index.items[positions[best][0]]
        return found

    def _closest_history(self, profile: Profile, at: int) -> Item | None:
        """The profile item whose content contributes most to at's text similarity."""
        positions = [
            (p, w)
            for item_id, w in profile.items.items()
            if (p := self.index.position.get(item_id)) is not None and p != at
        ]
        if not positions:
            return None
        rows = self.index.matrix[[p for p, _ in positions]]
        cosines = np.asarray((rows @ self.index.matrix[at].T).toarray()).ravel()
        values = cosines * np.array([w for _, w in positions])
        best = int(np.argmax(values))
        return self.index.items[positions[best][0]] if values[best] > 0 else None

    def _co_sources(self, profile: Profile, signals: Signals, chosen: list[int]) -> dict[int, Item]:
        """For each chosen position, the profile item whose co-interaction neighbours lift it
        most (the first of equals in the neighbours' order); absent when none does."""
        best: dict[int, tuple[float, Item]] = {}
        wanted = np.array(chosen, dtype=np.int64)
        for source, (positions, cosines) in signals.positioned(self.index).items():
            found = self.index.get(source)
            if found is None:
                continue
            weight = profile.items.get(source, 0.0)
            for h in np.flatnonzero(np.isin(positions, wanted)):
                at, value = int(positions[h]), weight * float(cosines[h])
                if value > best.get(at, (0.0, found))[0]:
                    best[at] = (value, found)
        return {at: item for at, (_, item) in best.items()}

    def _place(self, c: _Components, item: Item) -> str:
        regions, countries = c.shares[REGION], c.shares[COUNTRY]
        options = [(regions.get(r, 0.0), r) for r in item.regions]
        options += [(countries.get(c, 0.0), c) for c in item.countries]
        return max(options, default=(0.0, ""))[1]
