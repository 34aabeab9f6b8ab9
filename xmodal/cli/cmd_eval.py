"""``xmodal eval QUERIES.jsonl``: retrieval quality of a collection (Recall@K, MRR, nDCG, mAP)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from xmodal.cli.common import common_parser, print_json


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "eval",
        parents=[common_parser()],
        help="measure retrieval quality against a queries file",
        description='Each line: {"query": "text" | {"image": path} | {"audio": path}, "relevant": [names]}. '
        "A relevant name matches a result's file name or URI.",
    )
    p.add_argument("queries", help="JSONL file of queries with their relevant items")
    p.add_argument("--modality", choices=["text", "image", "audio"], help="only rank items of this modality")
    p.add_argument(
        "--mode",
        choices=["dense", "keyword", "hybrid"],
        default="dense",
        help="how queries are matched, as in xmodal search (default dense)",
    )
    p.add_argument("-k", type=int, default=10, help="search depth, at least 10: metrics are cut at 1/5/10 (default 10)")
    p.add_argument("--report", metavar="OUT_DIR", help="write report.md, recall_at_k.svg and metrics.json")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Errors are XmodalError, printed as one line by xmodal.cli.main."""
    from pathlib import Path

    from xmodal.collection import Collection
    from xmodal.eval.harness import evaluate_queries, load_queries
    from xmodal.eval.report import write_report

    if args.report and Path(args.report).exists() and not Path(args.report).is_dir():
        from xmodal.errors import InvalidArgumentError

        raise InvalidArgumentError(f"--report {args.report} is a file; give a folder for the report")
    queries = load_queries(Path(args.queries))
    collection = Collection.open(args.collection)
    result = evaluate_queries(
        queries,
        collection_search(collection, args.modality, args.mode),
        k=args.k,
        known_uris=collection_uris(collection),
    )
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if args.report:
        path = write_report(result, Path(args.report), title=f"xmodal eval: {Path(args.queries).name} ({args.mode})")
        print(f"report: {path}", file=sys.stderr)
    if args.json:
        print_json({**result.to_dict(), "mode": args.mode})
    else:
        print(f"{result.n_queries} queries")
        for name, value in result.metrics.items():
            print(f"{name:>10}  {value:.4f}")
    return 0


def collection_search(collection: Any, modality: str | None, mode: str = "dense"):  # type: ignore[no-untyped-def]
    """Adapt ``Collection.search`` to the harness: a query -> [(uri, score)] best first."""
    from xmodal.keywords import query_terms
    from xmodal.search import Query
    from xmodal.types import Modality

    mod = Modality(modality) if modality else None

    def search(q, k):  # type: ignore[no-untyped-def]
        if mode == "keyword" and q.kind == "text" and not query_terms(q.value):
            return []  # a query of no words (an emoji, punctuation) finds nothing by keyword
        query = {"text": Query.text, "image": Query.image, "audio": Query.audio}[q.kind](q.value)
        return [(hit.uri, hit.score) for hit in collection.search(query, k=k, modality=mod, mode=mode)]

    return search


def collection_uris(collection: Any) -> list[str] | None:
    """Every item URI, when the collection can list them (used to flag unknown relevant names)."""
    for attr in ("uris", "items", "iter_items"):
        fn = getattr(collection, attr, None)
        if callable(fn):
            return [x if isinstance(x, str) else x.uri for x in fn()]
    return None
