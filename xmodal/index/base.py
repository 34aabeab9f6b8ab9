"""The vector-index contract.

Vectors are L2-normalised float32, so inner product is cosine similarity. Ids are int64
(the catalog's vector ids). A backend implements add / remove / search / save / load / ids;
every backend must pass ``tests/test_index_contract.py``, which checks it against brute force.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from xmodal.errors import InvalidArgumentError


@dataclass(frozen=True)
class IndexConfig:
    """Which engine and settings; saved with the collection."""

    kind: str = "flat"
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexConfig:
        return cls(kind=str(data.get("kind", "flat")), params=dict(data.get("params", {})))


class VectorIndex(ABC):
    """Nearest-neighbour search over unit vectors by inner product.

    ``search(queries, k, allow=ids)`` must return, for each query, the best
    ``min(k, |allow ∩ stored|)`` ids among ``allow`` (all stored ids when ``allow`` is None),
    best first, padded with id -1 and score -inf.
    """

    kind: ClassVar[str] = "base"
    # the settings this engine takes: name -> (int, low, high) or (str, allowed values or None);
    # None: not declared (a plugin), any dict is passed on unchecked
    PARAMS: ClassVar[dict[str, tuple[Any, ...]] | None] = None

    def __init__(self, dim: int, location: Path | None = None, **params: Any) -> None:
        if dim <= 0:
            raise InvalidArgumentError(f"index dimension must be positive, got {dim}")
        self.dim = int(dim)
        self.location = location
        self.params = params

    @classmethod
    def check_params(cls, params: Any) -> dict[str, Any]:
        """Refuse settings this engine does not take, or values out of range, before anything
        is built (an HNSW graph with a negative degree would exhaust memory). Checked when a
        collection is given settings, not when one saved with them opens."""
        if not isinstance(params, dict):
            raise InvalidArgumentError(f"index settings must be a dict of name -> value, got {params!r}")
        if cls.PARAMS is None:
            return dict(params)
        for key, value in params.items():
            spec = cls.PARAMS.get(key)
            if spec is None:
                known = ", ".join(sorted(cls.PARAMS)) or "none"
                raise InvalidArgumentError(f"index {cls.kind!r} has no setting {key!r}; its settings: {known}")
            if spec[0] is int:
                low, high = spec[1], spec[2]
                if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                    raise InvalidArgumentError(f"index setting {key!r} must be a whole number from {low} to {high}")
            elif not isinstance(value, str) or not value.strip() or (spec[1] and value.upper() not in spec[1]):
                allowed = f": one of {', '.join(spec[1])}" if spec[1] else ""
                raise InvalidArgumentError(f"index setting {key!r} must be a non-empty string{allowed}")
        return dict(params)

    @abstractmethod
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    @abstractmethod
    def remove(self, ids: np.ndarray) -> int:
        """Remove ids that are present; returns how many were removed."""

    @abstractmethod
    def search(self, queries: np.ndarray, k: int, allow: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]: ...

    @abstractmethod
    def ids(self) -> np.ndarray:
        """All stored ids (any order)."""

    @abstractmethod
    def save(self, path: Path) -> None:
        """Write the index atomically to ``path`` (a directory)."""

    @classmethod
    @abstractmethod
    def load(cls, path: Path, dim: int, **params: Any) -> VectorIndex:
        """Open the index saved at ``path`` (a directory)."""

    def __len__(self) -> int:
        return int(self.ids().shape[0])

    # ---- helpers shared by backends -------------------------------------------------------
    def _check_vectors(self, ids: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ids = np.ascontiguousarray(np.asarray(ids, dtype=np.int64).reshape(-1))
        vectors = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise InvalidArgumentError(f"expected vectors of shape (n, {self.dim}), got {vectors.shape}")
        if vectors.shape[0] != ids.shape[0]:
            raise InvalidArgumentError("ids and vectors differ in length")
        if ids.size and ids.min() < 0:
            raise InvalidArgumentError("vector ids must be non-negative")
        if np.unique(ids).size != ids.size:
            raise InvalidArgumentError("duplicate ids in one add")
        return ids, vectors

    def _check_queries(self, queries: np.ndarray, k: int) -> np.ndarray:
        queries = np.ascontiguousarray(np.asarray(queries, dtype=np.float32))
        if queries.ndim == 1:
            queries = queries.reshape(1, -1)
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise InvalidArgumentError(f"expected queries of shape (n, {self.dim}), got {queries.shape}")
        if k <= 0:
            raise InvalidArgumentError(f"k must be positive, got {k}")
        return queries


def empty_result(nq: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((nq, k), -np.inf, dtype=np.float32), np.full((nq, k), -1, dtype=np.int64)
