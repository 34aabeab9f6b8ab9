"""The SQLite catalog: items, their vectors (the source of truth the ANN index is built from),
and a generation counter that tells whether a saved index is current."""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xmodal import keywords
from xmodal.errors import CollectionError, InvalidArgumentError
from xmodal.types import Item, Modality, Segment, VectorKind

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 30.0  # how long a statement waits for another process's write

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY,
    uri TEXT NOT NULL UNIQUE,
    modality TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL DEFAULT 0,
    metadata TEXT NOT NULL DEFAULT '{}',
    text TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS items_hash ON items(content_hash);
CREATE INDEX IF NOT EXISTS items_modality ON items(modality);
CREATE TABLE IF NOT EXISTS vectors (
    vid INTEGER PRIMARY KEY AUTOINCREMENT,
    item_id TEXT NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    start REAL,
    end REAL,
    text TEXT NOT NULL DEFAULT '',
    embedding BLOB NOT NULL,
    page INTEGER
);
CREATE INDEX IF NOT EXISTS vectors_item ON vectors(item_id);
CREATE TABLE IF NOT EXISTS looks (
    item_id TEXT PRIMARY KEY REFERENCES items(id) ON DELETE CASCADE,
    embedding BLOB NOT NULL
);
"""

_META_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class VectorRecord:
    kind: VectorKind
    embedding: np.ndarray
    segment: Segment


@dataclass(frozen=True)
class VectorRow:
    vid: int
    item_id: str
    kind: VectorKind
    start: float | None
    end: float | None
    text: str
    page: int | None = None


@dataclass(frozen=True)
class KeywordRow:
    vid: int
    item_id: str
    score: float  # BM25, higher is better


@dataclass(frozen=True)
class FileState:
    item_id: str
    content_hash: str
    size: int
    mtime_ns: int


def check_meta_key(key: str) -> str:
    if not isinstance(key, str) or not _META_KEY.match(key):
        raise InvalidArgumentError(f"invalid metadata key {key!r}: use letters, digits, '_', '.', '-' (max 64 chars)")
    return key


META_SCALARS = (str, int, float, bool)
# field -> the texts it may equal, or the bounds of a range ({">=": 10.0}; see normalise_where)
Filters = dict[str, list[str] | dict[str, float | str]]


def utf8_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (bytes from a non-UTF-8 terminal)
        return False
    return True


def check_metadata(metadata: Any) -> dict[str, Any]:
    """User metadata for added files (Python, CLI and API alike): at most 64 fields of
    string (≤ 1000 characters), number or boolean, so every value can be filtered on."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise InvalidArgumentError("metadata must be an object (dict) of field -> value")
    if len(metadata) > 64:
        raise InvalidArgumentError("metadata may have at most 64 fields")
    for key, value in metadata.items():
        check_meta_key(key)
        ok = isinstance(value, META_SCALARS) and not (isinstance(value, float) and not math.isfinite(value))
        if not ok or (isinstance(value, str) and (len(value) > 1000 or not utf8_text(value))):
            raise InvalidArgumentError(f"metadata {key!r} must be a string (max 1000 chars), number or boolean")
    return dict(metadata)


# A metadata value as text. Integers compare by their JSON text (the "->" operator, SQLite
# >= 3.38): json_extract turns ones beyond 64 bits into floats, so 18446744073709551617 would
# never match; older SQLite falls back to json_extract for them too.
# Booleans compare as 'true'/'false' (json_extract would give 1/0, equal to the number 1).
_META_TEXT = (
    "(CASE json_type(i.metadata, ?) WHEN 'integer' THEN i.metadata -> ? WHEN 'true' THEN 'true' "
    "WHEN 'false' THEN 'false' ELSE CAST(json_extract(i.metadata, ?) AS TEXT) END)"
    if sqlite3.sqlite_version_info >= (3, 38)
    else "(CASE json_type(i.metadata, ?) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' "
    "ELSE CAST(json_extract(i.metadata, ?) AS TEXT) END)"
)


# Range filters: a number bound compares with numbers (and numbers stored as text, as `--meta
# rating=5` stores them; booleans never), a text bound with text (ISO dates sort as dates).
_RANGE_OPS = (">", ">=", "<", "<=")
_META_NUMBER = (
    "(CASE WHEN json_type(i.metadata, ?) IN ('true', 'false') THEN NULL "
    "ELSE xm_number(json_extract(i.metadata, ?)) END)"
)
_META_STRING = "(CASE json_type(i.metadata, ?) WHEN 'text' THEN json_extract(i.metadata, ?) END)"
_NUMERIC_TEXT = re.compile(r"^\s*-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$")


def as_number(value: Any) -> float | None:
    """A number, or text that is one (``"1e6"``, ``" 5 "``), as a float; else None."""
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and _NUMERIC_TEXT.match(value):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def _open_read_only(path: Path) -> sqlite3.Connection:
    """Read-only, with SQLite's locking while another user's process may be writing (it keeps
    the -wal and -shm files there); without them, nobody is, and the file is read as immutable."""
    base = path.absolute().as_uri()
    try:
        db = sqlite3.connect(f"{base}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.OperationalError:
        return sqlite3.connect(f"{base}?mode=ro&immutable=1", uri=True, isolation_level=None, check_same_thread=False)


class Catalog:
    def __init__(self, path: Path) -> None:
        self.path = path
        # a collection on a read-only mount or in a folder the user may not write can still be
        # searched (see _open_read_only)
        self.read_only = path.exists() and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK))
        try:
            if self.read_only:
                self._db = _open_read_only(path)
            else:
                self._db = sqlite3.connect(
                    str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
                )
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA foreign_keys=ON")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.executescript(_SCHEMA)
            found = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            self._db.create_function("xm_number", 1, as_number, deterministic=True)
        except sqlite3.DatabaseError as exc:
            raise CollectionError(f"{path}: catalog is not a valid SQLite database ({exc})") from exc
        if found is None and self.read_only:
            raise CollectionError(f"{path}: read-only and not an xmodal catalog")
        if found is None:
            self._set_meta("schema_version", str(SCHEMA_VERSION))
            self._set_meta("generation", "0")
        elif int(found[0]) != SCHEMA_VERSION:
            raise CollectionError(f"{path}: catalog schema {found[0]} is not supported (expected {SCHEMA_VERSION})")
        if not self.read_only:
            keywords.ensure_index(self._db, int(BUSY_TIMEOUT_S * 1000))
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(vectors)")}
        if "page" not in columns and not self.read_only:  # a catalog from before PDFs
            self._db.execute("ALTER TABLE vectors ADD COLUMN page INTEGER")
            columns.add("page")
        # a read-only catalog from before PDFs has no page column: its vectors have no page
        self._page = "page" if "page" in columns else "NULL"
        # nor, from before the photo tower, a looks table (its schema cannot grow)
        self._has_looks = (
            self._db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'looks'").fetchone()
            is not None
        )

    def close(self) -> None:
        self._db.close()

    # ---- meta -------------------------------------------------------------------------------
    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def model_state(self) -> dict[str, Any] | None:
        """Which model made the stored vectors; written in the same transaction as they are."""
        row = self._db.execute("SELECT value FROM meta WHERE key='model_state'").fetchone()
        return json.loads(row[0]) if row else None

    def set_model_state(self, state: dict[str, Any]) -> None:
        self._set_meta("model_state", json.dumps(state, sort_keys=True))

    @property
    def generation(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        return int(row[0]) if row else 0

    def _bump(self) -> None:
        self._db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='generation'")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")

    # ---- items ------------------------------------------------------------------------------
    def file_state(self, uri: str) -> FileState | None:
        row = self._db.execute("SELECT id, content_hash, size, mtime_ns FROM items WHERE uri = ?", (uri,)).fetchone()
        return FileState(*row) if row else None

    def touch(self, item_id: str, mtime_ns: int) -> None:
        self._db.execute("UPDATE items SET mtime_ns = ? WHERE id = ?", (mtime_ns, item_id))

    def vectors_for_hash(self, content_hash: str) -> tuple[str, list[VectorRecord]] | None:
        """Reuse work: vectors (and text) of another item with identical content."""
        row = self._db.execute("SELECT id, text FROM items WHERE content_hash = ? LIMIT 1", (content_hash,)).fetchone()
        if row is None:
            return None
        records = [
            VectorRecord(VectorKind(kind), np.frombuffer(blob, dtype=np.float32), Segment(text, start, end, page))
            for kind, start, end, text, blob, page in self._db.execute(
                f"SELECT kind, start, end, text, embedding, {self._page} FROM vectors WHERE item_id = ? ORDER BY vid",
                (row[0],),
            )
        ]
        look = self._db.execute("SELECT embedding FROM looks WHERE item_id = ?", (row[0],)).fetchone()
        if look is not None:
            records.append(VectorRecord(VectorKind.LOOK, _look_array(look[0]), Segment("")))
        return row[1], records

    def upsert_item(self, item: Item, mtime_ns: int, vectors: Sequence[VectorRecord]) -> tuple[list[int], list[int]]:
        """Insert or replace an item and all its vectors. Returns (removed vids, added vids):
        the vids of the vectors the ANN index holds, in the order of ``vectors`` without its
        look (kind ``look``, kept in its own table). Call inside :meth:`transaction`."""
        removed = [r[0] for r in self._db.execute("SELECT vid FROM vectors WHERE item_id = ?", (item.id,))]
        self._db.execute("DELETE FROM vectors WHERE item_id = ?", (item.id,))
        self._db.execute("DELETE FROM looks WHERE item_id = ?", (item.id,))
        self._db.execute(
            """INSERT INTO items(id, uri, modality, content_hash, size, mtime_ns, metadata, text,
                                 created_at, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(id) DO UPDATE SET uri=excluded.uri, modality=excluded.modality,
                 content_hash=excluded.content_hash, size=excluded.size, mtime_ns=excluded.mtime_ns,
                 metadata=excluded.metadata, text=excluded.text, updated_at=excluded.updated_at""",
            (
                item.id,
                item.uri,
                item.modality.value,
                item.content_hash,
                item.size,
                mtime_ns,
                json.dumps(item.metadata, ensure_ascii=False, sort_keys=True),
                item.text,
                item.created_at,
                item.updated_at,
            ),
        )
        added = []
        for rec in vectors:
            if rec.kind is VectorKind.LOOK:
                self._db.execute(
                    "INSERT OR REPLACE INTO looks(item_id, embedding) VALUES (?, ?)",
                    (item.id, np.ascontiguousarray(rec.embedding, dtype=np.float16).tobytes()),
                )
                continue
            cur = self._db.execute(
                "INSERT INTO vectors(item_id, kind, start, end, text, embedding, page) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    item.id,
                    rec.kind.value,
                    rec.segment.start,
                    rec.segment.end,
                    rec.segment.text,
                    np.ascontiguousarray(rec.embedding, dtype=np.float32).tobytes(),
                    rec.segment.page,
                ),
            )
            added.append(int(cur.lastrowid or 0))
        self._bump()
        return removed, added

    def merge_metadata(self, item_id: str, metadata: dict[str, Any]) -> bool:
        """Set these metadata fields of an item (others stay); True when anything changed.
        Call inside :meth:`transaction`."""
        row = self._db.execute("SELECT metadata FROM items WHERE id = ?", (item_id,)).fetchone()
        if row is None:
            return False
        old = json.loads(row[0] or "{}")
        new = {**old, **metadata}
        if new == old and all(type(old[k]) is type(v) for k, v in metadata.items()):
            return False
        self._db.execute(
            "UPDATE items SET metadata = ?, updated_at = ? WHERE id = ?",
            (json.dumps(new, ensure_ascii=False, sort_keys=True), now(), item_id),
        )
        self._bump()
        return True

    def delete_items(self, ids: Iterable[str]) -> tuple[list[str], list[int]]:
        """Delete items (and their vectors). Returns (deleted ids, removed vids)."""
        deleted: list[str] = []
        vids: list[int] = []
        for item_id in ids:
            vids.extend(r[0] for r in self._db.execute("SELECT vid FROM vectors WHERE item_id = ?", (item_id,)))
            cur = self._db.execute("DELETE FROM items WHERE id = ?", (item_id,))
            if cur.rowcount:
                deleted.append(item_id)
        if deleted:
            self._bump()
        return deleted, vids

    def get(self, item_id: str) -> Item | None:
        row = self._db.execute(f"SELECT {_ITEM_COLS} FROM items WHERE id = ?", (item_id,)).fetchone()
        return _item(row) if row else None

    def items_by_id(self, ids: Sequence[str]) -> dict[str, Item]:
        out: dict[str, Item] = {}
        for start in range(0, len(ids), 500):
            part = list(ids[start : start + 500])
            marks = ",".join("?" * len(part))
            for row in self._db.execute(f"SELECT {_ITEM_COLS} FROM items WHERE id IN ({marks})", part):
                out[row[0]] = _item(row)
        return out

    def iter_items(self) -> Iterator[Item]:
        for row in self._db.execute(f"SELECT {_ITEM_COLS} FROM items ORDER BY uri"):
            yield _item(row)

    def uris_under(self, prefixes: Sequence[str]) -> list[tuple[str, str]]:
        """(id, uri) of items whose uri starts with one of the prefixes."""
        out: list[tuple[str, str]] = []
        for prefix in prefixes:
            like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            out.extend(self._db.execute("SELECT id, uri FROM items WHERE uri LIKE ? ESCAPE '\\'", (like,)))
        return out

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM items").fetchone()[0])

    def counts_by_modality(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT modality, COUNT(*) FROM items GROUP BY modality").fetchall())

    # ---- vectors ----------------------------------------------------------------------------
    def vector_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])

    def all_vectors(self, dim: int, batch: int = 10000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        cur = self._db.execute("SELECT vid, embedding FROM vectors ORDER BY vid")
        while rows := cur.fetchmany(batch):
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dim)
            yield ids, vecs

    def looks(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(item ids, the vid of each one's picture vector, their looks as stored: float16
        rows) of every item that has a look, sorted by item id."""
        rows = []
        if self._has_looks:
            rows = self._db.execute(
                """SELECT l.item_id, (SELECT min(v.vid) FROM vectors v WHERE v.item_id = l.item_id
                                       AND v.kind IN ('photo', 'image')), l.embedding
                   FROM looks l ORDER BY l.item_id"""
            ).fetchall()
            rows = [r for r in rows if r[1] is not None]
        if not rows:
            return [], np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float16)
        vids = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
        return [r[0] for r in rows], vids, np.stack([np.frombuffer(r[2], dtype=np.float16) for r in rows])

    def look_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM looks").fetchone()[0]) if self._has_looks else 0

    def text_segments(self, item_id: str) -> list[tuple[VectorKind, Segment]]:
        """The item's text pieces (chunks, OCR, transcript segments) in the order stored."""
        rows = self._db.execute(
            f"SELECT kind, start, end, text, {self._page} FROM vectors WHERE item_id = ? AND text != '' ORDER BY vid",
            (item_id,),
        ).fetchall()
        return [(VectorKind(k), Segment(t, s, e, p)) for k, s, e, t, p in rows]

    def vids_by_kind(self, kind: VectorKind, after: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Sorted ids above ``after`` of the vectors of ``kind`` and of all the others."""
        rows = self._db.execute(
            "SELECT vid, kind = ? FROM vectors WHERE vid > ? ORDER BY vid", (kind.value, after)
        ).fetchall()
        vids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        mine = np.fromiter((bool(r[1]) for r in rows), dtype=bool, count=len(rows))
        return vids[mine], vids[~mine]

    def vector_rows(self, vids: Sequence[int]) -> dict[int, VectorRow]:
        out: dict[int, VectorRow] = {}
        for start in range(0, len(vids), 500):
            part = [int(v) for v in vids[start : start + 500]]
            marks = ",".join("?" * len(part))
            for vid, item_id, kind, s, e, text, page in self._db.execute(
                f"SELECT vid, item_id, kind, start, end, text, {self._page} FROM vectors WHERE vid IN ({marks})", part
            ):
                out[vid] = VectorRow(vid, item_id, VectorKind(kind), s, e, text, page)
        return out

    def filtered_vids(
        self, modality: Modality | None, where: Filters, allow_items: set[str] | None = None
    ) -> np.ndarray:
        """Vector ids of items matching the filters: a list of texts is equality (metadata
        values compared as text), a dict of bounds a range (``{">=": 10, "<": 20}``)."""
        clauses: list[str] = []
        params: list[Any] = []
        if allow_items is not None:
            if not allow_items:
                return np.zeros(0, dtype=np.int64)
            self._fill_temp("allow_items(id TEXT PRIMARY KEY)", ((i,) for i in allow_items))
            clauses.append("i.id IN (SELECT id FROM allow_items)")
        if modality is not None:
            clauses.append("i.modality = ?")
            params.append(modality.value)
        for key, values in where.items():
            check_meta_key(key)
            path = f'$."{key}"'
            if isinstance(values, dict):  # a range: every bound holds
                for op, bound in values.items():
                    if op not in _RANGE_OPS:
                        raise InvalidArgumentError(f"filter {key!r}: unknown comparison {op!r}")
                    sql = _META_NUMBER if isinstance(bound, int | float) else _META_STRING
                    clauses.append(f"{sql} {op} ?")
                    params.extend([path, path, bound])
                continue
            marks = ",".join("?" * len(values))
            clauses.append(f"{_META_TEXT} IN ({marks})")
            params.extend([path] * _META_TEXT.count("?"))
            params.extend(values)
        sql = "SELECT v.vid FROM vectors v JOIN items i ON i.id = v.item_id"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        rows = self._db.execute(sql, params).fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def keyword_matches(
        self, terms: list[str], limit: int, allow: np.ndarray | None = None, visible: np.ndarray | None = None
    ) -> list[KeywordRow]:
        """The rows that hold any of ``terms`` (words and phrases, :func:`keywords.query_terms`),
        best first by BM25 (higher is better), among the vector ids ``allow`` when given. With
        ``visible`` (the rows a principal may see), every matching row is returned, scored with
        the statistics of those rows only (:func:`keywords.visible_bm25`); else the first
        ``limit``, scored by FTS5 over the whole index."""
        self._require_keyword_index()
        if visible is not None:
            scored = keywords.visible_bm25(self._db, terms, visible, allow)
            rows = self.vector_rows([vid for vid, _ in scored])
            return [KeywordRow(vid, rows[vid].item_id, score) for vid, score in scored if vid in rows]
        table = keywords.TABLE
        sql = (
            f"SELECT f.rowid, v.item_id, -bm25({table}) FROM {table} f "
            f"JOIN vectors v ON v.vid = f.rowid WHERE {table} MATCH ?"
        )
        params: list[Any] = [keywords.expression(terms)]
        if allow is not None:
            if not len(allow):
                return []
            self._fill_allow_vids(allow)
            sql += " AND f.rowid IN (SELECT vid FROM allow_vids)"
        sql += " ORDER BY rank, f.rowid LIMIT ?"
        params.append(int(limit))
        return [KeywordRow(int(r[0]), r[1], float(r[2])) for r in self._db.execute(sql, params)]

    def keyword_snippets(self, terms: list[str], vids: Sequence[int]) -> dict[int, str]:
        """Each row's text cut to the words around its matches."""
        if not vids:
            return {}
        table = keywords.TABLE
        marks = ",".join("?" * len(vids))
        rows = self._db.execute(
            f"SELECT rowid, snippet({table}, 0, '', '', '\u2026', {keywords.SNIPPET_TOKENS}) FROM {table} "
            f"WHERE {table} MATCH ? AND rowid IN ({marks})",
            [keywords.expression(terms), *[int(v) for v in vids]],
        )
        return {int(vid): text for vid, text in rows}

    def _require_keyword_index(self) -> None:
        if not keywords.has_index(self._db):
            raise CollectionError(
                f"{self.path}: this collection has no keyword index yet; it is built the first time "
                "the collection is opened with write access (e.g. by xmodal index), with an SQLite "
                "that has FTS5 (Python's own has)"
            )

    def _fill_allow_vids(self, allow: np.ndarray) -> None:
        self._fill_temp("allow_vids(vid INTEGER PRIMARY KEY)", ((int(v),) for v in allow))

    def _fill_temp(self, table: str, rows: Iterable[tuple[Any]]) -> None:
        """Replace the rows of a one-column temporary table, in one transaction of its own (a
        savepoint, so also inside a caller's): row by row in autocommit it took 20x as long."""
        name = table.split("(", 1)[0]
        self._db.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table}")
        self._db.execute("SAVEPOINT fill_temp")
        try:
            self._db.execute(f"DELETE FROM {name}")
            self._db.executemany(f"INSERT OR IGNORE INTO {name} VALUES (?)", rows)
        except BaseException:
            self._db.execute("ROLLBACK TO fill_temp")
            self._db.execute("RELEASE fill_temp")
            raise
        self._db.execute("RELEASE fill_temp")

    def metadata_keys(self) -> set[str]:
        rows = self._db.execute("SELECT DISTINCT j.key FROM items, json_each(items.metadata) AS j").fetchall()
        return {r[0] for r in rows}


_ITEM_COLS = "id, uri, modality, content_hash, size, metadata, text, created_at, updated_at"


def _item(row: Any) -> Item:
    return Item(
        id=row[0],
        uri=row[1],
        modality=Modality(row[2]),
        content_hash=row[3],
        size=int(row[4]),
        metadata=json.loads(row[5]),
        text=row[6],
        created_at=float(row[7]),
        updated_at=float(row[8]),
    )


def _look_array(blob: bytes) -> np.ndarray:
    """Looks are stored as float16 (half the bytes; cosines change by < 1e-3)."""
    return np.frombuffer(blob, dtype=np.float16).astype(np.float32)


def now() -> float:
    return time.time()
