"""Requests served at the same time: models are never entered from two threads, thumbnails
made by concurrent requests do not trip over each other."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from api_support import ApiEnv, FakeEncoder, make_env_with

from xmodal.api.service import SearchRequest
from xmodal.search import Query
from xmodal.types import Modality


class OneThreadEncoder(FakeEncoder):
    """Like a Rust tokenizer or a PocketSphinx decoder: entering it from a second thread while
    a first is inside fails ("Already borrowed")."""

    def __init__(self) -> None:
        super().__init__()
        self._inside = threading.Lock()

    def encode_batch(self, modality: Modality, inputs: Sequence[Any]) -> np.ndarray:
        if not self._inside.acquire(blocking=False):
            raise RuntimeError("Already borrowed")
        try:
            time.sleep(0.002)  # long enough for the other thread to arrive
            return super().encode_batch(modality, inputs)
        finally:
            self._inside.release()


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[ApiEnv]:
    yield from make_env_with(tmp_path, OneThreadEncoder())


def test_search_during_upload_does_not_share_the_model(guarded: ApiEnv) -> None:
    svc = guarded.client.app.state.service  # type: ignore[attr-defined]
    admin = svc.authenticate(guarded.keys["admin"])
    alice = svc.authenticate(guarded.keys["alice"])
    docs = guarded.root / "docs"
    docs.mkdir()
    paths = []
    for i in range(40):
        path = docs / f"doc{i}.txt"
        path.write_text(f"note number {i} about lakes and rivers " * 3)
        paths.append(path)
    errors: list[BaseException] = []
    done = threading.Event()

    def upload() -> None:
        try:
            for path in paths:  # one file per request, as the web page uploads
                svc.add_files(admin, [path], None, ["public"])
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=upload)
    thread.start()
    n = 0
    while not done.is_set() and n < 2000:
        try:  # a new text each time: the embedding cache must not answer it
            svc.search(alice, SearchRequest(Query.text(f"lake {n}"), k=3))
        except BaseException as exc:
            errors.append(exc)
            break
        n += 1
    thread.join()
    assert not errors, errors[0]
    assert n > 0
    assert len(guarded.coll) == len(paths)


class SlowBatchEncoder(OneThreadEncoder):
    """Encodes a batch of indexed files slowly (a query, one text, at once)."""

    def encode_batch(self, modality: Modality, inputs: Sequence[Any]) -> np.ndarray:
        if len(inputs) > 1:
            time.sleep(0.2)
        return super().encode_batch(modality, inputs)


def test_searches_run_while_one_large_index_request_runs(tmp_path: Path) -> None:
    made = make_env_with(tmp_path, SlowBatchEncoder())
    env = next(made)
    svc = env.client.app.state.service  # type: ignore[attr-defined]
    admin, alice = svc.authenticate(env.keys["admin"]), svc.authenticate(env.keys["alice"])
    docs = env.root / "docs"
    docs.mkdir()
    paths = []
    for i in range(100):  # four batches of 32 or fewer: ~0.8 s of encoding in one request
        paths.append(docs / f"doc{i}.txt")
        paths[-1].write_text(f"note number {i} about lakes and rivers")
    errors: list[BaseException] = []
    done = threading.Event()

    def index() -> None:
        try:
            svc.add_files(admin, paths, None, ["public"])
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=index)
    thread.start()
    during = 0
    for n in range(10_000):
        if done.is_set():
            break
        try:
            svc.search(alice, SearchRequest(Query.text(f"lake {n}"), k=3))
        except BaseException as exc:
            errors.append(exc)
            break
        during += not done.is_set()
    thread.join()
    assert not errors, errors[0]
    assert during >= 3  # answered between the request's files, not after all of them
    assert len(env.coll) == len(paths)
    assert {h["uri"] for h in svc.search(alice, SearchRequest(Query.text("note 7 lakes"), k=100))["hits"]} == {
        str(p) for p in paths
    }
    made.close()


def test_concurrent_thumbnails_of_one_item(tmp_path: Path) -> None:
    """Requests for the same preview at once: each gets the thumbnail, none a missing file,
    and older versions of the item's thumbnail are cleaned up."""
    from PIL import Image

    from xmodal.api.previews import thumbnail

    src = tmp_path / "photo.png"
    Image.new("RGB", (400, 300), (10, 120, 200)).save(src)
    previews = tmp_path / "previews"
    previews.mkdir()
    stale = previews / "00000000000000aa-000000000000.jpg"
    stale.write_bytes(b"old version")
    errors: list[BaseException] = []
    results: list[Path] = []

    def fetch(barrier: threading.Barrier) -> None:
        try:
            barrier.wait()
            made = thumbnail(src, previews, "00000000000000aa", "f" * 64, 64, None)
            with Image.open(made) as im:  # the file it returned is there and whole
                assert im.size == (64, 48)
            results.append(made)
        except BaseException as exc:
            errors.append(exc)

    for _ in range(5):
        for old in previews.glob("*.jpg"):
            old.unlink()
        barrier = threading.Barrier(8)
        threads = [threading.Thread(target=fetch, args=(barrier,)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors, errors[0]
    assert len(results) == 40
    assert sorted(p.name for p in previews.iterdir()) == ["00000000000000aa-ffffffffffff.jpg"]
    stale.write_bytes(b"old version")
    thumbnail(src, previews, "00000000000000aa", "e" * 64, 64, None)  # the content changed
    assert sorted(p.name for p in previews.iterdir()) == ["00000000000000aa-eeeeeeeeeeee.jpg"]
