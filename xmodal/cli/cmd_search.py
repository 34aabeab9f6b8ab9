"""xmodal search [TEXT] [--image F | --audio F] : search a collection."""

from __future__ import annotations

import argparse
from typing import Any

from xmodal.cli.common import common_parser, fmt_time, parse_filters, print_json, printable


def register(sub: Any) -> None:
    p = sub.add_parser("search", parents=[common_parser()], help="search by text, image or audio")
    p.add_argument("text", nargs="?", help="text query")
    p.add_argument("--image", metavar="FILE", help="use an image file as the query")
    p.add_argument("--audio", metavar="FILE", help="use an audio file as the query")
    p.add_argument("-k", type=int, default=10, help="number of results (default 10)")
    p.add_argument("--modality", choices=["text", "image", "audio"], help="only return items of this modality")
    p.add_argument(
        "--where",
        action="append",
        metavar="FILTER",
        help="metadata filter, repeatable: key=value (any of the values given), key>=value, key<value, ... "
        "(a range: numbers compare as numbers, other values as text, e.g. dates 2024-01-31)",
    )
    p.add_argument(
        "--mode",
        choices=["dense", "keyword", "hybrid"],
        default="dense",
        help="dense: by meaning, across modalities (default); keyword: by the words of the query in "
        'the text, OCR text and transcripts (BM25; "quoted phrases"); hybrid: both, fused',
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from xmodal.collection import Collection
    from xmodal.errors import InvalidQueryError
    from xmodal.search import Query

    given = [x for x in (args.text, args.image, args.audio) if x is not None]
    if len(given) != 1:
        raise InvalidQueryError("give exactly one query: TEXT, --image FILE or --audio FILE")
    if args.image is not None:
        query = Query.image(args.image)
    elif args.audio is not None:
        query = Query.audio(args.audio)
    else:
        query = Query.text(args.text)
    where = parse_filters(args.where)
    with Collection.open(args.collection) as coll:
        hits = coll.search(query, k=args.k, modality=args.modality, where=where, mode=args.mode)
    if args.json:
        print_json({"query": query.describe(), "mode": args.mode, "hits": [h.to_dict() for h in hits]})
        return 0
    if not hits:
        print("no results")
    for rank, hit in enumerate(hits, 1):
        span = f" [{fmt_time(hit.start)}-{fmt_time(hit.end)}]" if hit.start is not None else ""
        span += f" [page {hit.page}]" if hit.page is not None else ""
        snippet = (hit.snippet or "").replace("\n", " ")
        if len(snippet) > 70:
            snippet = snippet[:67] + "..."
        score = f"{hit.score:6.4f}" if args.mode == "hybrid" else f"{hit.score:6.3f}"  # fusion: ~1/60
        print(f"{rank:>3}. {score}  {hit.modality.value:<5}  {printable(hit.uri)}{span}")
        if snippet:
            print(f"              {snippet!r}")
    return 0
