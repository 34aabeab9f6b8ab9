"""Keyword search over the text the catalog keeps with each vector (text chunks, OCR text,
transcript segments): an SQLite FTS5 index ranked by BM25, kept in step with the ``vectors``
table by triggers, so every write path (add, re-embed, delete, prune) updates it in the same
transaction.

Words are matched after Unicode case folding, diacritics removal and Porter stemming
("revenues" finds "revenue"). A query is its words joined by OR (BM25 ranks rows that hold more
of the rarer words first), with "double-quoted" parts matched as phrases."""

from __future__ import annotations

import re
import sqlite3

TABLE = "vectors_fts"
TOKENIZER = "porter unicode61 remove_diacritics 2"
MAX_TERMS = 32  # words and phrases of a query taken into account
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


def has_index(db: sqlite3.Connection) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (TABLE,)).fetchone() is not None


def ensure_index(db: sqlite3.Connection) -> None:
    """Create the keyword index and its triggers; a catalog made before them (or by a build
    without them) is indexed from its stored text once, in one transaction."""
    if has_index(db):
        return
    db.execute("BEGIN IMMEDIATE")
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


def match_expression(text: str) -> str | None:
    """The FTS5 query for a user's words: each word or "quoted phrase" (tokens only: FTS5's
    operators and column filters in user text are read as words) joined by OR; None when the
    text has no word to match."""
    terms: list[str] = []
    for phrase in _PHRASE.findall(text):
        words = _WORD.findall(phrase.casefold())
        if words:
            terms.append(" ".join(words))
    for word in _WORD.findall(_PHRASE.sub(" ", text).casefold()):
        terms.append(word)
    unique = list(dict.fromkeys(terms))[:MAX_TERMS]
    return " OR ".join(f'"{term}"' for term in unique) or None
