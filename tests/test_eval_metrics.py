"""Metrics against ranx on seeded random runs, and on cases small enough to work out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xmodal.errors import InvalidArgumentError
from xmodal.eval.metrics import (
    DEFAULT_METRICS,
    average_precision,
    evaluate,
    evaluate_per_query,
    ndcg_at_k,
    rank_docs,
    ranks_from_scores,
    recall_at_k,
    recall_from_ranks,
    reciprocal_rank,
)

METRICS = (*DEFAULT_METRICS, "recall@3", "mrr@5", "ndcg@3", "ndcg@20", "precision@5")


def _random_case(seed: int, n_queries: int = 40, n_docs: int = 60):
    rng = np.random.default_rng(seed)
    run: dict[str, dict[str, float]] = {}
    qrels: dict[str, dict[str, int]] = {}
    for q in range(n_queries):
        qid = f"q{q}"
        n_ret = int(rng.integers(1, n_docs))
        docs = rng.choice(n_docs, size=n_ret, replace=False)
        # distinct scores: a random permutation scaled, so no ties
        scores = rng.permutation(n_ret).astype(float) / n_ret
        run[qid] = {f"d{d}": float(s) for d, s in zip(docs, scores, strict=True)}
        n_rel = int(rng.integers(1, 8))
        rel = rng.choice(n_docs, size=n_rel, replace=False)
        qrels[qid] = {f"d{d}": 1 for d in rel}
    return run, qrels


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_matches_ranx_on_random_runs(seed: int) -> None:
    ranx = pytest.importorskip("ranx")
    run, qrels = _random_case(seed)
    ours = evaluate(run, qrels, METRICS)
    theirs = ranx.evaluate(ranx.Qrels(qrels), ranx.Run(run), list(METRICS), make_comparable=True)
    for m in METRICS:
        assert ours[m] == pytest.approx(float(theirs[m]), abs=1e-6), m


def test_query_missing_from_run_scores_zero_like_ranx() -> None:
    ranx = pytest.importorskip("ranx")
    run = {"a": {"x": 1.0, "y": 0.5}}
    qrels = {"a": {"y": 1}, "b": {"z": 1}}
    ours = evaluate(run, qrels, ["recall@1", "mrr@10", "map"])
    theirs = ranx.evaluate(ranx.Qrels(qrels), ranx.Run(run), ["recall@1", "mrr@10", "map"], make_comparable=True)
    assert ours["recall@1"] == pytest.approx(0.0)
    assert ours["mrr@10"] == pytest.approx(0.25)  # (1/2 + 0) / 2
    for m, v in ours.items():
        assert v == pytest.approx(float(theirs[m]), abs=1e-6)


def test_hand_worked_example() -> None:
    # ranking: a b c d e ; relevant: b d (2 relevant)
    ranked = ["a", "b", "c", "d", "e"]
    rel = {"b", "d"}
    assert recall_at_k(ranked, rel, 1) == 0.0
    assert recall_at_k(ranked, rel, 2) == 0.5
    assert recall_at_k(ranked, rel, 5) == 1.0
    assert reciprocal_rank(ranked, rel, 10) == 0.5
    assert reciprocal_rank(ranked, rel, 1) == 0.0
    # AP = (1/2 + 2/4) / 2
    assert average_precision(ranked, rel) == pytest.approx(0.5)
    # nDCG@10 = (1/log2 3 + 1/log2 5) / (1 + 1/log2 3)
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(ranked, rel, 10) == pytest.approx(expected)


def test_relevant_never_retrieved_counts_in_denominator() -> None:
    run = {"q": {"a": 0.9, "b": 0.8}}
    qrels = {"q": {"a": 1, "zzz": 1, "yyy": 1}}
    res = evaluate(run, qrels, ["recall@10", "map"])
    assert res["recall@10"] == pytest.approx(1 / 3)
    assert res["map"] == pytest.approx(1 / 3)


def test_ties_broken_by_doc_id() -> None:
    assert rank_docs({"b": 1.0, "a": 1.0, "c": 2.0}) == ["c", "a", "b"]


def test_zero_relevance_is_not_relevant_and_empty_queries_are_skipped() -> None:
    run = {"q1": {"a": 1.0}, "q2": {"a": 1.0}}
    qrels = {"q1": {"a": 1}, "q2": {"a": 0}}
    assert set(evaluate_per_query(run, qrels)) == {"q1"}
    with pytest.raises(InvalidArgumentError):
        evaluate(run, {"q2": {"a": 0}})


@pytest.mark.parametrize("bad", ["recall", "foo@3", "recall@0", "recall@x"])
def test_bad_metric_names(bad: str) -> None:
    with pytest.raises(InvalidArgumentError):
        evaluate({"q": {"a": 1.0}}, {"q": {"a": 1}}, [bad])


def test_dense_ranks_are_pessimistic_on_ties() -> None:
    scores = np.array([[0.9, 0.5, 0.5], [0.1, 0.2, 0.3]])
    pos = np.array([[False, True, False], [False, False, True]])
    ranks = ranks_from_scores(scores, pos)
    assert ranks.tolist() == [3, 1]
    assert recall_from_ranks(ranks, (1, 3)) == {"recall@1": 0.5, "recall@3": 1.0}


def test_dense_ranks_agree_with_dict_metrics_for_single_targets() -> None:
    rng = np.random.default_rng(7)
    scores = rng.random((30, 50))
    targets = rng.integers(0, 50, size=30)
    pos = np.zeros_like(scores, dtype=bool)
    pos[np.arange(30), targets] = True
    run = {f"q{i}": {f"d{j}": float(scores[i, j]) for j in range(50)} for i in range(30)}
    qrels = {f"q{i}": {f"d{targets[i]}": 1} for i in range(30)}
    dense = recall_from_ranks(ranks_from_scores(scores, pos), (1, 5, 10))
    sparse = evaluate(run, qrels, ["recall@1", "recall@5", "recall@10"])
    for m, v in dense.items():
        assert v == pytest.approx(sparse[m])


def test_dense_metrics_match_dict_metrics_with_several_positives() -> None:
    from xmodal.eval.metrics import dense_metrics

    rng = np.random.default_rng(11)
    scores = rng.random((25, 40))
    pos = rng.random((25, 40)) < 0.08
    pos[np.arange(25), rng.integers(0, 40, 25)] = True
    run = {f"q{i}": {f"d{j:02d}": float(scores[i, j]) for j in range(40)} for i in range(25)}
    qrels = {f"q{i}": {f"d{j:02d}": 1 for j in np.flatnonzero(pos[i])} for i in range(25)}
    dense = dense_metrics(scores, pos, (1, 5, 10))
    sparse = evaluate(run, qrels, ["recall@1", "recall@5", "recall@10", "mrr@10", "map"])
    for m, v in sparse.items():
        assert dense[m] == pytest.approx(v, abs=1e-9), m
    hits = recall_from_ranks(ranks_from_scores(scores, pos), (1, 5, 10))  # best positive within K
    for k in (1, 5, 10):
        assert dense[f"hit@{k}"] == pytest.approx(hits[f"recall@{k}"])


def test_random_recall_baseline() -> None:
    from xmodal.eval.metrics import random_recall_at_k

    assert random_recall_at_k(100, 10) == 0.1
    assert random_recall_at_k(5, 10) == 1.0
