"""Which vectors of a collection are pictures (kind ``image``): the search pipeline scores them
with an image tower's own vector for a text query (``TextQueryVectors``).

Kept per process and brought up to date from the catalog's generation: a vector's kind never
changes and vector ids only grow, so new ids are read incrementally; ids of deleted vectors stay
until the next full read (every ``FULL_READ_EVERY`` generations), which is harmless -- the index
and the catalog no longer return them -- and bounds the drift of the counts."""

from __future__ import annotations

import numpy as np

from xmodal.catalog import Catalog
from xmodal.types import VectorKind

FULL_READ_EVERY = 1000  # catalog generations between full reads


class PictureVids:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._generation = -1
        self._full_at = -1
        self._last = 0  # highest vector id read
        self._is_picture = np.zeros(0, dtype=bool)
        self._is_other = np.zeros(0, dtype=bool)

    def split(self, allow: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Picture vector ids and the other ids, among ``allow`` when given (sorted when not)."""
        self._update()
        if allow is None:
            return np.flatnonzero(self._is_picture), np.flatnonzero(self._is_other)
        allow = np.asarray(allow, dtype=np.int64)
        known = allow[(allow >= 0) & (allow < len(self._is_picture))]
        return known[self._is_picture[known]], known[self._is_other[known]]

    def _update(self) -> None:
        generation = self.catalog.generation
        if generation == self._generation:
            return
        full = self._full_at < 0 or generation - self._full_at >= FULL_READ_EVERY or generation < self._generation
        after = 0 if full else self._last
        pictures, others = self.catalog.vids_by_kind(VectorKind.IMAGE, after=after)
        if not full and not len(pictures) and not len(others):  # a deletion or a metadata change
            self._generation = generation
            return
        top = max(int(pictures[-1]) if len(pictures) else 0, int(others[-1]) if len(others) else 0, after)
        size = top + 1 if full else max(top + 1, len(self._is_picture))
        is_picture = np.zeros(size, dtype=bool)
        is_other = np.zeros(size, dtype=bool)
        if not full:
            is_picture[: len(self._is_picture)] = self._is_picture
            is_other[: len(self._is_other)] = self._is_other
        is_picture[pictures] = True
        is_other[others] = True
        self._is_picture, self._is_other, self._last = is_picture, is_other, top
        self._generation = generation
        if full:
            self._full_at = generation


SCORE_BLOCK = 8192  # looks scored at a time (48 MB of float32 for 1536-d looks)


class Looks:
    """Every item's look (kind ``look``: a photo's appearance features), read from the catalog
    when first asked and again when its generation changes, and searched exactly: looks stay
    out of the ANN index (another size, another space). float16 in memory: 2.5 KB a photo."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._generation = -1
        self._items: list[str] = []
        self._vids = np.zeros(0, dtype=np.int64)
        self._matrix = np.zeros((0, 0), dtype=np.float16)

    def get(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(item ids, their picture vector's vid, looks as float16 rows)."""
        generation = self.catalog.generation
        if generation != self._generation:
            self._items, self._vids, self._matrix = self.catalog.looks()
            self._generation = generation
        return self._items, self._vids, self._matrix

    def __len__(self) -> int:
        return len(self.get()[0])

    def best(self, vector: np.ndarray, k: int, allow: np.ndarray | None) -> dict[str, tuple[float, int]]:
        """The k items whose look is nearest ``vector`` (cosine), among ``allow``'s vids."""
        items, vids, matrix = self.get()
        if not items:
            return {}
        row = np.asarray(vector, dtype=np.float32).reshape(-1)
        if row.shape[0] != matrix.shape[1]:
            return {}  # a query from another tower's looks
        scores = np.empty(len(items), dtype=np.float32)
        for start in range(0, len(items), SCORE_BLOCK):  # float32 a block at a time: bounded memory
            scores[start : start + SCORE_BLOCK] = matrix[start : start + SCORE_BLOCK].astype(np.float32) @ row
        keep = np.arange(len(items)) if allow is None else np.flatnonzero(np.isin(vids, allow))
        if not len(keep):
            return {}
        top = keep[np.argsort(-scores[keep], kind="stable")[:k]]
        return {items[i]: (float(scores[i]), int(vids[i])) for i in top}
