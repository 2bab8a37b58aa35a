"""Maximal marginal relevance: a ranked list that trades relevance for variety."""

from __future__ import annotations

from collections.abc import Callable, Sequence

DEFAULT_LAMBDA = 0.7


def mmr(
    relevance: Sequence[float],
    similarity: Callable[[int, int], float],
    k: int,
    lam: float = DEFAULT_LAMBDA,
) -> list[int]:
    """Indices of up to k candidates, each maximising ``lam * relevance - (1 - lam) * max
    similarity to those already chosen`` (Carbonell & Goldstein 1998); lam=1 is plain ranking."""
    if not 0 <= lam <= 1:
        raise ValueError("lam must be in [0, 1]")
    remaining = list(range(len(relevance)))
    top = max(relevance, default=0.0) or 1.0
    chosen: list[int] = []
    # Closest similarity of each remaining candidate to the chosen ones, updated incrementally.
    closest = [0.0] * len(relevance)
    while remaining and len(chosen) < k:
        best = max(remaining, key=lambda i: lam * relevance[i] / top - (1 - lam) * closest[i])
        chosen.append(best)
        remaining.remove(best)
        for i in remaining:
            closest[i] = max(closest[i], similarity(best, i))
    return chosen
