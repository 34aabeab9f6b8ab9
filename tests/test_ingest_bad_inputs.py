"""Issue 2's bad inputs through the whole ingest path: each is reported with its reason, the
rest is indexed, and nothing already indexed is lost."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import write
from tests.media_makers import bomb_png, empty_wav, long_wav_header, png, wav
from xmodal.collection import Collection
from xmodal.errors import CollectionBusyError
from xmodal.types import Modality

Open = Callable[..., Collection]


def test_bad_files_are_reported_and_nothing_is_lost(tmp_path: Path, open_collection: Open) -> None:
    good = tmp_path / "good"
    write(good / "keep.txt", "precious words about the harbour lighthouse")
    coll = open_collection()
    assert coll.add([good]).added == 1

    bad = tmp_path / "bad"
    bad.mkdir()
    data = png(bad / "whole.png", size=(200, 200)).read_bytes()
    (bad / "whole.png").unlink()
    (bad / "truncated.png").write_bytes(data[: len(data) // 3])
    (bad / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x13" * 300)
    (bad / "zero.txt").write_bytes(b"")
    bomb_png(bad / "huge.png")
    empty_wav(bad / "silence.wav")
    long_wav_header(bad / "two-hours.wav", seconds=2 * 3600)
    png(bad / "actually-a-picture.wav", (10, 200, 10))  # lying extension: indexed as an image
    wav(bad / "actually-a-sound.txt")  # lying extension: indexed as audio
    (bad / "latin1.txt").write_bytes("Un café à Paris près du phare".encode("latin-1"))

    report = coll.add([bad])
    reasons = {Path(p).name: r for p, r in report.failures}
    assert set(reasons) == {"truncated.png", "corrupt.jpg", "zero.txt", "huge.png", "silence.wav", "two-hours.wav"}
    assert "pixels" in reasons["huge.png"]
    assert reasons["two-hours.wav"] == "audio is 2 h long; the limit is 1 h"
    assert "no samples" in reasons["silence.wav"]
    assert "empty" in reasons["zero.txt"]
    assert report.added == 3 and report.by_modality == {"image": 1, "audio": 1, "text": 1}
    kinds = {i.metadata["name"]: i.modality.value for i in coll.items()}
    assert kinds["actually-a-picture.wav"] == "image" and kinds["actually-a-sound.txt"] == "audio"
    latin = next(i for i in coll.items() if i.metadata["name"] == "latin1.txt")
    assert "café" in latin.text and latin.metadata["encoding"] == "cp1252"
    assert coll.search("harbour lighthouse", k=1)[0].metadata["name"] == "keep.txt"
    assert len(coll) == 4


def test_odd_names_special_files_and_utf16(tmp_path: Path, open_collection: Open) -> None:
    root = tmp_path / "m"
    write(root / "aaa.txt", "the harbour lighthouse")
    write(root / "zzz.txt", "quarterly revenue grew")
    (root / os.fsdecode(b"bad\xffname.txt")).write_text("kept out")  # bytes that are not UTF-8
    (root / "notes16.txt").write_text("budget approved by the board", encoding="utf-16")
    os.mkfifo(root / "pipe.txt")  # met in a folder: skipped
    os.mkfifo(tmp_path / "named-pipe.txt")  # given by name: reading it would block forever
    coll = open_collection()
    report = coll.add([root, tmp_path / "named-pipe.txt"])
    assert report.added == 3 and not report.interrupted
    failed = dict(report.failures)
    assert failed == {
        str(root) + "/bad\\xffname.txt": "the name is not valid UTF-8: rename it to index it",
        str(tmp_path / "named-pipe.txt"): "not a regular file (a pipe, socket or device)",
    }
    (hit,) = coll.search("budget approved", k=1)
    assert hit.uri.endswith("notes16.txt") and hit.modality is Modality.TEXT
    # a folder given by a name that is not UTF-8 is one failure too (with --prune as well)
    odd = tmp_path / os.fsdecode(b"dir\xff")
    write(odd / "inside.txt", "never read")
    report = coll.add([odd], prune=True)
    assert report.added == 0 and list(dict(report.failures).values()) == [
        "the name is not valid UTF-8: rename it to index it"
    ]


def test_interrupted_ingest_keeps_what_was_committed(tmp_path: Path, open_collection: Open, registry) -> None:
    media = tmp_path / "m"
    for i in range(6):
        write(media / f"f{i}.txt", f"document number {i}")

    class StopAfterThree:
        n = 0

        def start(self, total: int) -> None:
            pass

        def advance(self, failed: int) -> None:
            self.n += 1
            if self.n == 3:
                raise KeyboardInterrupt

        def close(self) -> None:
            pass

    coll = open_collection()
    report = coll.add([media], progress=StopAfterThree(), batch_size=1)
    # the file read when Ctrl-C came is encoded and kept too
    assert report.interrupted and len(coll) == report.added == 3
    coll.close()
    again = Collection.open(tmp_path / "coll", registry=registry)
    assert len(again) == 3 and again.catalog.vector_count() == len(again.index) == 3
    assert again.add([media]).added == 3
    again.close()


def test_ctrl_c_between_catalog_commit_and_index_leaves_them_consistent(
    tmp_path: Path, open_collection: Open, registry
) -> None:
    media = tmp_path / "m"
    for i in range(4):
        write(media / f"f{i}.txt", f"document number {i}")
    coll = open_collection()

    def interrupted(ids, vectors):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt  # after the catalog committed the batch

    coll.index.add = interrupted  # type: ignore[method-assign]
    report = coll.add([media])
    assert report.interrupted and len(coll) == 4
    # the index was rebuilt from the catalog: every committed vector is searchable
    assert len(coll.index) == coll.catalog.vector_count() == 4
    assert len(coll.search("document number", k=10)) == 4
    coll.close()
    again = Collection.open(tmp_path / "coll", registry=registry)
    assert len(again.index) == again.catalog.vector_count() == 4 and again.add([media]).unchanged == 4
    again.close()


def test_a_second_writer_is_refused(tmp_path: Path, open_collection: Open) -> None:
    coll = open_collection()
    write(tmp_path / "m" / "a.txt", "words")
    with open(tmp_path / "coll" / "lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(CollectionBusyError, match="another writer"):
            coll.add([tmp_path / "m"])
    assert coll.add([tmp_path / "m"]).added == 1


def test_collections_inside_an_indexed_folder_are_not_media(tmp_path: Path, open_collection: Open) -> None:
    """Indexing a home folder that holds another collection must not index its manifest as a
    text document nor fail on its lock file; naming a collection as the folder says what it is."""
    media = tmp_path / "home"
    write(media / "notes" / "harbour.txt", "the harbour lighthouse at dusk")
    other = open_collection(media / "old-collection")
    other.add([media / "notes"])
    coll = open_collection(tmp_path / "coll")
    report = coll.add([media])
    assert (report.added, report.failed) == (1, 0)
    assert [Path(item.uri).name for item in coll.items()] == ["harbour.txt"]
    again = coll.add([media / "old-collection"])
    assert [(Path(p).name, r) for p, r in again.failures] == [
        ("old-collection", "an xmodal collection, not media (search it with -c)")
    ]
    # a folder that merely has a file named manifest.json is still media
    write(tmp_path / "web" / "manifest.json", '{"name": "a web app manifest"}')
    (tmp_path / "web" / "catalog.sqlite").write_bytes(b"")
    web = coll.add([tmp_path / "web"])
    assert web.added == 1 and [Path(p).name for p, _ in web.failures] == ["catalog.sqlite"]
