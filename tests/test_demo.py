"""The README's first command, minus the setup: the demo must find what it promises."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from xmodal.demo import load_quotes, run_demo

pytestmark = pytest.mark.slow


def test_demo_corpus_source_is_bundled() -> None:
    quotes = load_quotes()
    assert len(quotes) > 200 and any("umbrella" in q for q in quotes)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (make setup installs it)")
def test_demo_finds_every_expected_item(tmp_path: Path) -> None:
    lines: list[str] = []
    missed = run_demo(tmp_path, None, log=lines.append)
    text = "\n".join(lines)
    assert missed == 0, text
    assert text.count("[ok]") == 11 and "0 failed" in text


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (make setup installs it)")
def test_demo_brings_its_own_stale_collection_up_to_date(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A demo collection built by an earlier xmodal (another bundled model version) is re-embedded,
    not left to fail at the first search."""
    import json
    import sqlite3

    from xmodal.collection import CATALOG
    from xmodal.encoders import registry
    from xmodal.encoders.pictogram import PictogramEncoder

    real_init = PictogramEncoder.__init__

    def older(self: PictogramEncoder, ref: str | None = None) -> None:
        real_init(self, ref)
        self.version = "pictogram:0"

    with monkeypatch.context() as m:  # the collection is built by "the previous release"
        m.setattr(PictogramEncoder, "__init__", older)
        m.setattr(registry, "_default", registry.EncoderRegistry())  # loaded encoders are cached there
        assert run_demo(tmp_path, None, log=lambda _: None) == 0
    manifest_path = tmp_path / "collection" / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    assert manifest["encoders"]["image"]["version"] == "pictogram:0"
    # ... and from before the photo tower: its manifest and its catalog's record name none
    del manifest["config"]["model"]["photo"], manifest["encoders"]["photo"]
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    with sqlite3.connect(tmp_path / "collection" / CATALOG) as db:
        state = json.loads(db.execute("SELECT value FROM meta WHERE key = 'model_state'").fetchone()[0])
        del state["model"]["photo"], state["encoders"]["photo"]
        db.execute("UPDATE meta SET value = ? WHERE key = 'model_state'", (json.dumps(state, sort_keys=True),))
    lines: list[str] = []
    assert run_demo(tmp_path, None, log=lines.append) == 0, "\n".join(lines)
    assert any("image encoder changed" in line and "re-embedding" in line for line in lines)
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    assert manifest["encoders"]["image"]["version"] != "pictogram:0"
    assert manifest["config"]["model"]["photo"] == "photo" and "photo" in manifest["encoders"]
