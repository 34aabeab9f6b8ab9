"""``access.sqlite`` in the collection: API keys (only their SHA-256 is stored), item access
lists, and the collection's default access policy."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xmodal.access.principal import PUBLIC, Principal, check_name
from xmodal.errors import AuthError, CollectionError, NotFoundError

ACCESS_DB = "access.sqlite"
KEY_PREFIX = "xmk"
_KEY = re.compile(r"^xmk_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    secret_sha256 TEXT NOT NULL,
    principal TEXT NOT NULL,
    groups TEXT NOT NULL DEFAULT '[]',
    admin INTEGER NOT NULL DEFAULT 0,
    note TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    revoked_at REAL
);
CREATE TABLE IF NOT EXISTS item_acl (
    item_id TEXT NOT NULL,
    entry TEXT NOT NULL,
    PRIMARY KEY (item_id, entry)
);
"""


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    principal: str
    groups: tuple[str, ...]
    admin: bool
    note: str
    created_at: float
    revoked_at: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "principal": self.principal,
            "groups": list(self.groups),
            "admin": self.admin,
            "note": self.note,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class AccessStore:
    def __init__(self, collection_dir: Path) -> None:
        self.path = Path(collection_dir) / ACCESS_DB
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            folder = Path(collection_dir)
            if isinstance(exc, sqlite3.OperationalError) and folder.is_dir() and not os.access(folder, os.W_OK):
                raise CollectionError(
                    f"{folder} is read-only: API keys, access lists and serving write {ACCESS_DB} there "
                    "(searching it works without them)"
                ) from None
            raise CollectionError(f"{self.path}: not a valid access database ({exc})") from exc

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    # ---- settings ---------------------------------------------------------------------------
    def _meta(self, key: str, default: str) -> str:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else default

    def _set_meta(self, db: sqlite3.Connection, key: str, value: str) -> None:
        db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    @property
    def default_public(self) -> bool:
        """Whether items without an access list are visible to every key holder."""
        return self._meta("default_access", "private") == "public"

    def set_default_access(self, public: bool) -> None:
        with self._tx() as db:
            self._set_meta(db, "default_access", "public" if public else "private")
            self._bump(db)

    @property
    def acl_version(self) -> int:
        return int(self._meta("acl_version", "0"))

    def _bump(self, db: sqlite3.Connection) -> None:
        row = db.execute("SELECT value FROM meta WHERE key='acl_version'").fetchone()
        self._set_meta(db, "acl_version", str(int(row[0]) + 1 if row else 1))

    def secret(self, name: str) -> bytes:
        """A random per-collection secret (for signing preview URLs), made on first use."""
        with self._tx() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (f"secret.{name}",)).fetchone()
            if row:
                return bytes.fromhex(row[0])
            value = secrets.token_hex(32)
            self._set_meta(db, f"secret.{name}", value)
            return bytes.fromhex(value)

    # ---- keys -------------------------------------------------------------------------------
    def create_key(
        self, principal: str, groups: Iterable[str] = (), admin: bool = False, note: str = ""
    ) -> tuple[str, KeyInfo]:
        """Make a key; the secret is returned once and only its hash is stored."""
        name = check_name(principal)
        group_list = sorted({check_name(g, "group") for g in groups})
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        token = f"{KEY_PREFIX}_{key_id}_{secret}"
        created = time.time()
        with self._tx() as db:
            db.execute(
                "INSERT INTO api_keys(key_id, secret_sha256, principal, groups, admin, note, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key_id, _sha256(token), name, json.dumps(group_list), int(admin), note[:200], created),
            )
        return token, KeyInfo(key_id, name, tuple(group_list), admin, note[:200], created, None)

    def revoke(self, key_id: str) -> KeyInfo:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL", (time.time(), key_id)
            )
            if not cur.rowcount:
                exists = db.execute("SELECT 1 FROM api_keys WHERE key_id = ?", (key_id,)).fetchone()
                raise NotFoundError(f"key {key_id!r} is already revoked" if exists else f"no key with id {key_id!r}")
        return self.key_info(key_id)

    def key_info(self, key_id: str) -> KeyInfo:
        rows = self._query(f"SELECT {_KEY_COLS} FROM api_keys WHERE key_id = ?", (key_id,))
        if not rows:
            raise NotFoundError(f"no key with id {key_id!r}")
        return _key_info(rows[0])

    def keys(self) -> list[KeyInfo]:
        return [_key_info(r) for r in self._query(f"SELECT {_KEY_COLS} FROM api_keys ORDER BY created_at")]

    def authenticate(self, token: str | None) -> Principal:
        """The principal of a valid, unrevoked key; :class:`AuthError` otherwise (one message for
        unknown and wrong secrets, so a caller cannot probe for key ids)."""
        if not token:
            raise AuthError("an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
        match = _KEY.match(token.strip())
        if not match:
            raise AuthError("malformed API key")
        rows = self._query(
            "SELECT secret_sha256, principal, groups, admin, revoked_at FROM api_keys WHERE key_id = ?",
            (match.group(1),),
        )
        digest = _sha256(token.strip())
        if not rows or not hmac.compare_digest(rows[0][0], digest):
            raise AuthError("invalid API key")
        _, principal, groups, admin, revoked_at = rows[0]
        if revoked_at is not None:
            raise AuthError("this API key has been revoked")
        return Principal(principal, tuple(json.loads(groups)), bool(admin), match.group(1))

    def key_active(self, key_id: str) -> bool:
        rows = self._query("SELECT revoked_at FROM api_keys WHERE key_id = ?", (key_id,))
        return bool(rows) and rows[0][0] is None

    # ---- item access lists ------------------------------------------------------------------
    def set_acl(self, item_ids: Iterable[str], entries: Iterable[str]) -> None:
        """Replace the access lists of items (an empty list makes them admin-only)."""
        ids, wanted = list(item_ids), sorted(set(entries))
        with self._tx() as db:
            for item_id in ids:
                db.execute("DELETE FROM item_acl WHERE item_id = ?", (item_id,))
                # An explicit empty list still marks the item as restricted: a row nobody matches.
                for entry in wanted or ["user:"]:
                    db.execute("INSERT INTO item_acl(item_id, entry) VALUES (?, ?)", (item_id, entry))
            self._bump(db)

    def drop_acl(self, item_ids: Iterable[str]) -> None:
        ids = list(item_ids)
        with self._tx() as db:
            db.executemany("DELETE FROM item_acl WHERE item_id = ?", [(i,) for i in ids])
            self._bump(db)

    def acl_snapshot(self, item_ids: Iterable[str]) -> dict[str, list[str] | None]:
        """The stored access lists of items as they are (None: none), for :meth:`restore_acls`."""
        out: dict[str, list[str] | None] = {}
        for item_id in item_ids:
            rows = self._query("SELECT entry FROM item_acl WHERE item_id = ? ORDER BY entry", (item_id,))
            out[item_id] = [r[0] for r in rows] if rows else None
        return out

    def restore_acls(self, snapshot: dict[str, list[str] | None]) -> None:
        """Put back access lists taken by :meth:`acl_snapshot` (a change that did not happen)."""
        if not snapshot:
            return
        with self._tx() as db:
            for item_id, entries in snapshot.items():
                db.execute("DELETE FROM item_acl WHERE item_id = ?", (item_id,))
                for entry in entries or []:
                    db.execute("INSERT INTO item_acl(item_id, entry) VALUES (?, ?)", (item_id, entry))
            self._bump(db)

    def acl(self, item_id: str) -> list[str] | None:
        """The access list of an item, or None when it has none (the default policy applies)."""
        rows = self._query("SELECT entry FROM item_acl WHERE item_id = ? ORDER BY entry", (item_id,))
        return [r[0] for r in rows if r[0] != "user:"] if rows else None

    def all_acls(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for item_id, entry in self._query("SELECT item_id, entry FROM item_acl"):
            out.setdefault(item_id, set()).add(entry)
        return out

    def may_see(self, principal: Principal, entries: set[str] | list[str] | None) -> bool:
        if principal.admin:
            return True
        if entries is None:
            return self.default_public
        return bool(principal.tokens & set(entries))


_KEY_COLS = "key_id, principal, groups, admin, note, created_at, revoked_at"


def _key_info(row: Any) -> KeyInfo:
    return KeyInfo(row[0], row[1], tuple(json.loads(row[2])), bool(row[3]), row[4], float(row[5]), row[6])


__all__ = ["ACCESS_DB", "PUBLIC", "AccessStore", "KeyInfo"]
