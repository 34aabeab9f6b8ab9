"""`xmodal index --model clip:DIR` / `clap:DIR` end to end, on tiny random models made here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hf_tiny import make_tiny_clap, make_tiny_clip

from tests.media_makers import png, wav
from xmodal.cli.main import main
from xmodal.collection import Collection
from xmodal.encoders.registry import EncoderRegistry
from xmodal.errors import EncoderMismatchError
from xmodal.search import Query


def test_clip_collection_indexes_images_with_the_image_tower(tmp_path: Path) -> None:
    model = make_tiny_clip(tmp_path / "clip")
    media = tmp_path / "media"
    png(media / "red.png", (230, 20, 20), size=(40, 40))
    png(media / "blue.png", (20, 20, 230), size=(40, 40))
    (media / "note.txt").write_text("a note about red things", encoding="utf-8")
    reg = EncoderRegistry()
    with Collection.open(tmp_path / "c", create=True, model=f"clip:{model}", registry=reg) as coll:
        assert coll.config.model.text == coll.config.model.image == f"clip:{model}"
        coll.add([media])
        assert coll.dim == 8 and coll.manifest["space"].startswith("clip:")
        kinds = {r[0] for r in coll.catalog._db.execute("SELECT kind FROM vectors")}
        assert {"image", "text"} <= kinds
        top = coll.search(Query.image(media / "red.png"), k=1, modality="image")[0]
        assert top.metadata["name"] == "red.png" and top.score == pytest.approx(1.0, abs=1e-4)
        assert len(coll.search("red", k=3)) == 3
    with pytest.raises(EncoderMismatchError):
        Collection.open(tmp_path / "c", model="minilm", registry=reg)


def test_clap_collection_via_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = make_tiny_clap(tmp_path / "clap")
    media = tmp_path / "media"
    wav(media / "low.wav", seconds=1.0, rate=16000, freq=220.0)
    wav(media / "high.wav", seconds=1.0, rate=16000, freq=3000.0)
    coll = str(tmp_path / "c")
    assert main(["index", str(media), "--model", str(model), "-c", coll, "-q"]) == 0
    capsys.readouterr()
    assert main(["search", "--audio", str(media / "high.wav"), "-c", coll, "--json", "-k", "1"]) == 0
    hit = json.loads(capsys.readouterr().out)["hits"][0]
    assert Path(hit["uri"]).name == "high.wav" and hit["score"] == pytest.approx(1.0, abs=1e-4)
    assert main(["search", "a high whistle", "-c", coll, "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["hits"]) == 2


def test_long_audio_is_cut_into_tower_windows(tmp_path: Path) -> None:
    model = make_tiny_clap(tmp_path / "clap")
    media = tmp_path / "media"
    wav(media / "long.wav", seconds=25.0, rate=16000, freq=440.0)
    with Collection.open(tmp_path / "c", create=True, model=f"clap:{model}", registry=EncoderRegistry()) as coll:
        coll.add([media])
        spans = [(s, e) for k, s, e in coll.catalog._db.execute("SELECT kind, start, end FROM vectors") if k == "audio"]
        assert sorted(spans) == [(0.0, 10.0), (10.0, 20.0), (20.0, 25.0)]
        hit = coll.search(Query.audio(media / "long.wav"), k=1)[0]
        assert hit.metadata["name"] == "long.wav" and hit.start is not None and hit.end is not None
