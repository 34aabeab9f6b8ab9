"""xmodal audit [--principal P] [--action A] [--item ID] [--since DAYS] ... : read the audit log;
--verify checks its hash chain; --purge-older-than DAYS applies retention."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from xmodal.errors import InvalidArgumentError


def register(sub: Any) -> None:
    p = sub.add_parser("audit", help="read and filter the audit log (who searched, added, deleted what)")
    p.add_argument("-c", "--collection", default=".xmodal", metavar="DIR", help="collection (default ./.xmodal)")
    p.add_argument(
        "--json", action="store_true",
        help="entries as JSON lines (one object each); --verify and --purge-older-than as one object",
    )  # fmt: skip
    p.add_argument("--principal", help="only this principal")
    p.add_argument("--action", help="only actions starting with this (search, items.add, items.delete, keys...)")
    p.add_argument("--item", metavar="ID", help="only entries that involve this item id")
    p.add_argument("--since", type=float, metavar="DAYS", help="only the last DAYS days")
    p.add_argument("--grep", metavar="TEXT", help="only entries containing TEXT")
    p.add_argument("-n", "--limit", type=int, metavar="N", help="only the last N matching entries")
    p.add_argument("--verify", action="store_true", help="check that no entry was changed or removed")
    p.add_argument(
        "--purge-older-than", type=float, metavar="DAYS",
        help="retention: delete items and audit entries older than DAYS days",
    )  # fmt: skip
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from xmodal.access.audit import AuditFilter, AuditLog
    from xmodal.collection import Collection

    if args.limit is not None and args.limit < 1:
        raise InvalidArgumentError("--limit must be at least 1")
    if args.since is not None and not args.since >= 0:
        raise InvalidArgumentError(f"--since must be a number of days of 0 or more, got {args.since:g}")
    with Collection.open(args.collection) as coll:
        log = AuditLog(coll.path)
        if args.purge_older_than is not None:
            return _purge(coll, log, args)
        if args.verify:
            problems = log.verify()
            if args.json:
                print(json.dumps({"intact": not problems, "problems": problems}, ensure_ascii=False))
            else:
                for problem in problems:
                    print(f"audit: {problem}")
                print("audit log intact" if not problems else f"{len(problems)} problem(s) found")
            return 0 if not problems else 1
        since = time.time() - args.since * 86400 if args.since is not None else None
        flt = AuditFilter(args.principal, args.action, args.item, since, None, args.grep, args.limit)
        for entry in log.entries(flt):
            if args.json:
                sys.stdout.write(json.dumps(entry, ensure_ascii=False) + "\n")
            else:
                print(_line(entry))
    return 0


def _purge(coll: Any, log: Any, args: argparse.Namespace) -> int:
    from xmodal.access.retention import apply_retention
    from xmodal.access.store import AccessStore

    store = AccessStore(coll.path)
    try:
        report = apply_retention(coll, store, log, args.purge_older_than, coll.path / "uploads")
    finally:
        store.close()
    if args.json:
        print(json.dumps({"older_than_days": args.purge_older_than, **report.to_dict()}))
        return 0
    print(f"retention: {report.items} item(s) and {report.audit_entries} audit entries older than "
          f"{args.purge_older_than:g} days deleted")  # fmt: skip
    return 0


def _line(entry: dict[str, Any]) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(float(entry.get("ts", 0))))
    rest = {k: v for k, v in entry.items() if k not in ("seq", "ts", "principal", "action", "prev", "key_id")}
    if "ids" in rest:
        ids = rest["ids"] or []
        more = f" +{len(ids) - 5} more" if len(ids) > 5 else ""
        rest["ids"] = (",".join(ids[:5]) + more) if ids else "-"
    detail = " ".join(f"{k}={json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v}"
                      for k, v in rest.items() if v is not None)  # fmt: skip
    return f"{entry.get('seq', ''):>6} {when} {entry.get('principal', ''):<12} {entry.get('action', ''):<13} {detail}"
