"""Near-duplicate pictures: groups of items whose looks (a photo's backbone features, kind
``look``) are at least ``threshold`` apart in cosine -- the same photo resized, recompressed,
cropped a little or colour-shifted. Exact range search over the looks with FAISS, then the
pairs joined into groups (single link)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from xmodal.errors import InvalidArgumentError

# measured in bench/bench_photos.py --task duplicates on real photos with generated edits
# (half size, JPEG quality 30, 5 % cut from each side, brighter and less saturated)
DEFAULT_THRESHOLD = 0.80  # precision 1.000, recall 0.987 there (single-link groups)


@dataclass(frozen=True)
class DuplicateGroup:
    """Item ids, the first the one most like the others, each with its cosine to the first."""

    items: tuple[str, ...]
    similarity: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "items": [{"id": i, "similarity": round(s, 4)} for i, s in zip(self.items, self.similarity, strict=True)]
        }


def check_threshold(threshold: Any) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise InvalidArgumentError(f"threshold must be a number between 0 and 1, got {threshold!r}")
    value = float(threshold)
    if not math.isfinite(value) or not 0.0 < value <= 1.0:
        raise InvalidArgumentError(f"threshold must be above 0 and at most 1, got {threshold!r}")
    return value


def duplicate_groups(item_ids: list[str], looks: np.ndarray, threshold: float) -> list[DuplicateGroup]:
    """Groups of at least two items, largest first (then by first id)."""
    import faiss

    threshold = check_threshold(threshold)
    n = len(item_ids)
    if n < 2:
        return []
    x = np.ascontiguousarray(looks, dtype=np.float32)
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    lims, _, found = index.range_search(x, threshold)
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        for j in found[lims[i] : lims[i + 1]]:
            a, b = root(i), root(int(j))
            if a != b:
                parent[max(a, b)] = min(a, b)
    members: dict[int, list[int]] = {}
    for i in range(n):
        members.setdefault(root(i), []).append(i)
    groups = []
    for idx in members.values():
        if len(idx) < 2:
            continue
        sub = x[idx] @ x[idx].T
        first = idx[int(np.argmax(sub.sum(axis=1)))]
        order = sorted(idx, key=lambda i: (i != first, -float(x[i] @ x[first]), item_ids[i]))
        groups.append(
            DuplicateGroup(tuple(item_ids[i] for i in order), tuple(min(1.0, float(x[i] @ x[first])) for i in order))
        )
    groups.sort(key=lambda g: (-len(g.items), g.items[0]))
    return groups
