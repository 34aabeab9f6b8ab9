"""Options and output helpers shared by every sub-command."""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

from xmodal.errors import InvalidArgumentError

DEFAULT_COLLECTION = ".xmodal"


def common_parser() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "-c", "--collection", default=DEFAULT_COLLECTION, metavar="DIR", help="collection directory (default ./.xmodal)"
    )
    parent.add_argument("--json", action="store_true", help="print machine-readable JSON")
    return parent


def parse_pairs(pairs: list[str] | None, what: str) -> dict[str, Any]:
    """``["k=v", "k=w"]`` -> {"k": ["v", "w"]} for filters; single values stay scalars."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidArgumentError(f"{what} must look like key=value, got {pair!r}")
        if key in out:
            prev = out[key] if isinstance(out[key], list) else [out[key]]
            out[key] = [*prev, value]
        else:
            out[key] = value
    return out


_FILTER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*(>=|<=|>|<|=)(.*)$", re.DOTALL)


def parse_filters(pairs: list[str] | None) -> dict[str, Any]:
    """``--where`` arguments: ``key=value`` (repeated: any of the values), ``key>value``,
    ``key>=value``, ``key<value``, ``key<=value`` (bounds of one range, all of which hold)."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        found = _FILTER.match(pair)
        if not found:
            raise InvalidArgumentError(f"--where must look like key=value or key>=value, got {pair!r}")
        key, op, value = found.group(1), found.group(2), found.group(3).strip()
        if op == "=":
            if isinstance(out.get(key), dict):
                raise InvalidArgumentError(f"--where {key}: give either values (=) or a range (<, >), not both")
            prev = out.get(key)
            out[key] = value if prev is None else [*(prev if isinstance(prev, list) else [prev]), value]
            continue
        if key in out and not isinstance(out[key], dict):
            raise InvalidArgumentError(f"--where {key}: give either values (=) or a range (<, >), not both")
        if not value:
            raise InvalidArgumentError(f"--where {pair!r} has no value after {op}")
        out.setdefault(key, {})[op] = value
    return out


def printable(text: str) -> str:
    """``text`` for a terminal line: control characters (a newline in a file name, an escape
    sequence) shown escaped, so output cannot be forged or garbled by names."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return ""
    m, s = divmod(float(seconds), 60.0)
    return f"{int(m)}:{s:04.1f}"


def cli_actor() -> str:
    """Who ran the command, for the audit log: the operating-system user."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def audit_cli(collection: Any, action: str, **details: Any) -> None:
    """Record a change made from the command line in the collection's audit log, as the server
    records its own (``cli:USER``, so `xmodal audit --item ID` finds CLI changes too). A log
    that cannot be written is a warning: the change itself is made."""
    from pathlib import Path

    from xmodal.access.audit import AuditLog

    try:
        AuditLog(Path(collection)).record(action, cli_actor(), **details)
    except OSError as exc:
        print(f"xmodal: warning: the audit log was not written: {exc.strerror or exc}", file=sys.stderr)


def forget_access(collection: str, item_ids: list[str]) -> None:
    """Deleted items must not leave access lists behind: ids derive from paths, so a new file
    at the same path would inherit them. Only touches an access store that exists."""
    from pathlib import Path

    from xmodal.access.store import ACCESS_DB, AccessStore

    if not item_ids or not (Path(collection) / ACCESS_DB).exists():
        return
    store = AccessStore(Path(collection))
    try:
        store.drop_acl(item_ids)
    finally:
        store.close()
