"""`xmodal eval` against a real collection (fake encoder, real SQLite + FAISS): the metrics it
prints are the ones worked out by hand from the ranking the collection returns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import BagOfWordsEncoder, write
from xmodal.cli.main import main
from xmodal.encoders import registry as registry_module
from xmodal.encoders.registry import EncoderRegistry


@pytest.fixture(autouse=True)
def fake_default_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    reg = EncoderRegistry()
    reg.register("bow", BagOfWordsEncoder)
    monkeypatch.setattr(registry_module, "_default", reg)


def _fruit_and_car_collection(tmp_path: Path) -> str:
    media = tmp_path / "m"
    write(media / "apple.txt", "apple fruit red")
    write(media / "banana.txt", "banana fruit yellow")
    write(media / "car.txt", "car engine wheels")
    coll = str(tmp_path / "c")
    assert main(["index", str(media), "--model", "bow", "-c", coll, "-q"]) == 0
    return coll


def test_eval_cli_on_a_collection(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    coll = _fruit_and_car_collection(tmp_path)
    queries = tmp_path / "q.jsonl"
    lines = [
        {"query": "red apple", "relevant": ["apple.txt"]},  # rank 1
        {"query": "yellow fruit", "relevant": ["banana.txt"]},  # rank 1
        {"query": "engine", "relevant": ["car.txt", "apple.txt"]},  # car rank 1, apple later
    ]
    queries.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["eval", str(queries), "-c", coll, "--json", "--report", str(tmp_path / "rep")]) == 0
    out = json.loads(capsys.readouterr().out)
    flat = json.dumps(out)
    assert "recall" in flat.lower() and "mrr" in flat.lower()
    metrics = out.get("metrics", out)
    mrr = next(v for k, v in metrics.items() if k.lower().startswith("mrr"))
    assert mrr == pytest.approx(1.0)
    assert any(p.suffix == ".md" for p in (tmp_path / "rep").iterdir())
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json}\n", encoding="utf-8")
    assert main(["eval", str(bad), "-c", coll]) != 0
    assert "line 1" in capsys.readouterr().err


def test_eval_in_keyword_mode_ranks_only_items_that_say_the_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    coll = _fruit_and_car_collection(tmp_path)
    queries = tmp_path / "q.jsonl"
    lines = [
        {"query": "wheels", "relevant": ["car.txt"]},  # rank 1
        {"query": "fruit salad", "relevant": ["banana.txt", "apple.txt"]},  # both hold "fruit": ranks 1-2
        {"query": "red engine", "relevant": ["banana.txt"]},  # says neither word: not ranked at all
    ]
    queries.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["eval", str(queries), "-c", coll, "--json", "--mode", "keyword"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "keyword"
    assert out["metrics"]["mrr@10"] == pytest.approx(2 / 3)
    assert out["metrics"]["recall@10"] == pytest.approx(2 / 3)
