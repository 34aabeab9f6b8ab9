"""FAISS backends: exact flat inner product, and HNSW (approximate, with an exact fallback).

Both wrap the engine in ``IndexIDMap2`` so FAISS stores our int64 vector ids. Filters are FAISS
``IDSelectorBatch`` selectors applied inside the search, not post-filters, so a filtered search
still returns k results when k allowed vectors exist.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from xmodal.errors import CollectionError
from xmodal.index.base import VectorIndex, empty_result

INDEX_FILE = "faiss.index"
TOMBSTONE_FILE = "deleted.npy"


def _faiss() -> Any:
    import faiss

    return faiss


# Below this many queries a search runs on one OpenMP thread: FAISS's parallel loops gain nothing
# on one query, and their idle workers then spin (GOMP_SPINCOUNT) against the text model's next
# forward pass on a small machine -- measured on 2 cores: query encoding after a search 11.5 ms
# with FAISS's default threads, 5.4 ms with one; search p50 14.7 -> 8.2 ms (bench/bench_query_threads.py).
PARALLEL_QUERIES = 20


@contextmanager
def _threads_for(n_queries: int) -> Iterator[None]:
    """One OpenMP thread for a small search (the setting is per calling thread in OpenMP, so
    concurrent searches in other threads keep their own)."""
    faiss = _faiss()
    if n_queries >= PARALLEL_QUERIES:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _atomic_write_index(index: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    _faiss().write_index(index, str(tmp))
    os.replace(tmp, path)


def _read_index(directory: Path, dim: int) -> Any:
    path = directory / INDEX_FILE
    try:
        index = _faiss().read_index(str(path))
    except RuntimeError as exc:
        raise CollectionError(f"{path}: unreadable vector index ({str(exc).splitlines()[0]})") from exc
    if index.d != dim:
        raise CollectionError(f"{path}: index has dimension {index.d}, expected {dim}")
    return index


def _fix_scores(scores: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = scores.astype(np.float32, copy=True)
    scores[ids < 0] = -np.inf
    return scores, ids.astype(np.int64, copy=False)


class FaissFlatIndex(VectorIndex):
    """Exact search: every query is compared with every stored vector."""

    kind = "flat"
    PARAMS: ClassVar[dict[str, tuple[Any, ...]] | None] = {}

    def __init__(self, dim: int, location: Path | None = None, **params: Any) -> None:
        super().__init__(dim, location, **params)
        faiss = _faiss()
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids, vectors = self._check_vectors(ids, vectors)
        if ids.size:
            self.remove(ids)  # upsert semantics
            self._index.add_with_ids(vectors, ids)

    def remove(self, ids: np.ndarray) -> int:
        ids = np.ascontiguousarray(np.asarray(ids, dtype=np.int64).reshape(-1))
        if not ids.size or self._index.ntotal == 0:
            return 0
        return int(self._index.remove_ids(_faiss().IDSelectorBatch(ids)))

    def ids(self) -> np.ndarray:
        return _faiss().vector_to_array(self._index.id_map).astype(np.int64)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def search(self, queries: np.ndarray, k: int, allow: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        queries = self._check_queries(queries, k)
        if self._index.ntotal == 0 or (allow is not None and len(allow) == 0):
            return empty_result(queries.shape[0], k)
        faiss = _faiss()
        params = None
        if allow is not None:
            sel = faiss.IDSelectorBatch(np.ascontiguousarray(allow, dtype=np.int64))
            params = faiss.SearchParameters(sel=sel)
        with _threads_for(queries.shape[0]):
            scores, ids = self._index.search(queries, k, params=params)
        return _fix_scores(scores, ids)

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        _atomic_write_index(self._index, path / INDEX_FILE)

    @classmethod
    def load(cls, path: Path, dim: int, **params: Any) -> FaissFlatIndex:
        obj = cls(dim, path, **params)
        obj._index = _read_index(path, dim)
        return obj


class FaissHNSWIndex(VectorIndex):
    """HNSW graph search. FAISS HNSW cannot delete, so removed ids are tombstones that every
    search excludes; the graph is rebuilt from live vectors when tombstones pass a quarter."""

    kind = "hnsw"
    COMPACT_RATIO = 0.25
    PARAMS: ClassVar[dict[str, tuple[Any, ...]] | None] = {
        "m": (int, 2, 256),  # graph degree
        "ef_construction": (int, 1, 4096),
        "ef_search": (int, 1, 32768),
    }

    def __init__(self, dim: int, location: Path | None = None, **params: Any) -> None:
        super().__init__(dim, location, **params)
        self.m = int(params.get("m", 32))
        self.ef_construction = int(params.get("ef_construction", 80))
        self.ef_search = int(params.get("ef_search", 64))
        self._index = self._new_index()
        self._deleted: set[int] = set()
        self._live_cache: np.ndarray | None = None

    def _new_index(self) -> Any:
        faiss = _faiss()
        hnsw = faiss.IndexHNSWFlat(self.dim, self.m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = self.ef_construction
        hnsw.hnsw.efSearch = self.ef_search
        return faiss.IndexIDMap2(hnsw)

    # -- storage access ----------------------------------------------------------------------
    def _all_ids(self) -> np.ndarray:
        return _faiss().vector_to_array(self._index.id_map).astype(np.int64)

    def _all_vectors(self) -> np.ndarray:
        faiss = _faiss()
        hnsw = faiss.downcast_index(self._index.index)
        storage = faiss.downcast_index(hnsw.storage)
        return faiss.vector_to_array(storage.codes).view(np.float32).reshape(-1, self.dim)

    def ids(self) -> np.ndarray:
        if self._live_cache is None:
            all_ids = self._all_ids()
            if self._deleted:
                dead = np.fromiter(self._deleted, dtype=np.int64)
                all_ids = all_ids[~np.isin(all_ids, dead)]
            self._live_cache = all_ids
        return self._live_cache

    # -- mutation ----------------------------------------------------------------------------
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids, vectors = self._check_vectors(ids, vectors)
        if not ids.size:
            return
        present = np.isin(ids, self._all_ids())
        if present.any():
            # re-adding an id: tombstone the old copy is not enough (FAISS ids must be unique)
            self._rebuild(exclude=ids[present])
        self._index.add_with_ids(vectors, ids)
        self._live_cache = None

    def remove(self, ids: np.ndarray) -> int:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        live = set(self.ids().tolist())
        hit = [int(i) for i in ids if int(i) in live]
        self._deleted.update(hit)
        self._live_cache = None
        return len(hit)

    def _rebuild(self, exclude: np.ndarray | None = None) -> None:
        all_ids = self._all_ids()
        vectors = self._all_vectors()
        keep = np.ones(all_ids.shape[0], dtype=bool)
        dead = set(self._deleted)
        if exclude is not None:
            dead.update(int(i) for i in exclude)
        if dead:
            keep &= ~np.isin(all_ids, np.fromiter(dead, dtype=np.int64))
        self._index = self._new_index()
        if keep.any():
            self._index.add_with_ids(np.ascontiguousarray(vectors[keep]), np.ascontiguousarray(all_ids[keep]))
        self._deleted = set()
        self._live_cache = None

    # -- search ------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int, allow: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        queries = self._check_queries(queries, k)
        live = self.ids()
        eligible = live if allow is None else np.intersect1d(live, np.asarray(allow, dtype=np.int64))
        n_eligible = int(eligible.shape[0])
        if n_eligible == 0:
            return empty_result(queries.shape[0], k)
        want = min(k, n_eligible)
        # A small eligible set is cheaper (and exact) to scan than to reach through the graph.
        if allow is not None and n_eligible <= max(2048, 4 * k):
            return self._exact(queries, k, eligible)
        faiss = _faiss()
        sel = None
        if allow is not None:
            sel = faiss.IDSelectorBatch(np.ascontiguousarray(eligible))
        elif self._deleted:
            sel = faiss.IDSelectorBatch(np.ascontiguousarray(live))
        ef = max(self.ef_search, 2 * k)
        params = faiss.SearchParametersHNSW(sel=sel, efSearch=ef) if sel is not None else None
        if params is None:
            params = faiss.SearchParametersHNSW(efSearch=ef)
        with _threads_for(queries.shape[0]):
            scores, ids = _fix_scores(*self._index.search(queries, k, params=params))
        short = (ids >= 0).sum(axis=1) < want
        if short.any():
            ex_scores, ex_ids = self._exact(queries[short], k, eligible)
            scores[short], ids[short] = ex_scores, ex_ids
        return scores, ids

    def _exact(self, queries: np.ndarray, k: int, eligible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if eligible.shape[0] <= 4096:  # per-id lookups through IndexIDMap2's reverse map
            vectors = np.stack([self._index.reconstruct(int(i)) for i in eligible])
        else:
            all_ids = self._all_ids()
            order = np.argsort(all_ids)
            vectors = self._all_vectors()[order[np.searchsorted(all_ids, eligible, sorter=order)]]
        sims = queries @ vectors.T
        kk = min(k, eligible.shape[0])
        top = np.argsort(-sims, axis=1, kind="stable")[:, :kk]
        scores, ids = empty_result(queries.shape[0], k)
        scores[:, :kk] = np.take_along_axis(sims, top, axis=1)
        ids[:, :kk] = eligible[top]
        return scores, ids

    # -- persistence -------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        total = int(self._index.ntotal)
        if self._deleted and len(self._deleted) > self.COMPACT_RATIO * max(total, 1):
            self._rebuild()
        _atomic_write_index(self._index, path / INDEX_FILE)
        tmp = path / (TOMBSTONE_FILE + ".tmp.npy")
        np.save(tmp, np.fromiter(sorted(self._deleted), dtype=np.int64))
        os.replace(tmp, path / TOMBSTONE_FILE)

    @classmethod
    def load(cls, path: Path, dim: int, **params: Any) -> FaissHNSWIndex:
        obj = cls(dim, path, **params)
        obj._index = index = _read_index(path, dim)
        _faiss().downcast_index(index.index).hnsw.efSearch = obj.ef_search
        tomb = path / TOMBSTONE_FILE
        if tomb.exists():
            try:
                obj._deleted = {int(i) for i in np.load(tomb)}
            except (OSError, ValueError) as exc:
                raise CollectionError(f"{tomb}: unreadable ({exc})") from exc
        return obj
