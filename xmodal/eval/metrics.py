"""Ranking metrics with ranx-compatible semantics, in plain numpy/python.

Shapes follow ranx: ``run`` maps a query id to ``{doc_id: score}`` and ``qrels`` maps a query id
to ``{doc_id: relevance}``. Relevance is binary here: a document with ``relevance > 0`` is
relevant. Documents are ranked by descending score; equal scores are ordered by doc id so a
ranking is always deterministic (ranx leaves tie order unspecified).

Per-query definitions (``rel`` = set of relevant docs, ``ranked`` = the run's ranking):

* ``recall@k`` = |rel ∩ ranked[:k]| / |rel|
* ``mrr@k`` = 1 / rank of the first relevant doc in ranked[:k], else 0
* ``ndcg@k`` = DCG@k / IDCG@k with gain 1 per relevant doc and discount 1/log2(rank + 1)
* ``map`` = average precision over the whole ranking returned (ranx ``map``):
  sum of precision@rank at each relevant rank, divided by |rel|

Every metric is averaged over the queries in ``qrels``; a query missing from ``run`` scores 0.
Queries without any relevant doc are skipped by :func:`evaluate` (they carry no information).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from xmodal.errors import InvalidArgumentError

Run = Mapping[str, Mapping[str, float]]
Qrels = Mapping[str, Mapping[str, float]]

DEFAULT_METRICS = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "map")


def rank_docs(scores: Mapping[str, float]) -> list[str]:
    """Doc ids by descending score; ties broken by doc id ascending."""
    return [doc for doc, _ in sorted(scores.items(), key=lambda kv: (-float(kv[1]), str(kv[0])))]


def recall_at_k(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    if not relevant:
        return 0.0
    return sum(1 for d in ranked[:k] if d in relevant) / len(relevant)


def precision_at_k(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    if k <= 0:
        return 0.0
    return sum(1 for d in ranked[:k] if d in relevant) / k


def reciprocal_rank(ranked: Sequence[str], relevant: set[str], k: int | None = None) -> float:
    for i, d in enumerate(ranked[:k] if k is not None else ranked, start=1):
        if d in relevant:
            return 1.0 / i
    return 0.0


def ndcg_at_k(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    if not relevant:
        return 0.0
    dcg = sum(1.0 / math.log2(i + 1) for i, d in enumerate(ranked[:k], start=1) if d in relevant)
    idcg = sum(1.0 / math.log2(i + 1) for i in range(1, min(k, len(relevant)) + 1))
    return dcg / idcg


def average_precision(ranked: Sequence[str], relevant: set[str], k: int | None = None) -> float:
    """AP over ``ranked[:k]`` (the whole ranking when ``k`` is None), normalised by |relevant|."""
    if not relevant:
        return 0.0
    hits = 0
    total = 0.0
    for i, d in enumerate(ranked[:k] if k is not None else ranked, start=1):
        if d in relevant:
            hits += 1
            total += hits / i
    return total / len(relevant)


def parse_metric(name: str) -> tuple[str, int | None]:
    """``"recall@10"`` -> ("recall", 10); ``"map"`` -> ("map", None)."""
    base, sep, cut = name.strip().lower().partition("@")
    if base not in {"recall", "precision", "mrr", "ndcg", "map"}:
        raise InvalidArgumentError(f"unknown metric {name!r}; use recall@K, precision@K, mrr@K, ndcg@K, map")
    if not sep:
        if base in {"recall", "precision", "ndcg"}:
            raise InvalidArgumentError(f"metric {name!r} needs a cutoff, e.g. {base}@10")
        return base, None
    try:
        k = int(cut)
    except ValueError:
        raise InvalidArgumentError(f"metric {name!r}: cutoff must be a positive integer") from None
    if k <= 0:
        raise InvalidArgumentError(f"metric {name!r}: cutoff must be a positive integer")
    return base, k


def query_metric(name: str, ranked: Sequence[str], relevant: set[str]) -> float:
    base, k = parse_metric(name)
    if base == "recall":
        return recall_at_k(ranked, relevant, k or 0)
    if base == "precision":
        return precision_at_k(ranked, relevant, k or 0)
    if base == "mrr":
        return reciprocal_rank(ranked, relevant, k)
    if base == "ndcg":
        return ndcg_at_k(ranked, relevant, k or 0)
    return average_precision(ranked, relevant, k)


def evaluate_per_query(run: Run, qrels: Qrels, metrics: Sequence[str] = DEFAULT_METRICS) -> dict[str, dict[str, float]]:
    """``{qid: {metric: value}}`` for every query of ``qrels`` that has a relevant doc."""
    for m in metrics:
        parse_metric(m)
    out: dict[str, dict[str, float]] = {}
    for qid, judged in qrels.items():
        relevant = {str(d) for d, r in judged.items() if float(r) > 0}
        if not relevant:
            continue
        ranked = rank_docs(run.get(qid, {}))
        out[qid] = {m: query_metric(m, ranked, relevant) for m in metrics}
    return out


def evaluate(run: Run, qrels: Qrels, metrics: Sequence[str] = DEFAULT_METRICS) -> dict[str, float]:
    """Metrics averaged over the queries of ``qrels`` (ranx ``evaluate`` semantics)."""
    per_query = evaluate_per_query(run, qrels, metrics)
    if not per_query:
        raise InvalidArgumentError("no query has a relevant document; nothing to evaluate")
    n = len(per_query)
    return {m: sum(q[m] for q in per_query.values()) / n for m in metrics}


def dense_ranks(scores):  # type: ignore[no-untyped-def]
    """1-based rank of every column in every row of a (n_queries, n_docs) score matrix.

    Descending score; equal scores ordered by column index (as :func:`rank_docs` orders by id).
    """
    import numpy as np

    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, axis=1, kind="stable")
    ranks = np.empty_like(order)
    rows = np.arange(scores.shape[0])[:, None]
    ranks[rows, order] = np.arange(1, scores.shape[1] + 1)[None, :]
    return ranks


def dense_metrics(scores, positives, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Recall@K (ranx definition), hit@K, MRR@10 and mAP from a dense score matrix and a boolean
    relevance matrix of the same shape; averaged over rows that have a positive."""
    import numpy as np

    positives = np.asarray(positives, dtype=bool)
    keep = positives.any(axis=1)
    ranks = dense_ranks(np.asarray(scores)[keep])
    pos = positives[keep]
    n_pos = pos.sum(axis=1)
    out = {f"recall@{k}": float((((ranks <= k) & pos).sum(axis=1) / n_pos).mean()) for k in ks}
    first = np.where(pos, ranks, np.iinfo(np.int64).max).min(axis=1)
    out["mrr@10"] = float(np.where(first <= 10, 1.0 / first, 0.0).mean())
    out.update({f"hit@{k}": float((first <= k).mean()) for k in ks})  # any relevant in the top K
    # AP: at the i-th positive (in rank order) with rank r, precision is i / r
    pr = np.sort(np.where(pos, ranks, np.iinfo(np.int64).max), axis=1)
    idx = np.arange(1, pr.shape[1] + 1)[None, :]
    valid = idx <= n_pos[:, None]
    out["map"] = float((np.where(valid, idx / np.where(valid, pr, 1), 0.0).sum(axis=1) / n_pos).mean())
    return out


def random_recall_at_k(n_docs: int, k: int) -> float:
    """Expected Recall@K of a uniformly random ranking of ``n_docs`` documents."""
    return min(k, n_docs) / n_docs if n_docs else 0.0


def ranks_from_scores(scores, positives):  # type: ignore[no-untyped-def]
    """Rank (1-based) of the best positive per query row, from a dense score matrix.

    ``scores`` is (n_queries, n_docs); ``positives`` is a boolean matrix of the same shape.
    Equal scores count against the positive (pessimistic), so ties never inflate results.
    """
    import numpy as np

    scores = np.asarray(scores, dtype=np.float64)
    positives = np.asarray(positives, dtype=bool)
    best = np.where(positives, scores, -np.inf).max(axis=1)
    return (scores[:, :] > best[:, None]).sum(axis=1) + ((scores == best[:, None]) & ~positives).sum(axis=1) + 1


def recall_from_ranks(ranks, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Recall@K for single-target queries (1 if the best positive is within K)."""
    import numpy as np

    ranks = np.asarray(ranks)
    return {f"recall@{k}": float((ranks <= k).mean()) if len(ranks) else 0.0 for k in ks}
