"""Keyword search over the text the catalog keeps with each vector (text chunks, OCR text,
transcript segments): an SQLite FTS5 index ranked by BM25, kept in step with the ``vectors``
table by triggers, so every write path (add, re-embed, delete, prune) updates it in the same
transaction.

Words are matched after Unicode case folding, diacritics removal and Porter stemming
("revenues" finds "revenue"). A query is its words joined by OR (BM25 ranks rows that hold more
of the rarer words first), with "double-quoted" parts matched as phrases."""

from __future__ import annotations

import math
import re
import sqlite3

import numpy as np

TABLE = "vectors_fts"
TOKENIZER = "porter unicode61 remove_diacritics 2"
MAX_TERMS = 32  # words and phrases of a query taken into account
UPGRADE_WAIT_MS = 2000  # how long an upgrade waits for another process's write to finish
SNIPPET_TOKENS = 24  # words of a keyword hit's snippet around the matched ones

SCHEMA = (
    f"""CREATE VIRTUAL TABLE {TABLE} USING fts5(
        text, content='vectors', content_rowid='vid', tokenize='{TOKENIZER}')""",
    f"""CREATE TRIGGER {TABLE}_insert AFTER INSERT ON vectors WHEN new.text != '' BEGIN
        INSERT INTO {TABLE}(rowid, text) VALUES (new.vid, new.text);
    END""",
    f"""CREATE TRIGGER {TABLE}_delete AFTER DELETE ON vectors WHEN old.text != '' BEGIN
        INSERT INTO {TABLE}({TABLE}, rowid, text) VALUES ('delete', old.vid, old.text);
    END""",
    f"""CREATE TRIGGER {TABLE}_update AFTER UPDATE OF text ON vectors BEGIN
        INSERT INTO {TABLE}({TABLE}, rowid, text) SELECT 'delete', old.vid, old.text WHERE old.text != '';
        INSERT INTO {TABLE}(rowid, text) SELECT new.vid, new.text WHERE new.text != '';
    END""",
)

_PHRASE = re.compile(r'"([^"]*)"')
_WORD = re.compile(r"\w+")
_COMPOUND = re.compile(r"\w+(?:[-./'\u2019]\w+)*")


def has_index(db: sqlite3.Connection) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (TABLE,)).fetchone() is not None


def ensure_index(db: sqlite3.Connection, busy_ms: int) -> None:
    """Create the keyword index and its triggers; a catalog made before them (or by a build
    without them) is indexed from its stored text once, in one transaction. ``busy_ms``: the
    connection's usual busy timeout, restored after the upgrade's shorter one."""
    if has_index(db):
        return
    try:  # another process writing now: build it at a later open, search by meaning meanwhile
        db.execute(f"PRAGMA busy_timeout={UPGRADE_WAIT_MS}")
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:
        return
    finally:
        db.execute(f"PRAGMA busy_timeout={busy_ms}")
    try:
        if not has_index(db):  # another process may have made it meanwhile
            for statement in SCHEMA:
                db.execute(statement)
            db.execute(f"INSERT INTO {TABLE}(rowid, text) SELECT vid, text FROM vectors WHERE text != ''")
    except sqlite3.OperationalError as exc:
        db.execute("ROLLBACK")
        if "fts5" not in str(exc):
            raise
        return  # an SQLite built without FTS5: everything but keyword search works
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def query_terms(text: str) -> list[str]:
    """A user's words and phrases: each "quoted phrase", each word joined to the next by a
    hyphen, dot, slash or apostrophe (``INV-2024-0117``, ``v2.1``: one phrase, so "2024" alone
    does not match it), and each other word; as lower-case words separated by spaces, first
    occurrence kept, at most ``MAX_TERMS``. FTS5's operators and column filters in user text
    are read as words."""
    terms: list[str] = []
    for phrase in _PHRASE.findall(text):
        words = _WORD.findall(phrase.casefold())
        if words:
            terms.append(" ".join(words))
    for token in _COMPOUND.findall(_PHRASE.sub(" ", text).casefold()):
        terms.append(" ".join(_WORD.findall(token)))
    return list(dict.fromkeys(terms))[:MAX_TERMS]


def match_expression(text: str) -> str | None:
    """The FTS5 query for a user's words: each of :func:`query_terms` quoted (a phrase), joined
    by OR; None when the text has no word to match."""
    return expression(query_terms(text))


def expression(terms: list[str]) -> str | None:
    return " OR ".join(f'"{term}"' for term in terms) or None


# ---- BM25 over a subset of the rows ------------------------------------------------------------
# FTS5's bm25() weighs words by how rare they are among *all* rows. A principal who may see only
# some items must get scores from those alone: with the whole index's statistics, the score of a
# visible item would move as hidden items holding the same word come and go. So a search limited
# to an access list scores here, with FTS5's own formula (fts5_aux.c: k1 1.2, b 0.75, idf
# floored at 1e-6), its own tokens (the index's postings and document sizes, the query stemmed
# by the same tokenizer) and the statistics of the visible rows.
K1, B = 1.2, 0.75


def _varint(blob: bytes) -> int:
    """The first SQLite varint of an FTS5 docsize record (the row's token count, one column)."""
    value = 0
    for i, byte in enumerate(blob[:9]):
        if i == 8:
            return (value << 8) | byte
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            break
    return value


def _temp_tables(db: sqlite3.Connection) -> None:
    db.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.{TABLE}_instance USING fts5vocab(main, {TABLE}, instance)")
    db.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.query_tokens USING fts5(text, tokenize='{TOKENIZER}')")
    db.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.query_tokens_instance USING fts5vocab(temp, query_tokens, instance)"
    )


def _stemmed(db: sqlite3.Connection, terms: list[str]) -> list[list[str]]:
    """Each term as the index's tokens (case-folded, diacritics removed, Porter-stemmed)."""
    db.execute("DELETE FROM temp.query_tokens")
    db.executemany("INSERT INTO temp.query_tokens(rowid, text) VALUES (?, ?)", enumerate(terms, 1))
    tokens: list[list[str]] = [[] for _ in terms]
    for term, doc, _offset in db.execute(
        "SELECT term, doc, offset FROM temp.query_tokens_instance ORDER BY doc, offset"
    ).fetchall():
        tokens[doc - 1].append(term)
    db.execute("DELETE FROM temp.query_tokens")
    return tokens


def _phrase_counts(db: sqlite3.Connection, tokens: list[str]) -> dict[int, int]:
    """Row id -> how many times the token sequence occurs in it, over the whole index."""
    positions: dict[int, set[int]] | None = None
    for shift, token in enumerate(tokens):
        found: dict[int, set[int]] = {}
        for doc, offset in db.execute(f"SELECT doc, offset FROM temp.{TABLE}_instance WHERE term = ?", (token,)):
            if positions is None or offset - shift in positions.get(doc, ()):
                found.setdefault(doc, set()).add(offset - shift)
        positions = found
    return {doc: len(starts) for doc, starts in (positions or {}).items()}


def visible_bm25(
    db: sqlite3.Connection, text_terms: list[str], visible: np.ndarray, allow: np.ndarray | None
) -> list[tuple[int, float]]:
    """(row id, BM25) of the rows among ``allow`` (``visible`` when None) that hold a term,
    best first, scored with the statistics of the ``visible`` rows only."""
    _temp_tables(db)
    sizes: dict[int, int] = {}
    for start in range(0, len(visible), 500):
        part = [int(v) for v in visible[start : start + 500]]
        marks = ",".join("?" * len(part))
        for vid, blob in db.execute(f"SELECT id, sz FROM {TABLE}_docsize WHERE id IN ({marks})", part):
            sizes[vid] = _varint(blob)
    if not sizes:
        return []
    n_rows, avgdl = len(sizes), sum(sizes.values()) / len(sizes)
    wanted = sizes.keys() if allow is None else set(int(v) for v in allow) & sizes.keys()
    scores: dict[int, float] = {}
    for tokens in _stemmed(db, text_terms):
        if not tokens:
            continue
        counts = {doc: tf for doc, tf in _phrase_counts(db, tokens).items() if doc in sizes}
        if not counts:
            continue
        idf = math.log((n_rows - len(counts) + 0.5) / (len(counts) + 0.5))
        idf = idf if idf > 0 else 1e-6
        for doc, tf in counts.items():
            if doc in wanted:
                norm = tf + K1 * (1 - B + B * sizes[doc] / avgdl)
                scores[doc] = scores.get(doc, 0.0) + idf * tf * (K1 + 1) / norm
    return sorted(scores.items(), key=lambda t: (-t[1], t[0]))
