"""Keyword (BM25 over the stored text) and hybrid search: the query syntax, the scores against
a hand computation of FTS5's BM25, the index kept in step with every write, filters and access
lists applied, old collections upgraded, and every bad query a clear error."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import write
from xmodal import keywords
from xmodal.collection import Collection
from xmodal.errors import CollectionError, InvalidArgumentError, InvalidQueryError
from xmodal.search import FUSION_DEPTH, RRF_K, Query, rrf_merge
from xmodal.types import SearchMode

Open = Callable[..., Collection]


def corpus(root: Path) -> Path:
    write(root / "money" / "revenue.txt", "quarterly revenues grew twelve percent")
    write(root / "money" / "invoice.txt", "invoice INV-2024-0117 for consulting services")
    write(root / "money" / "office.txt", "the revenue office closes early on friday")
    write(root / "animals" / "cat.txt", "the cat sleeps on the warm mat")
    write(root / "animals" / "dog.txt", "a dog barks at the mail carrier on friday")
    return root


def names(hits: list) -> list[str]:
    return [h.metadata["name"] for h in hits]


def _indexed(tmp_path: Path, open_collection: Open, texts: dict[str, str]) -> Collection:
    """A collection of one text file per entry of ``texts`` (file name -> text)."""
    for name, text in texts.items():
        write(tmp_path / "m" / name, text)
    coll = open_collection()
    coll.add([tmp_path / "m"])
    return coll


# ---- the query syntax ---------------------------------------------------------------------------
def test_match_expression_quotes_every_word_and_phrase() -> None:
    assert keywords.match_expression("Quarterly revenue") == '"quarterly" OR "revenue"'
    assert keywords.match_expression('"revenue office" friday') == '"revenue office" OR "friday"'
    # FTS5 operators, column filters, prefixes and stray quotes in user text are plain words
    assert keywords.match_expression('NOT cat AND text:dog* "') == '"not" OR "cat" OR "and" OR "text" OR "dog"'
    assert keywords.match_expression("cat CAT cat") == '"cat"'
    assert keywords.match_expression("INV-2024-0117 v2.1") == '"inv 2024 0117" OR "v2 1"'  # one phrase each
    assert keywords.match_expression("!!! ... ??") is None
    assert keywords.match_expression('""') is None
    many = " ".join(f"w{i}" for i in range(100))
    assert keywords.match_expression(many).count(" OR ") == keywords.MAX_TERMS - 1  # type: ignore[union-attr]


# ---- the scores ---------------------------------------------------------------------------------
def fts5_bm25(docs: list[list[str]], query: list[str], doc: list[str], k1: float = 1.2, b: float = 0.75) -> float:
    """BM25 as SQLite's FTS5 documents it (idf floored at 1e-6), by hand."""
    avgdl = sum(len(d) for d in docs) / len(docs)
    score = 0.0
    for term in query:
        n = sum(term in d for d in docs)
        idf = max(math.log((len(docs) - n + 0.5) / (n + 0.5)), 1e-6)
        f = doc.count(term)
        score += idf * f * (k1 + 1) / (f + k1 * (1 - b + b * len(doc) / avgdl))
    return score


def test_keyword_scores_are_bm25_and_rank_rarer_words_first(tmp_path: Path, open_collection: Open) -> None:
    texts = {
        "a.txt": "apple banana cherry",
        "b.txt": "apple apple grape",
        "c.txt": "melon kiwi lemon lime",
        "d.txt": "plum pear fig date",
        "e.txt": "banana kiwi",
        "f.txt": "olive",
    }
    coll = _indexed(tmp_path, open_collection, texts)
    hits = coll.search("apple kiwi", k=10, mode="keyword")
    docs = {name: text.split() for name, text in texts.items()}
    expected = {name: fts5_bm25(list(docs.values()), ["apple", "kiwi"], d) for name, d in docs.items()}
    expected = {name: s for name, s in expected.items() if s > 0}
    assert sorted(names(hits)) == sorted(expected)
    for hit in hits:
        assert hit.score == pytest.approx(expected[hit.metadata["name"]], rel=1e-9)
    assert names(hits)[0] == "b.txt"  # two apples
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_scores_over_the_visible_rows_match_fts5_and_a_hand_computation(tmp_path: Path, open_collection: Open) -> None:
    texts = {
        "a.txt": "running runners run the red race",
        "b.txt": "the red fox jumps over the lazy red dog",
        "c.txt": "a quick red fox",
        "d.txt": "lazy afternoons by the river",
        "e.txt": "the race is run",
    }
    coll = _indexed(tmp_path, open_collection, texts)
    cat = coll.catalog
    terms = keywords.query_terms('red "lazy dog" runs')
    every = cat.filtered_vids(None, {})
    by_fts = {r.vid: r.score for r in cat.keyword_matches(terms, 100)}
    by_python = {r.vid: r.score for r in cat.keyword_matches(terms, 100, visible=every)}
    assert by_python.keys() == by_fts.keys() and len(by_fts) == 4  # stemmed: "runs" finds "running", "run"
    for vid, score in by_fts.items():
        assert by_python[vid] == pytest.approx(score, rel=1e-9)
    # a principal who sees a, b and c only: the statistics are theirs, the filter applies after
    ids = {h.metadata["name"]: h.id for h in coll.search("red", k=10, mode="keyword")}
    seen = {ids[n] for n in ("a.txt", "b.txt", "c.txt")}
    hits = coll.search("red lazy", k=10, mode="keyword", allow_items=seen)
    docs = [texts[n].split() for n in ("a.txt", "b.txt", "c.txt")]
    expected = {n: fts5_bm25(docs, ["red", "lazy"], texts[n].split()) for n in ("a.txt", "b.txt", "c.txt")}
    assert {h.metadata["name"]: h.score for h in hits} == pytest.approx(expected, rel=1e-9)


def test_a_principals_scores_do_not_move_with_items_it_cannot_see(tmp_path: Path, open_collection: Open) -> None:
    write(tmp_path / "m" / "mine.txt", "quarterly merger plan draft")
    for i in range(4):
        write(tmp_path / "m" / f"f{i}.txt", f"lorem ipsum {i}")
    coll = open_collection()
    coll.add([tmp_path / "m"])
    mine = {h.id for h in coll.search("lorem merger", k=10, mode="keyword")}
    before = [(h.id, h.score) for h in coll.search("merger", mode="keyword", allow_items=mine)]
    for n in range(3):  # hidden items saying the same word come and go
        write(tmp_path / "hidden" / f"secret{n}.txt", "confidential merger with acme")
        coll.add([tmp_path / "hidden"])
        assert [(h.id, h.score) for h in coll.search("merger", mode="keyword", allow_items=mine)] == before
        hybrid = coll.search("merger", mode="hybrid", allow_items=mine)
        assert {h.id for h in hybrid} == mine
    unrestricted = coll.search("merger", k=10, mode="keyword")
    ((mine_id, score),) = before
    assert len(unrestricted) == 4 and {h.id: h.score for h in unrestricted}[mine_id] < score  # whole-index statistics


def test_an_upgrade_waits_for_no_other_writer(
    tmp_path: Path, open_collection: Open, registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keywords, "UPGRADE_WAIT_MS", 100)
    coll = open_collection()
    coll.add([corpus(tmp_path / "media")])
    coll.close()
    _drop_keyword_index(tmp_path / "coll" / "catalog.sqlite")
    writer = sqlite3.connect(tmp_path / "coll" / "catalog.sqlite", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
    try:
        again = Collection.open(tmp_path / "coll", registry=registry)  # opens: the upgrade waits for later
        with pytest.raises(CollectionError, match="no keyword index yet"):
            again.search("friday", mode="keyword")
        assert again.search("friday", k=1)
        again.close()
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    again = Collection.open(tmp_path / "coll", registry=registry)
    assert sorted(names(again.search("friday", mode="keyword"))) == ["dog.txt", "office.txt"]
    again.close()


def _drop_keyword_index(path: Path) -> None:
    db = sqlite3.connect(path)  # as a build before keyword search left it
    for trigger in ("insert", "delete", "update"):
        db.execute(f"DROP TRIGGER {keywords.TABLE}_{trigger}")
    db.execute(f"DROP TABLE {keywords.TABLE}")
    db.commit()
    db.close()


# ---- through the collection ---------------------------------------------------------------------
def test_keyword_search_finds_exact_and_stemmed_words(tmp_path: Path, open_collection: Open) -> None:
    coll = open_collection()
    coll.add([corpus(tmp_path / "media")])
    hits = coll.search("revenue", k=5, mode="keyword")
    assert sorted(names(hits)) == ["office.txt", "revenue.txt"]  # "revenues" is stemmed
    assert all(h.score > 0 and h.snippet for h in hits)
    assert names(coll.search("INV-2024-0117", k=1, mode=SearchMode.KEYWORD)) == ["invoice.txt"]
    assert names(coll.search('"revenue office"', k=5, mode="keyword"))[0] == "office.txt"
    assert coll.search("zebra", mode="keyword") == []  # no word matches: no results
    # the snippet is cut around the matched words
    write(tmp_path / "media" / "long.txt", " ".join(["filler"] * 60) + " needle " + " ".join(["tail"] * 60))
    coll.add([tmp_path / "media" / "long.txt"])
    (hit,) = coll.search("needle", mode="keyword")
    assert "needle" in hit.snippet and len(hit.snippet.split()) <= keywords.SNIPPET_TOKENS + 1
    assert hit.snippet.startswith("\u2026")


def test_filters_and_access_lists_apply_and_k_matches_come_back(tmp_path: Path, open_collection: Open) -> None:
    for i in range(30):
        write(tmp_path / "m" / f"{'a' if i % 3 else 'b'}" / f"doc{i:02}.txt", f"report number {i} " + "x " * i)
    coll = open_collection()
    coll.add([tmp_path / "m"])
    hits = coll.search("report", k=10, mode="keyword", where={"folder": "b"})
    assert len(hits) == 10 and all(h.metadata["folder"] == "b" for h in hits)  # widened past the first 40 rows
    allowed = {h.id for h in coll.search("report", k=30, mode="keyword")[::7]}
    got = coll.search("report", k=30, mode="keyword", allow_items=allowed)
    assert {h.id for h in got} == allowed
    assert coll.search("report", mode="keyword", allow_items=set()) == []
    assert coll.search("report", mode="hybrid", allow_items=set()) == []
    assert {h.id for h in coll.search("report", k=30, mode="hybrid", allow_items=allowed)} == allowed


def test_the_keyword_index_follows_every_write(tmp_path: Path, open_collection: Open) -> None:
    media = corpus(tmp_path / "media")
    coll = open_collection()
    coll.add([media])
    (hit,) = coll.search("barks", mode="keyword")
    coll.delete([hit.id])
    assert coll.search("barks", mode="keyword") == []
    write(media / "animals" / "cat.txt", "the cat now chases a laser dot")
    coll.add([media])  # a changed file: its old words go, its new ones come
    assert coll.search("sleeps", mode="keyword") == []
    assert names(coll.search("laser", mode="keyword")) == ["cat.txt"]
    (media / "money" / "invoice.txt").unlink()
    coll.add([media], prune=True)
    assert coll.search("consulting", mode="keyword") == []
    rows = coll.catalog._db.execute(f"SELECT count(*) FROM {keywords.TABLE}_docsize").fetchone()[0]
    assert rows == coll.catalog._db.execute("SELECT count(*) FROM vectors WHERE text != ''").fetchone()[0]


def test_an_older_collection_gains_the_keyword_index_when_opened(
    tmp_path: Path, open_collection: Open, registry
) -> None:
    coll = open_collection()
    coll.add([corpus(tmp_path / "media")])
    coll.close()
    _drop_keyword_index(tmp_path / "coll" / "catalog.sqlite")
    again = Collection.open(tmp_path / "coll", registry=registry)
    assert sorted(names(again.search("friday", mode="keyword"))) == ["dog.txt", "office.txt"]
    # a catalog that could not be upgraded (opened read-only) says what to do
    again.catalog._db.execute(f"DROP TABLE {keywords.TABLE}")
    with pytest.raises(CollectionError, match="no keyword index yet"):
        again.search("friday", mode="keyword")
    assert again.search("friday", k=1)  # searching by meaning is unaffected
    again.close()


# ---- hybrid -------------------------------------------------------------------------------------
def test_rrf_merge_by_hand() -> None:
    keyword = [("a", 1), ("b", 2)]
    dense = [("b", 12), ("c", 13), ("a", 11)]
    fused = rrf_merge([keyword, dense], k=10)
    score = {vid: s for s, vid in fused}
    c = RRF_K
    # b: 2nd and 1st -> its dense vid (ranked higher there); a: 1st and 3rd -> its keyword vid
    assert [vid for _, vid in fused] == [12, 1, 13]
    assert score[12] == pytest.approx(1 / (c + 2) + 1 / (c + 1), abs=1e-9)
    assert score[1] == pytest.approx(1 / (c + 1) + 1 / (c + 3), abs=1e-9)
    assert score[13] == pytest.approx(1 / (c + 2), abs=1e-9)
    tie = rrf_merge([[("x", 5)], [("x", 6)]], k=1)
    assert tie == [(round(2 / (c + 1), 9), 5)]  # the first list's vid on a tie
    assert rrf_merge([[], []], k=3) == []
    assert len(rrf_merge([[(f"i{n}", n) for n in range(50)]], k=7)) == 7


def test_hybrid_puts_items_found_both_ways_first(tmp_path: Path, open_collection: Open) -> None:
    coll = open_collection()
    coll.add([corpus(tmp_path / "media")])
    dense = coll.search("revenue friday", k=5)
    keyword = coll.search("revenue friday", k=5, mode="keyword")
    hybrid = coll.search("revenue friday", k=5, mode="hybrid")
    assert names(hybrid)[0] == "office.txt" == names(keyword)[0]  # both words, and first by meaning
    assert set(names(hybrid)) <= set(names(dense)) | set(names(keyword))
    ranks = [{n: r for r, n in enumerate(names(x), 1)} for x in (keyword, dense)]
    for hit in hybrid:
        fused = sum(1 / (RRF_K + r[hit.metadata["name"]]) for r in ranks if hit.metadata["name"] in r)
        assert hit.score == pytest.approx(fused, abs=1e-9)
    # a query with no word to match is a search by meaning
    assert names(coll.search("???", k=3, mode="hybrid")) == names(coll.search("???", k=3))
    assert FUSION_DEPTH >= 100


# ---- bad input ----------------------------------------------------------------------------------
def test_bad_keyword_queries_are_clear_errors(tmp_path: Path, open_collection: Open) -> None:
    coll = open_collection()
    coll.add([corpus(tmp_path / "media")])
    with pytest.raises(InvalidQueryError, match="no words to match"):
        coll.search("!?!", mode="keyword")
    for mode in ("keyword", "hybrid"):
        with pytest.raises(InvalidQueryError, match="empty"):
            coll.search("  ", mode=mode)
        with pytest.raises(InvalidQueryError, match="text query"):
            coll.search(Query.image(tmp_path / "whatever.png"), mode=mode)
        with pytest.raises(InvalidQueryError, match="characters"):
            coll.search("word " * 5000, mode=mode)
    for bad in ("fuzzy", "", 3):
        with pytest.raises(InvalidArgumentError, match="search mode"):
            coll.search("cat", mode=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="vector"):
        coll.pipeline.search_vector(None, 3, query=Query.text("cat"))
    assert np.isfinite([h.score for h in coll.search("the", k=5, mode="keyword")]).all()
