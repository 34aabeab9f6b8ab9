"""xmodal info / xmodal delete : inspect and edit a collection."""

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


def _plain(value: Any) -> str:
    """A stats value as text: {"image": 3, "text": 2} -> "image=3, text=2"; None -> "-"."""
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_plain(v)}" for k, v in value.items()) or "-"
    return str(value)
