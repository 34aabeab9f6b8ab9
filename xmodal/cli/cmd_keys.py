"""xmodal keys create|list|revoke|default-access|grant : API keys and access lists for serving."""

from __future__ import annotations

import argparse
import time
from typing import Any

from xmodal.cli.common import cli_actor, print_json


def _collection_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--collection", default=".xmodal", metavar="DIR", help="collection (default ./.xmodal)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")


def register(sub: Any) -> None:
    p = sub.add_parser("keys", help="create, list and revoke API keys; set who may see items")
    ks = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    c = ks.add_parser("create", help="make a key for a principal (the key is shown once)")
    c.add_argument("principal", help="user name the key acts as")
    c.add_argument("-g", "--group", action="append", default=[], help="group membership (repeatable)")
    c.add_argument("--admin", action="store_true", help="may ingest and delete items, and read metrics")
    c.add_argument("--note", default="", help="a note, e.g. where the key is used")
    ls = ks.add_parser("list", help="list keys (never their secrets)")
    r = ks.add_parser("revoke", help="revoke a key by its id")
    r.add_argument("key_id")
    d = ks.add_parser("default-access", help="whether items without an access list are public to every key")
    d.add_argument("policy", choices=["public", "private"])
    g = ks.add_parser("grant", help="set the access list of items (NAME, user:NAME, group:NAME or public)")
    g.add_argument("item_ids", nargs="+", metavar="ITEM_ID")
    g.add_argument("--to", action="append", required=True, metavar="ENTRY", help="who may see them (repeatable)")
    for sp in (c, ls, r, d, g):
        _collection_args(sp)
        sp.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from xmodal.access.audit import AuditLog
    from xmodal.access.principal import parse_access
    from xmodal.access.store import AccessStore
    from xmodal.collection import Collection

    with Collection.open(args.collection) as coll:
        store = AccessStore(coll.path)
        audit = AuditLog(coll.path)
        actor = cli_actor()
        try:
            action = args.keys_command
            if action == "create":
                token, info = store.create_key(args.principal, args.group, args.admin, args.note)
                audit.record("keys.create", actor, subject_key=info.key_id, subject=info.principal, admin=info.admin)
                if args.json:
                    print_json({"key": token, **info.to_dict()})
                else:
                    role = "admin" if info.admin else "user"
                    print(f"created {role} key {info.key_id} for {info.principal}; it is shown only once:")
                    print(token)
            elif action == "list":
                keys = store.keys()
                if args.json:
                    print_json([k.to_dict() for k in keys])
                for k in [] if args.json else keys:
                    state = "revoked " + _date(k.revoked_at) if k.revoked_at else "active"
                    groups = ",".join(k.groups) or "-"
                    admin = " admin" if k.admin else ""
                    print(f"{k.key_id}  {k.principal:<16} groups={groups:<20} {state}{admin}  {_date(k.created_at)}")
            elif action == "revoke":
                info = store.revoke(args.key_id)
                audit.record("keys.revoke", actor, subject_key=info.key_id, subject=info.principal)
                if args.json:
                    print_json({"revoked": True, **info.to_dict()})
                else:
                    print(f"revoked key {info.key_id} of {info.principal}")
            elif action == "default-access":
                store.set_default_access(args.policy == "public")
                audit.record("acl.default", actor, policy=args.policy)
                if args.json:
                    print_json({"default_access": args.policy})
                else:
                    print(f"items without an access list are now {args.policy}")
            elif action == "grant":
                args.item_ids = list(dict.fromkeys(args.item_ids))  # an id given twice, once
                entries = parse_access(args.to) or []
                for item_id in args.item_ids:
                    coll.get(item_id)
                store.set_acl(args.item_ids, entries)
                audit.record("acl.set", actor, ids=args.item_ids, access=entries)
                if args.json:
                    print_json({"ids": list(args.item_ids), "access": entries})
                else:
                    print(f"{len(args.item_ids)} item(s) now visible to: {', '.join(entries)}")
        finally:
            store.close()
    return 0


def _date(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts)) if ts else ""
