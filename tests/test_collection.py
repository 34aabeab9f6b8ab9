"""The Python API end to end on a fake (hand-checkable) encoder and real SQLite + FAISS."""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import FAKE_MODEL, BagOfWordsEncoder, BagOfWordsEncoderV2, PixelEncoder, write
from tests.media_makers import png
from xmodal.collection import Collection
from xmodal.config import ModelConfig
from xmodal.encoders.registry import EncoderRegistry
from xmodal.errors import (
    CollectionError,
    CollectionNotFoundError,
    EncoderMismatchError,
    InvalidArgumentError,
    InvalidQueryError,
    NotFoundError,
)
from xmodal.index import IndexConfig
from xmodal.search import Query
from xmodal.types import Modality

Open = Callable[..., Collection]


def corpus(root: Path) -> Path:
    write(root / "animals" / "cat.txt", "the cat sleeps on the warm mat")
    write(root / "animals" / "dog.txt", "a dog barks at the mail carrier")
    write(root / "money" / "revenue.txt", "quarterly revenue grew twelve percent")
    write(root / "money" / "invoice.txt", "invoice for consulting services rendered")
    return root


def names(hits: list) -> list[str]:
    return [h.metadata["name"] for h in hits]


def test_add_search_delete(tmp_path: Path, open_collection: Open) -> None:
    coll = open_collection()
    report = coll.add([corpus(tmp_path / "media")])
    assert (report.added, report.failed, report.by_modality) == (4, 0, {"text": 4})
    hits = coll.search("quarterly revenue", k=2)
    assert names(hits)[0] == "revenue.txt" and hits[0].score > hits[1].score
    assert hits[0].modality is Modality.TEXT and hits[0].start is None
    assert hits[0].snippet == "quarterly revenue grew twelve percent"
    assert coll.delete([hits[0].id]) == 1
    assert "revenue.txt" not in names(coll.search("quarterly revenue", k=4))
    assert len(coll) == 3
    with pytest.raises(NotFoundError):
        coll.get(hits[0].id)


def test_rerun_is_a_noop_and_changes_are_reembedded(tmp_path: Path, open_collection: Open) -> None:
    media = corpus(tmp_path / "media")
    coll = open_collection()
    coll.add([media])
    encoder = coll.embedder.text_encoder
    calls = encoder.calls  # type: ignore[attr-defined]
    again = coll.add([media])
    assert (again.added, again.updated, again.unchanged) == (0, 0, 4)
    assert encoder.calls == calls  # type: ignore[attr-defined]
    # same content, new mtime: hashed, found unchanged, not re-encoded
    os.utime(media / "animals" / "cat.txt", ns=(1, 1))
    assert coll.add([media]).unchanged == 4 and encoder.calls == calls  # type: ignore[attr-defined]
    write(media / "animals" / "cat.txt", "the cat chases a red laser pointer")
    changed = coll.add([media])
    assert (changed.updated, changed.unchanged) == (1, 3)
    assert names(coll.search("laser pointer", k=1)) == ["cat.txt"]
    assert coll.catalog.vector_count() == 4  # old vectors replaced, not accumulated


def test_prune_removes_items_whose_files_are_gone(tmp_path: Path, open_collection: Open) -> None:
    media = corpus(tmp_path / "media")
    coll = open_collection()
    coll.add([media])
    (media / "animals" / "dog.txt").unlink()
    kept = coll.add([media])
    assert kept.missing == 1 and len(coll) == 4
    pruned = coll.add([media], prune=True)
    assert pruned.pruned == 1 and len(coll) == 3
    assert "dog.txt" not in names(coll.search("dog barks", k=3))


def test_where_filter_returns_k_matching_items(tmp_path: Path, open_collection: Open) -> None:
    media = tmp_path / "media"
    for i in range(30):
        write(media / "a" / f"a{i}.txt", f"report number {i} about revenue")
    for i in range(5):
        write(media / "scans" / f"s{i}.txt", f"scanned invoice {i}")
    coll = open_collection()
    coll.add([media / "a"])
    coll.add([media / "scans"], metadata={"team": "finance"})
    hits = coll.search("revenue report", k=4, where={"source": "scans"})
    assert len(hits) == 4 and all(h.metadata["source"] == "scans" for h in hits)
    assert len(coll.search("revenue", k=10, where={"team": "finance"})) == 5
    assert len(coll.search("revenue", k=10, where={"source": ["scans", "a"]})) == 10
    assert coll.search("revenue", k=3, where={"team": "nobody"}) == []
    with pytest.raises(InvalidArgumentError, match="unknown filter field"):
        coll.search("revenue", where={"colour": "red"})
    big, small = 2**64 + 1, -(2**63) - 5  # beyond 64-bit integers: compared exactly, not as floats
    for name, meta in [("b1", {"n": big, "flag": True, "x": 1.5}), ("b2", {"n": small}), ("b3", {"n": big + 1})]:
        write(media / "b" / f"{name}.txt", f"revenue note {name}")
        coll.add([media / "b" / f"{name}.txt"], metadata=meta)
    if sqlite3.sqlite_version_info >= (3, 38):  # older SQLite reads such integers as floats
        assert names(coll.search("revenue", k=5, where={"n": big})) == ["b1.txt"]
        assert names(coll.search("revenue", k=5, where={"n": str(small)})) == ["b2.txt"]
    assert names(coll.search("revenue", k=5, where={"flag": True, "x": 1.5})) == ["b1.txt"]
    with pytest.raises(InvalidArgumentError):
        coll.search("revenue", where={"bad key!": "x"})


def test_no_repeated_index_calls_past_an_engines_cap_on_k(
    tmp_path: Path, open_collection: Open, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("pymilvus")
    from xmodal.index import milvus_index

    media = tmp_path / "media"
    for i in range(120):
        write(media / f"a{i}.txt", f"report number {i} about revenue")
    coll = open_collection(index="milvus")
    coll.add([media])
    monkeypatch.setattr(milvus_index, "MAX_TOPK", 4)  # Milvus answers at most 16,384 per search
    calls: list[int] = []
    search = coll.index.search

    def counted(queries: np.ndarray, k: int, allow: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        calls.append(k)
        return search(queries, k, allow=allow)

    monkeypatch.setattr(coll.index, "search", counted)
    # the engine gave all it could: asking for 160 or all 120 would send the same search again
    assert len(coll.search("revenue", k=10)) == 4
    assert calls == [40]
    coll.close()


def test_modality_filter_and_image_tower(tmp_path: Path, open_collection: Open) -> None:
    media = tmp_path / "media"
    png(media / "red.png", (230, 10, 10))
    png(media / "blue.png", (10, 10, 230))
    write(media / "red.txt", "red red red")
    coll = open_collection(model=ModelConfig(text="bow", photo=None, image="pixels", ocr=None, asr=None))
    report = coll.add([media])
    assert report.by_modality == {"image": 2, "text": 1}
    hits = coll.search("red", k=3, modality="image")
    assert names(hits) == ["red.png", "blue.png"]
    assert names(coll.search(Query.image(media / "blue.png"), k=1)) == ["blue.png"]


def test_multi_vector_items_count_once(tmp_path: Path, open_collection: Open) -> None:
    long_text = " ".join(["alpha"] * 150 + ["omega"] * 150)
    write(tmp_path / "m" / "long.txt", long_text)
    write(tmp_path / "m" / "short.txt", "omega alpha")
    coll = open_collection()
    coll.add([tmp_path / "m"])
    assert coll.catalog.vector_count() > 2
    hits = coll.search("omega", k=5)
    assert sorted(names(hits)) == ["long.txt", "short.txt"]


def test_bad_queries(tmp_path: Path, open_collection: Open) -> None:
    coll = open_collection()
    coll.add([corpus(tmp_path / "media")])
    for bad in ("", "   \n\t"):
        with pytest.raises(InvalidQueryError, match="empty"):
            coll.search(bad)
    for k in (0, -1, 10**9, 2.5, True):
        with pytest.raises(InvalidArgumentError):
            coll.search("cat", k=k)  # type: ignore[arg-type]
    write(tmp_path / "not-an-image.png", "just text")
    with pytest.raises(InvalidQueryError):
        coll.search(Query.image(tmp_path / "not-an-image.png"))
    with pytest.raises(InvalidQueryError, match="not found"):
        coll.search(Query.image(tmp_path / "missing.png"))
    with pytest.raises(InvalidArgumentError):
        coll.search("cat", modality="smell")


def test_reopen_rebuilds_a_missing_or_corrupt_index(tmp_path: Path, open_collection: Open, registry) -> None:
    coll = open_collection()
    coll.add([corpus(tmp_path / "media")])
    before = names(coll.search("invoice consulting", k=4))
    coll.close()
    (tmp_path / "coll" / "index" / "faiss.index").write_bytes(b"garbage")
    again = Collection.open(tmp_path / "coll", registry=registry)
    assert names(again.search("invoice consulting", k=4)) == before
    again.close()
    (tmp_path / "coll" / "index" / "state.json").unlink()
    again = Collection.open(tmp_path / "coll", registry=registry, index="hnsw")
    assert again.config.index.kind == "hnsw"
    assert names(again.search("invoice consulting", k=4)) == before
    again.close()


def test_a_reader_saves_a_rebuilt_index_only_while_no_writer_is_at_work(
    tmp_path: Path, open_collection: Open, registry
) -> None:
    coll = open_collection()
    coll.add([corpus(tmp_path / "media")])
    before = names(coll.search("invoice consulting", k=4))
    coll.close()
    index_file = tmp_path / "coll" / "index" / "faiss.index"
    index_file.write_bytes(b"garbage")
    with open(tmp_path / "coll" / "lock", "a+") as writer_lock:  # another process is writing
        fcntl.flock(writer_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        reader = Collection.open(tmp_path / "coll", registry=registry)
        assert names(reader.search("invoice consulting", k=4)) == before  # rebuilt in memory
        reader.close()
        assert index_file.read_bytes() == b"garbage"  # the writer's files were not touched
    reader = Collection.open(tmp_path / "coll", registry=registry)
    assert names(reader.search("invoice consulting", k=4)) == before
    reader.close()
    assert index_file.read_bytes() != b"garbage"  # with the lock free, the rebuilt index is saved
    state = json.loads((tmp_path / "coll" / "index" / "state.json").read_text())
    assert state["count"] == 4


def test_one_path_or_id_given_alone(tmp_path: Path, open_collection: Open) -> None:
    media = corpus(tmp_path / "media")
    coll = open_collection()
    assert coll.add(str(media / "animals")).added == 2  # not its characters ("/" is the root)
    assert coll.add(media / "money").added == 2
    hit = coll.search("dog", k=1)[0]
    assert coll.delete(hit.id) == 1 and len(coll) == 3


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda c, m: c.search(123), InvalidQueryError),
        (lambda c, m: c.search(None), InvalidQueryError),
        (lambda c, m: c.search("cat", where=["name"]), InvalidArgumentError),
        (lambda c, m: c.search("cat", where={"name": None}), InvalidArgumentError),
        (lambda c, m: c.search("cat", where={"name": {"a": 1}}), InvalidArgumentError),
        (lambda c, m: c.search("cat", where={"name": []}), InvalidArgumentError),
        (lambda c, m: c.add(123), InvalidArgumentError),
        (lambda c, m: c.add([m, 123]), InvalidArgumentError),
        (lambda c, m: c.add([m], metadata="team=red"), InvalidArgumentError),
        (lambda c, m: c.add([m], metadata={"team": ["red"]}), InvalidArgumentError),
        (lambda c, m: c.add([m], metadata={"team": float("nan")}), InvalidArgumentError),
        (lambda c, m: c.add([m], metadata={1: "red"}), InvalidArgumentError),
        (lambda c, m: c.add([m], metadata={"bad key!": "red"}), InvalidArgumentError),
        (lambda c, m: c.delete(123), InvalidArgumentError),
        (lambda c, m: c.delete([None]), InvalidArgumentError),
        (lambda c, m: c.get(123), InvalidArgumentError),
        (lambda c, m: c.reembed("minilm"), InvalidArgumentError),
        (lambda c, m: c.add(""), InvalidArgumentError),  # not the working directory
        (lambda c, m: c.add([str(m) + "\x00"]), InvalidArgumentError),
        (lambda c, m: c.add([m], batch_size="4"), InvalidArgumentError),
        (lambda c, m: c.add([m], progress=5), InvalidArgumentError),
        (lambda c, m: c.add([m], metadata={"team": "red\ud800"}), InvalidArgumentError),
        (lambda c, m: c.get("\ud800"), InvalidArgumentError),
        (lambda c, m: c.delete(["\ud800"]), InvalidArgumentError),
        (lambda c, m: c.search("cat", where={"name": "x\ud800"}), InvalidArgumentError),
        (lambda c, m: c.search("cat", where={"name": float("inf")}), InvalidArgumentError),
        (lambda c, m: c.search("cat", allow_items="0123456789abcdef"), InvalidArgumentError),
        (lambda c, m: c.search(Query.text(5)), InvalidQueryError),  # type: ignore[arg-type]
        (lambda c, m: c.search(Query.image(None)), InvalidQueryError),  # type: ignore[arg-type]
        (lambda c, m: c.search(Query("text")), InvalidQueryError),  # type: ignore[arg-type]
        (lambda c, m: c.search(Query("smell", content="x")), InvalidArgumentError),  # type: ignore[arg-type]
    ],
)
def test_python_api_mistakes_are_xmodal_errors_and_change_nothing(
    call: Callable[[Collection, Path], Any], error: type[Exception], tmp_path: Path, open_collection: Open
) -> None:
    media = corpus(tmp_path / "media")
    coll = open_collection()
    coll.add([media / "animals"])
    with pytest.raises(error):
        call(coll, media / "money")
    assert len(coll) == 2 and set(names(coll.search("revenue", k=5))) == {"cat.txt", "dog.txt"}


def test_python_api_checks_open_arguments_and_a_closed_collection(tmp_path: Path, registry) -> None:
    for bad in (123, None, "  "):
        with pytest.raises(InvalidArgumentError, match="collection path"):
            Collection.open(bad, registry=registry)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="True or False"):
        Collection.open(tmp_path / "c", create="no", registry=registry)  # type: ignore[arg-type]
    assert not (tmp_path / "c").exists()
    coll = Collection.open(tmp_path / "c", create=True, model=FAKE_MODEL, registry=registry)
    coll.close()
    coll.close()  # twice is fine
    for use in (lambda: coll.search("cat"), lambda: len(coll), lambda: coll.add([tmp_path]), coll.stats):
        with pytest.raises(CollectionError, match="was closed"):
            use()


def test_open_refuses_bad_models_and_index_settings_before_writing(tmp_path: Path, registry) -> None:
    cases: list[dict[str, Any]] = [
        {"model": 5},
        {"model": {"text": "fake"}},
        {"index": IndexConfig("hnsw", {"m": -3})},  # would exhaust memory building the graph
        {"index": IndexConfig("hnsw", {"m": "8"})},
        {"index": IndexConfig("hnsw", {"M": 8})},  # unknown: refused, not ignored
        {"index": IndexConfig("flat", {"bogus": 1})},
        {"index": IndexConfig("hnsw", [1])},  # type: ignore[arg-type]
        {"index": IndexConfig("milvus", {"index_type": "DISKANN"})},
        {"index": IndexConfig("milvus", {"collection": "bad name"})},
        {"index": 5},
        {"registry": "x"},
    ]
    for kwargs in cases:
        kwargs = {"model": FAKE_MODEL, "registry": registry, **kwargs}
        with pytest.raises(InvalidArgumentError):
            Collection.open(tmp_path / "c", create=True, **kwargs)
        assert not (tmp_path / "c").exists(), kwargs
    with pytest.raises(InvalidArgumentError):
        Collection.open(tmp_path / "c\x00d", create=True, registry=registry)
    ok = Collection.open(
        tmp_path / "c", create=True, model=FAKE_MODEL, registry=registry, index=IndexConfig("hnsw", {"m": 8})
    )
    ok.close()


def test_numbers_in_filters_match_however_they_were_written(tmp_path: Path, open_collection: Open) -> None:
    media = corpus(tmp_path / "media")
    coll = open_collection()
    coll.add([media / "animals"], metadata={"n": 1})
    coll.add([media / "money"], metadata={"n": 2.0})
    assert set(names(coll.search("x", k=10, where={"n": 1.0}))) == {"cat.txt", "dog.txt"}
    assert set(names(coll.search("x", k=10, where={"n": 2}))) == {"revenue.txt", "invoice.txt"}
    assert len(coll.search("x", k=10, where={"n": [1, 2]})) == 4
    # values typed on a command line are text
    assert len(coll.search("x", k=10, where={"n": ["1.0", "2"]})) == 4
    assert len(coll.search("x", k=10, where={"name": "cat.txt"})) == 1
    # only a number's own spelling is widened: text like "1.10" or "007" stays text
    coll.add([media / "animals" / "cat.txt"], metadata={"v": "1.1", "zip": "7"})
    assert coll.search("x", k=10, where={"v": "1.10"}) == [] and coll.search("x", k=10, where={"zip": "007"}) == []
    assert len(coll.search("x", k=10, where={"v": "1.1"})) == 1
    # a boolean is not the number 1; typed on a command line it is "true"
    coll.add([media / "money" / "invoice.txt"], metadata={"paid": True})
    assert names(coll.search("x", k=10, where={"paid": True})) == names(coll.search("x", k=10, where={"paid": "true"}))
    assert names(coll.search("x", k=10, where={"paid": "true"})) == ["invoice.txt"]
    assert coll.search("x", k=10, where={"paid": 1}) == [] and coll.search("x", k=10, where={"n": True}) == []


def test_a_collection_saved_with_settings_now_out_of_range_still_opens(tmp_path: Path, registry) -> None:
    """Settings are checked when given, not when a collection saved with them opens."""
    media = corpus(tmp_path / "media")
    with Collection.open(tmp_path / "c", create=True, model=FAKE_MODEL, registry=registry, index="hnsw") as coll:
        coll.add([media])
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    manifest["config"]["index"]["params"] = {"m": 512}  # allowed by an older version
    (tmp_path / "c" / "manifest.json").write_text(json.dumps(manifest))
    with Collection.open(tmp_path / "c", registry=registry) as coll:
        assert len(coll.search("cat", k=2)) == 2


def test_metadata_given_again_applies_without_re_reading(tmp_path: Path, open_collection: Open) -> None:
    media = corpus(tmp_path / "media")
    coll = open_collection()
    assert coll.add([media, media / "animals", media / "animals" / "cat.txt"]).added == 4  # each file once
    report = coll.add([media / "animals"], metadata={"team": "zoo"})
    assert (report.added, report.updated, report.unchanged, report.metadata_updated) == (0, 0, 0, 2)
    assert "2 with new metadata" in report.summary()
    assert set(names(coll.search("x", k=10, where={"team": "zoo"}))) == {"cat.txt", "dog.txt"}
    cat = next(i for i in coll.items() if i.uri.endswith("cat.txt"))
    assert cat.metadata["name"] == "cat.txt" and cat.metadata["team"] == "zoo"  # merged, not replaced
    assert coll.add([media / "animals"], metadata={"team": "zoo"}).unchanged == 2  # nothing new


def test_metadata_given_from_python_is_filterable(tmp_path: Path, open_collection: Open) -> None:
    media = corpus(tmp_path / "media")
    coll = open_collection()
    coll.add([media / "animals"], metadata={"team": "zoo", "year": 2026, "public": True})
    coll.add([media / "money"], metadata={"team": "finance", "year": 2025, "public": False})
    assert set(names(coll.search("cat", k=10, where={"team": "zoo"}))) == {"cat.txt", "dog.txt"}
    assert set(names(coll.search("cat", k=10, where={"year": (2025,), "public": False}))) == {
        "revenue.txt",
        "invoice.txt",
    }


def test_missing_and_corrupt_collections(tmp_path: Path, registry) -> None:
    with pytest.raises(CollectionNotFoundError):
        Collection.open(tmp_path / "nope", registry=registry)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "file").write_text("x")
    with pytest.raises(CollectionError, match="not an xmodal collection"):
        Collection.open(tmp_path / "junk", registry=registry, create=True, model=FAKE_MODEL)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "manifest.json").write_text("{not json")
    with pytest.raises(CollectionError, match="corrupt manifest"):
        Collection.open(tmp_path / "bad", registry=registry)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(CollectionError):
        Collection.open(tmp_path / "afile", registry=registry, create=True)


def test_corrupt_catalog_is_a_clear_error(tmp_path: Path, open_collection: Open, registry) -> None:
    coll = open_collection()
    coll.close()
    (tmp_path / "coll" / "catalog.sqlite").write_bytes(b"this is not sqlite" * 100)
    for extra in ("-wal", "-shm"):
        (tmp_path / "coll" / f"catalog.sqlite{extra}").unlink(missing_ok=True)
    with pytest.raises(CollectionError):
        Collection.open(tmp_path / "coll", registry=registry)


def test_encoder_mismatch_and_reembed(tmp_path: Path, open_collection: Open, registry) -> None:
    coll = open_collection()
    coll.add([corpus(tmp_path / "media")])
    coll.close()
    other = ModelConfig(text="bow", photo=None, image="pixels", ocr=None, asr=None)
    with pytest.raises(EncoderMismatchError, match="--reembed"):
        Collection.open(tmp_path / "coll", registry=registry, model=other)
    again = Collection.open(tmp_path / "coll", registry=registry, model=other, reembed=True)
    assert again.config.model == other and len(again) == 4
    assert names(again.search("invoice", k=1)) == ["invoice.txt"]
    again.close()
    manifest = json.loads((tmp_path / "coll" / "manifest.json").read_text())
    assert manifest["config"]["model"]["image"] == "pixels"

    # an installed encoder that now makes other vectors (a new version) is caught when it loads
    upgraded = EncoderRegistry()
    upgraded.register("bow", BagOfWordsEncoderV2)
    upgraded.register("pixels", PixelEncoder)
    stale = Collection.open(tmp_path / "coll", registry=upgraded)
    with pytest.raises(EncoderMismatchError, match="reembed"):
        stale.search("invoice")
    # re-indexing only unchanged files says so too, instead of reporting success
    with pytest.raises(EncoderMismatchError, match="text encoder changed: bow 1 -> bow 2"):
        stale.add([tmp_path / "media"])
    assert stale.encoder_change() == "text encoder changed: bow 1 -> bow 2"
    stale.reembed(stale.config.model)  # what the demo does with its own collection
    assert stale.encoder_change() is None and names(stale.search("invoice", k=1)) == ["invoice.txt"]
    stale.close()


class ReversedWordsEncoder(BagOfWordsEncoder):
    """Another text model: each word spelled backwards, so its vectors differ from bow's."""

    name = "rev"

    def __init__(self, ref: str | None = None) -> None:
        super().__init__(ref)
        self.space = "rev-v1"

    def encode_batch(self, modality: Modality, inputs: Sequence[Any]) -> np.ndarray:
        return super().encode_batch(modality, [" ".join(w[::-1] for w in str(t).split()) for t in inputs])


def test_an_open_collection_follows_a_reembed_by_another_process(
    tmp_path: Path, open_collection: Open, registry
) -> None:
    """`xmodal serve` holds the collection open while `xmodal index --reembed --model ...` runs
    elsewhere: its next search and its next add use the new model, not the one it loaded."""
    registry.register("rev", ReversedWordsEncoder)
    server = open_collection()
    server.add([corpus(tmp_path / "media")])
    assert names(server.search("invoice", k=1)) == ["invoice.txt"]
    before = server.model_key
    rev = ModelConfig(text="rev", photo=None, image=None, ocr=None, asr=None)
    Collection.open(tmp_path / "coll", registry=registry, model=rev, reembed=True).close()  # the other process
    for query, name in (("invoice consulting", "invoice.txt"), ("quarterly revenue", "revenue.txt")):
        assert names(server.search(query, k=1)) == [name]
    assert server.config.model.text == "rev" and server.model_key != before
    write(tmp_path / "media2" / "kite.txt", "a red kite over the beach")
    server.add([tmp_path / "media2"])
    assert names(server.search("red kite beach", k=1)) == ["kite.txt"]
    server.close()
    again = Collection.open(tmp_path / "coll", registry=registry)
    assert again.encoder_change() is None and len(again) == 5
    assert names(again.search("red kite beach", k=1)) == ["kite.txt"]
    again.close()


def test_a_crash_between_reembed_commit_and_manifest_write_is_repaired(
    tmp_path: Path, open_collection: Open, registry
) -> None:
    coll = open_collection()
    coll.add([corpus(tmp_path / "media")])
    coll.close()
    old_manifest = (tmp_path / "coll" / "manifest.json").read_text()
    other = ModelConfig(text="bow", photo=None, image="pixels", ocr=None, asr=None)
    Collection.open(tmp_path / "coll", registry=registry, model=other, reembed=True).close()
    # as if the process died after the catalog commit, before the manifest was written
    (tmp_path / "coll" / "manifest.json").write_text(old_manifest)
    again = Collection.open(tmp_path / "coll", registry=registry)
    assert again.config.model == other
    assert json.loads((tmp_path / "coll" / "manifest.json").read_text())["config"]["model"]["image"] == "pixels"
    assert names(again.search("invoice", k=1)) == ["invoice.txt"]
    again.close()


def test_a_bad_index_kind_leaves_the_collection_usable(tmp_path: Path, open_collection: Open, registry) -> None:
    coll = open_collection()
    coll.add([corpus(tmp_path / "media")])
    coll.close()
    with pytest.raises(InvalidArgumentError, match="unknown index kind"):
        Collection.open(tmp_path / "coll", registry=registry, index="bogus")
    with pytest.raises(InvalidArgumentError):
        Collection.open(tmp_path / "new", registry=registry, create=True, model=FAKE_MODEL, index="bogus")
    assert not (tmp_path / "new").exists()
    again = Collection.open(tmp_path / "coll", registry=registry)
    assert again.config.index.kind == "flat" and len(again) == 4
    again.close()


def test_a_reader_sees_writes_from_another_process(tmp_path: Path, open_collection: Open, registry) -> None:
    media = corpus(tmp_path / "media")
    reader = open_collection()
    reader.add([media / "animals"])
    writer = Collection.open(tmp_path / "coll", registry=registry)
    writer.add([media / "money"])
    write(media / "animals" / "cat.txt", "the cat studies invoices")
    writer.add([media / "animals"])
    writer.close()
    assert names(reader.search("quarterly revenue", k=1)) == ["revenue.txt"]
    assert "cat.txt" in names(reader.search("studies invoices", k=2))
    reader.add([media])  # its own write after the refresh keeps everything
    reader.close()
    final = Collection.open(tmp_path / "coll", registry=registry)
    assert len(final) == 4 and len(final.index) == final.catalog.vector_count() == 4
    final.close()


def test_failures_do_not_lose_indexed_items(tmp_path: Path, open_collection: Open) -> None:
    media = corpus(tmp_path / "media")
    coll = open_collection()
    coll.add([media])
    (media / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    (media / "empty.txt").write_bytes(b"")
    (media / "random.dat").write_bytes(bytes(range(256)) * 8)
    report = coll.add([media, tmp_path / "does-not-exist"])
    failed = {Path(p).name: r for p, r in report.failures}
    assert set(failed) == {"broken.png", "empty.txt", "does-not-exist"}
    assert report.skipped == 1 and report.unchanged == 4
    assert len(coll) == 4 and names(coll.search("dog", k=1)) == ["dog.txt"]


def test_symlink_loops_terminate(tmp_path: Path, open_collection: Open) -> None:
    media = corpus(tmp_path / "media")
    (media / "animals" / "loop").symlink_to(media)
    (media / "self").symlink_to(media / "self")
    coll = open_collection()
    report = coll.add([media])
    assert report.added == 4
    assert any("loop" in reason or "link" in reason for _, reason in report.failures)


def test_hidden_files_and_the_collection_itself_are_skipped(tmp_path: Path, open_collection: Open) -> None:
    media = corpus(tmp_path / "media")
    write(media / ".secret.txt", "hidden words")
    coll = open_collection(path=media / "index-here")
    report = coll.add([media])
    assert report.added == 4 and report.failed == 0


@pytest.mark.parametrize("kind", ["hnsw", "milvus"])
def test_other_index_engines_behind_the_collection(tmp_path: Path, open_collection: Open, registry, kind: str) -> None:
    if kind == "milvus":
        pytest.importorskip("pymilvus")
    coll = open_collection(index=kind)
    coll.add([corpus(tmp_path / "media")])
    assert names(coll.search("quarterly revenue", k=1)) == ["revenue.txt"]
    assert len(coll.search("revenue", k=10, where={"folder": "animals"})) == 2
    coll.delete([coll.search("dog", k=1)[0].id])
    coll.close()
    again = Collection.open(tmp_path / "coll", registry=registry)
    assert again.config.index.kind == kind and len(again.index) == 3
    assert "dog.txt" not in names(again.search("dog barks", k=3))
    again.close()


def test_mix_merge_by_hand() -> None:
    from xmodal.search import mix_merge, words_weight

    look = {"a": (0.9, 1), "b": (0.8, 2), "c": (0.1, 3)}
    words = {"c": (0.7, 30), "b": (0.2, 20)}
    # a is not listed by `words`: it gets that row's lowest listed cosine, 0.2
    a, b, c = 0.5 * 0.9 + 0.5 * 0.2, 0.5 * 0.8 + 0.5 * 0.2, 0.5 * 0.1 + 0.5 * 0.7
    assert mix_merge([look, words], (0.5, 0.5), k=3) == [(round(a, 6), 1), (round(b, 6), 2), (round(c, 6), 30)]
    assert mix_merge([look, words], (0.5, 0.5), k=1) == [(round(a, 6), 1)]
    # the words weigh 0.8: c's exact words beat b's look; each keeps its strongest row's vector
    a, b, c = 0.2 * 0.9 + 0.8 * 0.2, 0.2 * 0.8 + 0.8 * 0.2, 0.2 * 0.1 + 0.8 * 0.7
    assert mix_merge([look, words], (0.2, 0.8), k=3) == [(round(c, 6), 30), (round(a, 6), 1), (round(b, 6), 2)]
    # cut to depth 2: c is third in `look`, so it gets look's floor there (0.8)
    c2 = 0.2 * 0.8 + 0.8 * 0.7
    assert mix_merge([look, words], (0.2, 0.8), k=1, depth=2) == [(round(c2, 6), 30)]
    assert words_weight(0) == 0.0 and words_weight(2) == 0.5 and words_weight(18) == 0.9


def test_fused_rankings_do_not_depend_on_k(tmp_path: Path, open_collection: Open) -> None:
    """Each row is ranked to a fixed depth before fusion, so asking for fewer hits gives the
    start of the same list (not a fusion of shallower rankings)."""
    import numpy as np

    from tests.conftest import bow_vector

    rng = np.random.default_rng(0)
    vocab = ["alpha", "beta", "gamma", "delta", "omega", "kappa", "sigma", "theta"]
    for i in range(60):
        write(tmp_path / "m" / f"t{i}.txt", " ".join(rng.choice(vocab, size=int(rng.integers(2, 7)))))
    coll = open_collection()
    coll.add([tmp_path / "m"])
    for a, b in [("alpha beta", "gamma"), ("omega", "kappa sigma"), ("theta delta", "alpha")]:
        rows = np.stack([bow_vector(a), bow_vector(b)])
        full = [(h.id, h.score) for h in coll.pipeline.search_vector(rows, k=10)]
        assert len(full) == 10
        for k in (1, 3, 5):
            assert [(h.id, h.score) for h in coll.pipeline.search_vector(rows, k=k)] == full[:k]


def test_an_image_query_matches_by_look_and_by_its_words(tmp_path: Path, open_collection: Open) -> None:
    """Image tower (mean colour) and OCR text are two rows of one query, fused by rank."""
    from PIL import Image, ImageDraw, ImageFont

    coll = open_collection(model=ModelConfig(text="bow", photo=None, image="pixels", ocr="rapidocr", asr=None))
    png(tmp_path / "m" / "red.png", (220, 20, 20))
    png(tmp_path / "m" / "green.png", (20, 200, 20))
    write(tmp_path / "m" / "bread.txt", "banana bread with walnuts")
    write(tmp_path / "m" / "other.txt", "tax return deadline")
    coll.add([tmp_path / "m"])
    img = Image.new("RGB", (700, 140), (255, 170, 170))  # pinkish red: the look says "red"
    try:
        font = ImageFont.truetype("DejaVuSans.ttf", 48)
    except OSError:
        font = ImageFont.load_default(size=48)
    ImageDraw.Draw(img).text((30, 40), "banana bread", fill="black", font=font)
    img.save(tmp_path / "query.png")
    names = [h.metadata["name"] for h in coll.search(Query.image(tmp_path / "query.png"), k=2)]
    assert sorted(names) == ["bread.txt", "red.png"]
    model = ModelConfig(text="bow", photo=None, image="pixels", ocr=None, asr=None)
    only_look = open_collection(tmp_path / "c2", model=model)
    only_look.add([tmp_path / "m"])
    assert only_look.search(Query.image(tmp_path / "query.png"), k=1)[0].metadata["name"] == "red.png"


def test_reembed_keeps_the_stored_text_of_a_file_that_is_gone(tmp_path: Path, open_collection: Open, registry) -> None:
    coll = open_collection()
    write(tmp_path / "m" / "a.txt", "quarterly revenue report")
    write(tmp_path / "m" / "b.txt", "garden party invitation")
    coll.add([tmp_path / "m"])
    coll.close()
    (tmp_path / "m" / "a.txt").unlink()
    other = ModelConfig(text="bow", photo=None, image="pixels", ocr=None, asr=None)
    with Collection.open(tmp_path / "coll", registry=registry, model=other, reembed=True) as again:
        assert again.catalog.text_segments(again.search("revenue", k=1)[0].id)[0][1].text == "quarterly revenue report"
        assert names(again.search("revenue", k=1)) == ["a.txt"]


def test_a_relative_model_directory_is_stored_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from xmodal.config import model_from_spec

    (tmp_path / "my-model").mkdir()
    (tmp_path / "my-model" / "xmodal_encoder.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    seen: list[str] = []

    def modalities_of(spec: str) -> frozenset[Modality]:
        seen.append(spec)
        return frozenset({Modality.IMAGE})

    assert model_from_spec("my-model", modalities_of).image == str(tmp_path / "my-model")
    assert model_from_spec("clip:my-model", modalities_of).image == f"clip:{tmp_path / 'my-model'}"
    assert model_from_spec("minilm", modalities_of).image == "minilm"  # names stay names
