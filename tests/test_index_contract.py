"""One contract suite, run against every vector-index backend, checked against brute force on
seeded vectors (ties tolerated, as in faiss.contrib.evaluation.check_ref_knn_with_draws)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from xmodal.errors import CollectionError, InvalidArgumentError
from xmodal.index import IndexConfig, create_index, index_kinds, load_index

DIM = 24
BACKENDS = [
    IndexConfig("flat"),
    IndexConfig("hnsw", {"m": 16, "ef_construction": 64, "ef_search": 64}),
    pytest.param(
        IndexConfig("milvus"),
        marks=pytest.mark.skipif(importlib.util.find_spec("pymilvus") is None, reason="pip install 'xmodal[milvus]'"),
    ),
]


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute(queries: np.ndarray, ids: np.ndarray, vecs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    sims = queries @ vecs.T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, order, axis=1), ids[order]


def check_knn(got_s: np.ndarray, got_i: np.ndarray, ref_s: np.ndarray, ref_i: np.ndarray, recall: float) -> None:
    """Exact match for exact indexes (ties: same score multiset); recall floor for ANN."""
    kk = ref_i.shape[1]
    np.testing.assert_array_equal((got_i[:, :kk] >= 0), True)
    assert np.all(np.diff(got_s[:, :kk], axis=1) <= 1e-6), "scores must be sorted best first"
    hits = sum(len(set(g[:kk]) & set(r)) for g, r in zip(got_i, ref_i, strict=True))
    assert hits / ref_i.size >= recall
    if recall == 1.0:
        np.testing.assert_allclose(got_s[:, :kk], ref_s, atol=1e-5)


@pytest.fixture(params=BACKENDS, ids=lambda c: c.kind)
def config(request: pytest.FixtureRequest) -> IndexConfig:
    return request.param


@pytest.fixture
def location(tmp_path: Path) -> Path:
    return tmp_path / "idx"


def floor(config: IndexConfig) -> float:
    return 0.95 if config.kind == "hnsw" else 1.0


def test_every_builtin_backend_is_covered() -> None:
    kinds = {(c.values[0] if hasattr(c, "values") else c).kind for c in BACKENDS}
    assert kinds == set(index_kinds()) == {"flat", "hnsw", "milvus"}


def test_add_search_matches_brute_force(config: IndexConfig, location: Path) -> None:
    rng = np.random.default_rng(0)
    vecs, ids = unit(rng, 2000), rng.choice(10**9, size=2000, replace=False).astype(np.int64)
    index = create_index(config, DIM, location)
    index.add(ids[:1200], vecs[:1200])
    index.add(ids[1200:], vecs[1200:])  # incremental
    assert len(index) == 2000
    q = unit(rng, 50)
    s, i = index.search(q, 10)
    check_knn(s, i, *brute(q, ids, vecs, 10), floor(config))
    for row in range(3):  # one query at a time (FAISS: the one-thread path) finds the same
        s1, i1 = index.search(q[row : row + 1], 10)
        check_knn(s1, i1, *brute(q[row : row + 1], ids, vecs, 10), floor(config))


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_faiss_runs_small_searches_on_one_thread(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import faiss

    rng = np.random.default_rng(5)
    index = create_index(IndexConfig(kind), DIM)
    index.add(np.arange(100, dtype=np.int64), unit(rng, 100))
    before = faiss.omp_get_max_threads()
    calls: list[int] = []
    real = faiss.omp_set_num_threads

    def spy(n: int) -> None:
        calls.append(n)
        real(n)

    monkeypatch.setattr(faiss, "omp_set_num_threads", spy)
    index.search(unit(rng, 1), 5)
    assert calls == [1, before] and faiss.omp_get_max_threads() == before  # one thread, then restored
    calls.clear()
    index.search(unit(rng, 40), 5)
    assert calls == []  # a batch keeps FAISS's threads


def test_filter_returns_k_allowed(config: IndexConfig, location: Path) -> None:
    rng = np.random.default_rng(1)
    vecs, ids = unit(rng, 3000), np.arange(3000, dtype=np.int64) * 7
    index = create_index(config, DIM, location)
    index.add(ids, vecs)
    q = unit(rng, 20)
    for allowed_n in (3, 40, 2500):
        allow = rng.choice(ids, size=allowed_n, replace=False)
        s, i = index.search(q, 10, allow=allow)
        kk = min(10, allowed_n)
        assert np.isin(i[:, :kk], allow).all()
        assert (i[:, kk:] == -1).all() and np.isneginf(s[:, kk:]).all()
        mask = np.isin(ids, allow)
        check_knn(s, i, *brute(q, ids[mask], vecs[mask], kk), floor(config))
    s, i = index.search(q, 5, allow=np.array([], dtype=np.int64))
    assert (i == -1).all()


def test_delete_and_upsert(config: IndexConfig, location: Path) -> None:
    rng = np.random.default_rng(2)
    vecs, ids = unit(rng, 500), np.arange(500, dtype=np.int64)
    index = create_index(config, DIM, location)
    index.add(ids, vecs)
    gone = ids[::3]
    assert index.remove(gone) == gone.size
    assert index.remove(gone) == 0  # idempotent
    assert index.remove(np.array([10**12])) == 0
    assert len(index) == 500 - gone.size
    keep = ~np.isin(ids, gone)
    s, i = index.search(vecs[:30], 10)
    assert not np.isin(i, gone).any()
    check_knn(s, i, *brute(vecs[:30], ids[keep], vecs[keep], 10), floor(config))
    # re-adding a live id replaces its vector
    new = unit(rng, 1)
    index.add(np.array([1]), new)
    s, i = index.search(new, 1)
    assert i[0, 0] == 1 and s[0, 0] == pytest.approx(1.0, abs=1e-5)
    assert len(index) == 500 - gone.size


def test_persist_and_reopen(config: IndexConfig, location: Path) -> None:
    rng = np.random.default_rng(3)
    vecs, ids = unit(rng, 800), np.arange(800, dtype=np.int64) + 5
    index = create_index(config, DIM, location)
    index.add(ids, vecs)
    index.remove(ids[:100])
    q = unit(rng, 10)
    before = index.search(q, 8)
    index.save(location)
    del index
    again = load_index(config, location, DIM)
    assert len(again) == 700
    assert sorted(again.ids().tolist()) == sorted(ids[100:].tolist())
    after = again.search(q, 8)
    np.testing.assert_array_equal(before[1], after[1])
    again.add(ids[:5], vecs[:5])
    assert len(again) == 705


def test_k_larger_than_count_and_empty(config: IndexConfig, location: Path) -> None:
    index = create_index(config, DIM, location)
    _, i = index.search(np.ones((1, DIM), dtype=np.float32) / np.sqrt(DIM), 4)
    assert (i == -1).all()
    rng = np.random.default_rng(4)
    index.add(np.array([1, 2]), unit(rng, 2))
    _s, i = index.search(unit(rng, 1), 5)
    assert sorted(i[0, :2].tolist()) == [1, 2] and (i[0, 2:] == -1).all()


def test_bad_inputs(config: IndexConfig, location: Path, tmp_path: Path) -> None:
    index = create_index(config, DIM, location)
    rng = np.random.default_rng(5)
    with pytest.raises(InvalidArgumentError):
        index.add(np.array([1]), unit(rng, 1)[:, :5])
    with pytest.raises(InvalidArgumentError):
        index.add(np.array([1, 1]), unit(rng, 2))
    with pytest.raises(InvalidArgumentError):
        index.add(np.array([-3]), unit(rng, 1))
    with pytest.raises(InvalidArgumentError):
        index.search(unit(rng, 1), 0)
    with pytest.raises(InvalidArgumentError):
        index.search(np.ones((1, DIM + 1), dtype=np.float32), 3)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "faiss.index").write_bytes(b"not an index")
    with pytest.raises(CollectionError):
        load_index(config, tmp_path / "bad", DIM)
