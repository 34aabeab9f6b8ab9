"""xmodal info / xmodal delete / xmodal duplicates : inspect and edit a collection."""

from __future__ import annotations

import argparse
from typing import Any

from xmodal.cli.common import audit_cli, common_parser, forget_access, print_json


def register(sub: Any) -> None:
    p = sub.add_parser("info", parents=[common_parser()], help="show what a collection holds and how it was built")
    p.set_defaults(func=run_info)
    d = sub.add_parser("delete", parents=[common_parser()], help="delete items by id")
    d.add_argument("ids", nargs="+", metavar="ID")
    d.set_defaults(func=run_delete)
    u = sub.add_parser(
        "duplicates", parents=[common_parser()], help="list groups of near-identical photos (resized, recompressed...)"
    )
    u.add_argument(
        "--threshold", type=float, default=None,
        help="cosine of two pictures' looks at least this (0-1] to be duplicates (default 0.80; lower finds more)",
    )  # fmt: skip
    u.set_defaults(func=run_duplicates)


def run_info(args: argparse.Namespace) -> int:
    from xmodal.collection import Collection

    with Collection.open(args.collection) as coll:
        stats = coll.stats()
    if args.json:
        print_json(stats)
    else:
        for key, value in stats.items():
            print(f"{key:>12}: {_plain(value)}")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    from xmodal.collection import Collection
    from xmodal.errors import NotFoundError

    with Collection.open(args.collection) as coll:
        present = [i for i in dict.fromkeys(args.ids) if coll.catalog.get(i) is not None]
        deleted = coll.delete(args.ids)
        where = coll.path
    forget_access(args.collection, list(args.ids))
    if deleted:
        audit_cli(where, "items.delete", ids=present)
    if args.json:
        print_json({"deleted": deleted})
    else:
        print(f"deleted {deleted} of {len(args.ids)} items")
    if deleted < len(set(args.ids)):
        raise NotFoundError(f"{len(set(args.ids)) - deleted} of the ids were not in the collection")
    return 0


def run_duplicates(args: argparse.Namespace) -> int:
    from xmodal.collection import Collection

    with Collection.open(args.collection) as coll:
        groups = coll.duplicates(args.threshold)
        uris = {i: item.uri for i, item in coll.catalog.items_by_id([i for g in groups for i in g.items]).items()}
    if args.json:
        out = [{"items": [{**entry, "uri": uris.get(entry["id"])} for entry in g.to_dict()["items"]]} for g in groups]
        print_json({"groups": out})
        return 0
    if not groups:
        print("no near-duplicate pictures")
    for n, g in enumerate(groups, 1):
        print(f"group {n} ({len(g.items)} pictures)")
        for item, sim in zip(g.items, g.similarity, strict=True):
            print(f"  {sim:.3f}  {uris.get(item, item)}")
    return 0


def _plain(value: Any) -> str:
    """A stats value as text: {"image": 3, "text": 2} -> "image=3, text=2"; None -> "-"."""
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_plain(v)}" for k, v in value.items()) or "-"
    return str(value)
