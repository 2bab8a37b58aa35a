"""The items in memory: TF-IDF vectors (scikit-learn) and feature lookups for fast scoring."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

from ssg.recommendation.domain.model import Item

Vector = npt.NDArray[np.float64]
Positions = npt.NDArray[np.int64]


class ItemIndex:
    """An immutable snapshot of items with L2-normalised TF-IDF rows, rebuilt when items change."""

    def __init__(self, items: Iterable[Item]) -> None:
        self.items: list[Item] = list(items)
        self.position: dict[str, int] = {item.id: i for i, item in enumerate(self.items)}
        self._vectorizer = TfidfVectorizer(
            stop_words="english",
            sublinear_tf=True,
            ngram_range=(1, 2),
            min_df=1,
            max_features=200_000,
        )
        texts = [f"{item.title}\n{item.text}" for item in self.items]
        try:
            self.matrix: sparse.csr_matrix = sparse.csr_matrix(
                self._vectorizer.fit_transform(texts)
            )
            self._fitted = True
        except ValueError:
            # No words at all (no items, or only stop words): every similarity is 0.
            self.matrix = sparse.csr_matrix((len(self.items), 1))
            self._fitted = False
        # Column-major copy: a text's similarities read only its terms' postings.
        self._columns = sparse.csc_matrix(self.matrix)
        self.by_sdg = self._positions(lambda item: item.sdgs)
        self.by_region = self._positions(lambda item: item.regions)
        self.by_country = self._positions(lambda item: item.countries)
        self.by_kind = self._positions(lambda item: (item.kind,))
        self.by_target = self._positions(lambda item: item.targets)
        self.by_language = self._positions(lambda item: (item.language,) if item.language else ())
        self.active = np.array([item.active for item in self.items], dtype=bool)
        self.verified = np.array([item.verified for item in self.items], dtype=bool)
        # One column per SDG (0 unused): pairwise SDG overlaps as matrix products.
        self.sdg_matrix = np.zeros((len(self.items), 18), dtype=bool)
        for i, item in enumerate(self.items):
            self.sdg_matrix[i, [g for g in item.sdgs if 1 <= g <= 17]] = True
        kinds = sorted({item.kind for item in self.items})
        self.kind_codes = np.array([kinds.index(item.kind) for item in self.items], dtype=np.int64)
        # Items by owner, as codes into organization_ids (for per-provider arrays).
        self.organization_ids = sorted({item.organization_id for item in self.items})
        code = {o: n for n, o in enumerate(self.organization_ids)}
        self.organization_codes = np.array(
            [code[item.organization_id] for item in self.items], dtype=np.int64
        )
        self._published_days = np.array(
            [
                item.published_at.timestamp() / 86400 if item.published_at else np.nan
                for item in self.items
            ],
            dtype=np.float64,
        )

    def _positions(self, values: object) -> dict[object, Positions]:
        found: dict[object, list[int]] = defaultdict(list)
        for i, item in enumerate(self.items):
            for value in values(item):  # type: ignore[operator]
                found[value].append(i)
        return {k: np.array(v, dtype=np.int64) for k, v in found.items()}

    def __len__(self) -> int:
        return len(self.items)

    def get(self, item_id: str) -> Item | None:
        """The item with this id, or None."""
        at = self.position.get(item_id)
        return self.items[at] if at is not None else None

    def text_vector(self, text: str) -> sparse.csr_matrix:
        """The TF-IDF row of a text outside the index (e.g. a need's problem statement)."""
        if not self._fitted:
            return sparse.csr_matrix((1, self.matrix.shape[1]))
        return sparse.csr_matrix(self._vectorizer.transform([text]))

    def similarities(self, row: sparse.csr_matrix) -> Vector:
        """Cosine of a normalised row with every item (rows are L2-normalised by TF-IDF).

        Only the columns of the row's terms are read (their postings, from the column-major
        copy), so a short text costs far less than a pass over the whole matrix.
        """
        if row.nnz == 0 or not len(self.items):
            return np.zeros(len(self.items))
        row = sparse.csr_matrix(row)
        return np.asarray(self._columns[:, row.indices] @ row.data).ravel()

    def weighted_centroid(self, weights: dict[int, float]) -> sparse.csr_matrix:
        """The normalised weighted sum of item rows (a profile's text vector)."""
        if not weights:
            return sparse.csr_matrix((1, self.matrix.shape[1]))
        positions = list(weights)
        w = sparse.csr_matrix(np.array([weights[p] for p in positions]).reshape(1, -1))
        centroid = sparse.csr_matrix(w @ self.matrix[positions])
        norm = float(np.sqrt(centroid.multiply(centroid).sum()))
        return centroid / norm if norm > 0 else centroid

    def any_of(
        self, positions: Mapping[Any, Positions], values: Iterable[object]
    ) -> npt.NDArray[np.bool_]:
        """Mask of the items found under any of values in positions (e.g. ``by_sdg``)."""
        mask = np.zeros(len(self.items), dtype=bool)
        for value in values:
            found = positions.get(value)
            if found is not None:
                mask[found] = True
        return mask

    def sdg_jaccard(self, at: int) -> Vector:
        """SDG Jaccard similarity of the item at position at with every item."""
        sdgs = self.sdg_matrix.astype(np.float64)
        both = sdgs @ sdgs[at]
        union = sdgs.sum(axis=1) + sdgs[at].sum() - both
        return np.divide(both, union, out=np.zeros_like(both), where=union > 0)

    def cosine(self, a: int, b: int) -> float:
        """Cosine similarity of two indexed items."""
        return float(self.matrix[a].multiply(self.matrix[b]).sum())

    def freshness(self, now: datetime, half_life_days: float) -> Vector:
        """2 ** (-age / half_life) per item from its publication time (0.5 when unknown)."""
        ages = np.maximum(now.timestamp() / 86400 - self._published_days, 0.0)
        return np.where(np.isnan(ages), 0.5, 2.0 ** (-ages / half_life_days))

    def aligned(self, values: Mapping[str, float]) -> Vector:
        """values by item id as an array in index order (0 where missing)."""
        return np.array([values.get(item.id, 0.0) for item in self.items], dtype=np.float64)


def jaccard(a: Sequence[object], b: Sequence[object]) -> float:
    """Size of the intersection over size of the union of two collections (0 when both are empty)."""
    sa, sb = set(a), set(b)
    union = sa | sb
    return len(sa & sb) / len(union) if union else 0.0
