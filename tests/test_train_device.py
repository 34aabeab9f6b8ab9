"""Where training runs (TrainConfig.device / ``xmodal train --device``): the CPU by default, a
GPU when asked for and present; a GPU asked for but absent is one clear error before anything
is written. The CUDA test runs only where torch sees a GPU."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file
from test_train import SHAPES, _cfg, draw

from xmodal.encoders.pictogram import PictogramEncoder
from xmodal.errors import InvalidArgumentError
from xmodal.train.data import PairSet
from xmodal.train.trainer import TrainConfig, resolve_device, train

NO_CUDA = not torch.cuda.is_available()


@pytest.fixture(scope="module")
def text():  # type: ignore[no-untyped-def]
    from xmodal.encoders.minilm import MiniLMEncoder

    return MiniLMEncoder()


@pytest.fixture(scope="module")
def pairs() -> PairSet:
    pixels, captions = [], []
    for shape in SHAPES:
        for colour in [(0, 0, 0), (200, 30, 30)]:
            pixels.append(np.asarray(draw(shape, colour), dtype=np.uint8))
            captions.append([f"a {shape}", shape])
    return PairSet(np.stack(pixels), captions, [f"{i}.png" for i in range(len(captions))])


def _check_saved(out: Path) -> None:
    weights = load_file(str(out / "model.safetensors"))
    assert {w.dtype for w in weights.values()} <= {np.dtype("float32"), np.dtype("int64")}
    vecs = PictogramEncoder(str(out)).encode_images([draw("circle", (0, 0, 0)).convert("RGB")])
    assert vecs.shape == (1, 384) and np.isfinite(vecs).all()


@pytest.mark.parametrize("bad", ["cuda:x", "cuda:-1"])
def test_cli_malformed_device_gives_one_line(bad: str, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from xmodal.cli.main import main

    (tmp_path / "pairs.jsonl").write_text("{}\n", encoding="utf-8")
    assert main(["train", str(tmp_path / "pairs.jsonl"), "--out", str(tmp_path / "m"), "--device", bad]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("xmodal: error: training device must be") and "\n" not in err
    assert not (tmp_path / "m").exists()


def test_default_device_is_the_cpu() -> None:
    assert TrainConfig().device == "cpu" and resolve_device("cpu") == torch.device("cpu")


def test_auto_trains_where_torch_can_and_saves_cpu_weights(pairs: PairSet, text, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    report = train(pairs, text, tmp_path / "m", _cfg(epochs=2, device="auto", bf16=True), log=lambda m: None)
    assert report.best_epoch >= 1 and all(np.isfinite(r["loss"]) for r in report.epochs)
    card = json.loads((tmp_path / "m" / "xmodal_encoder.json").read_text())
    assert card["train_config"]["device"] == "auto"
    _check_saved(tmp_path / "m")


@pytest.mark.parametrize("bad", ["tpu", "gpu", "", "cuda0", "cuda:x", "cuda:-1", "cuda:", "cpu:1", " cpu"])
def test_unknown_device_names_are_refused(bad: str) -> None:
    with pytest.raises(InvalidArgumentError, match="training device must be"):
        TrainConfig(device=bad)


@pytest.mark.skipif(not NO_CUDA, reason="this machine has a CUDA GPU")
def test_cuda_without_a_gpu_is_one_clear_error_and_writes_nothing(pairs: PairSet, text, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidArgumentError, match="torch sees no CUDA GPU"):
        train(pairs, text, tmp_path / "m", _cfg(device="cuda"), log=lambda m: None)
    assert not (tmp_path / "m").exists()


@pytest.mark.skipif(not NO_CUDA, reason="this machine has a CUDA GPU")
def test_cli_device_cuda_without_a_gpu_gives_one_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from xmodal.cli.main import main

    lines = []
    for i, shape in enumerate(SHAPES[:3]):
        draw(shape, (0, 0, 0)).save(tmp_path / f"{i}.png")
        lines.append(json.dumps({"image": f"{i}.png", "text": shape}))
    (tmp_path / "pairs.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    argv = ["train", str(tmp_path / "pairs.jsonl"), "--out", str(tmp_path / "m"), "--device", "cuda", "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("xmodal: error:") and "CUDA" in err and "\n" not in err
    assert not (tmp_path / "m").exists()


@pytest.mark.skipif(NO_CUDA, reason="needs a CUDA GPU")
def test_cuda_training_saves_weights_that_load_on_the_cpu(pairs: PairSet, text, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for bf16 in (False, True):
        out = tmp_path / f"m{int(bf16)}"
        report = train(pairs, text, out, _cfg(epochs=2, device="cuda", bf16=bf16, ema_decay=0.9), log=lambda m: None)
        assert report.best_epoch >= 1 and all(np.isfinite(r["loss"]) for r in report.epochs)
        _check_saved(out)
