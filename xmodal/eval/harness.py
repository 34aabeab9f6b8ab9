"""The evaluation harness behind ``xmodal eval``: read a queries file, search, score, report.

Each line of the queries file is ``{"query": "text" | {"image": path} | {"audio": path},
"relevant": [names...]}`` (optionally ``"id"``). A relevant name matches a result whose file
name or URI equals it. The core, :func:`evaluate_queries`, takes any ``search`` function, so it
runs against a collection or an in-memory fake alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from xmodal.errors import InvalidArgumentError, InvalidQueryError, MediaError
from xmodal.eval.metrics import DEFAULT_METRICS, evaluate, evaluate_per_query
from xmodal.jsonl import iter_jsonl

QUERY_KINDS = ("text", "image", "audio")


@dataclass(frozen=True)
class EvalQuery:
    qid: str
    kind: str  # "text" | "image" | "audio"
    value: str  # the text, or a resolved file path
    relevant: tuple[str, ...]
    line: int
    where: str = ""  # file and line, for messages


@dataclass
class EvalResult:
    metrics: dict[str, float]
    per_query: dict[str, dict[str, float]]
    n_queries: int
    k: int
    recall_curve: dict[int, float]
    unknown_relevant: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)  # query id -> what was asked, for reports

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": self.metrics,
            "n_queries": self.n_queries,
            "k": self.k,
            "recall_curve": {str(k): v for k, v in self.recall_curve.items()},
            "unknown_relevant": self.unknown_relevant,
            "warnings": self.warnings,
            "per_query": self.per_query,
        }


# a search function returns (uri, score) pairs, best first
SearchFn = Callable[[EvalQuery, int], Sequence[tuple[str, float]]]


def load_queries(path: Path) -> list[EvalQuery]:
    """Parse a queries JSONL file; every mistake names its line."""
    path = Path(path)
    queries: list[EvalQuery] = []
    for lineno, where, rec in iter_jsonl(path):
        queries.append(_parse_query(rec, where, lineno, path.parent))
    if not queries:
        raise InvalidArgumentError(f"{path}: no queries (expected one JSON object per line)")
    first: dict[str, EvalQuery] = {}
    for q in queries:
        if q.qid in first:
            raise InvalidArgumentError(f"{q.where}: query id {q.qid!r} is also the id of line {first[q.qid].line}")
        first[q.qid] = q
    return queries


def _parse_query(rec: Any, where: str, lineno: int, base: Path) -> EvalQuery:
    if not isinstance(rec, dict) or "query" not in rec or "relevant" not in rec:
        raise InvalidArgumentError(f'{where}: expected {{"query": ..., "relevant": [names...]}}')
    rel = rec["relevant"]
    if isinstance(rel, str):
        rel = [rel]
    if not isinstance(rel, list) or not rel or not all(isinstance(r, str) and r.strip() for r in rel):
        raise InvalidArgumentError(f"{where}: 'relevant' must be a non-empty list of names")
    q = rec["query"]
    if isinstance(q, str):
        if not q.strip():
            raise InvalidArgumentError(f"{where}: empty text query")
        kind, value = "text", q
    elif isinstance(q, dict) and len(q) == 1 and next(iter(q)) in ("image", "audio"):
        kind, value = next(iter(q.items()))
        if not isinstance(value, str) or not value:
            raise InvalidArgumentError(f"{where}: {kind} query needs a file path")
        p = Path(value).expanduser()
        value = str(p if p.is_absolute() else base / p)
        if not Path(value).is_file():
            raise InvalidArgumentError(f"{where}: {kind} query file {value} not found")
    else:
        raise InvalidArgumentError(f'{where}: "query" must be a string, {{"image": path}} or {{"audio": path}}')
    qid = rec.get("id")
    if qid is not None and (not isinstance(qid, str | int) or isinstance(qid, bool) or not str(qid).strip()):
        raise InvalidArgumentError(f"{where}: 'id' must be a non-empty string or a number")
    names = list(dict.fromkeys(r.strip() for r in rel))
    # a file named twice (by its URI and by its bare name) is one relevant item, not two
    named_by_uri = {PurePosixPath(r.replace("\\", "/")).name for r in names if "/" in r or "\\" in r}
    names = [r for r in names if "/" in r or "\\" in r or r not in named_by_uri]
    qid = f"line{lineno}" if qid is None else str(qid).strip()
    return EvalQuery(qid, kind, value, tuple(names), lineno, where)


def name_keys(uri: str) -> tuple[str, str]:
    """The names a result answers to: its URI and its file name."""
    return uri, PurePosixPath(uri.replace("\\", "/")).name


def evaluate_queries(
    queries: Sequence[EvalQuery],
    search: SearchFn,
    k: int = 10,
    known_uris: Iterable[str] | None = None,
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> EvalResult:
    """Search every query (depth ``k``) and score it against its relevant names.

    ``known_uris``: every item URI in the collection, to tell unknown relevant names (typos)
    from relevant items that were simply not found. Unknown names are counted and reported;
    if no relevant name matches anything at all, that is an error.
    """
    deepest = max((int(m.split("@", 1)[1]) for m in metrics if "@" in m), default=1)
    if k < deepest:  # a shallower run would score every hit past k as missing
        raise InvalidArgumentError(f"-k must be at least {deepest}: the metrics are cut at up to {deepest}")
    if not queries:
        raise InvalidArgumentError("no queries to evaluate")
    warnings: list[str] = []
    unknown: list[str] = []
    if known_uris is not None:
        known = {key for uri in known_uris for key in name_keys(uri)}
        all_names = {r for q in queries for r in q.relevant}
        unknown = sorted(all_names - known)
        if unknown and len(unknown) == len(all_names):
            raise InvalidArgumentError(
                f"none of the {len(all_names)} relevant names matches a file name or URI in the "
                f"collection (e.g. {unknown[0]!r}); check the names or the collection"
            )
        if unknown:
            warnings.append(
                f"{len(unknown)} relevant name(s) match no item in the collection, e.g. {unknown[0]!r}; "
                "they count as not found"
            )
    run: dict[str, dict[str, float]] = {}
    qrels: dict[str, dict[str, int]] = {}
    for q in queries:
        qrels[q.qid] = {name: 1 for name in q.relevant}
        try:
            hits = search(q, k)
        except (InvalidQueryError, MediaError) as exc:  # an unusable query picture or clip: say which line
            raise InvalidQueryError(f"{q.where or q.qid}: {exc}") from None
        run[q.qid] = _score_hits(hits, set(q.relevant), k)
    cutoffs = sorted({*range(1, k + 1)})
    curve_metrics = [f"recall@{c}" for c in cutoffs]
    curve = evaluate(run, qrels, curve_metrics)
    return EvalResult(
        metrics=evaluate(run, qrels, metrics),
        per_query=evaluate_per_query(run, qrels, metrics),
        n_queries=len(queries),
        k=k,
        recall_curve={c: curve[f"recall@{c}"] for c in cutoffs},
        unknown_relevant=unknown,
        warnings=warnings,
        labels={q.qid: _label(q) for q in queries},
    )


def _label(q: EvalQuery) -> str:
    """What the report shows for a query: what was asked, after its id when the file gave one."""
    asked = q.value if q.kind == "text" else f"{q.kind}: {PurePosixPath(q.value).name}"
    return asked if q.qid == f"line{q.line}" else f"{q.qid}: {asked}"


def _score_hits(hits: Sequence[tuple[str, float]], relevant: set[str], k: int) -> dict[str, float]:
    """Ranked hits -> {doc: score}; a hit matching a relevant name is filed under that name.

    Scores are replaced by rank-derived values so that the returned order is kept exactly
    (several hits of one file, e.g. audio segments, count once at their best rank).
    """
    out: dict[str, float] = {}
    for rank, (uri, _score) in enumerate(hits[:k]):
        keys = name_keys(uri)
        doc = next((key for key in keys if key in relevant), uri)
        out.setdefault(doc, float(k - rank))
    return out
