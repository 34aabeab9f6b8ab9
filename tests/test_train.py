"""Contrastive trainer: end to end on tiny drawn pictograms with the real MiniLM text tower."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from xmodal.encoders.pictogram import PictogramConfig, PictogramEncoder
from xmodal.encoders.registry import EncoderRegistry
from xmodal.errors import InvalidArgumentError, ModelError
from xmodal.train.augment import AugmentConfig
from xmodal.train.data import load_pairs
from xmodal.train.trainer import TrainConfig, next_epoch_overruns, train

SHAPES = ["circle", "square", "triangle", "cross", "horizontal line", "vertical line"]
TINY_ARCH = PictogramConfig(image_size=16, stages=((8, 1), (16, 1)), head="flatten")


def draw(shape: str, colour: tuple[int, int, int], size: int = 48) -> Image.Image:
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    box = (8, 8, size - 8, size - 8)
    if shape == "circle":
        d.ellipse(box, fill=colour)
    elif shape == "square":
        d.rectangle(box, fill=colour)
    elif shape == "triangle":
        d.polygon([(size // 2, 6), (6, size - 6), (size - 6, size - 6)], fill=colour)
    elif shape == "cross":
        d.line((8, 8, size - 8, size - 8), fill=colour, width=6)
        d.line((8, size - 8, size - 8, 8), fill=colour, width=6)
    elif shape == "horizontal line":
        d.rectangle((6, size // 2 - 4, size - 6, size // 2 + 4), fill=colour)
    else:
        d.rectangle((size // 2 - 4, 6, size // 2 + 4, size - 6), fill=colour)
    return img


@pytest.fixture(scope="module")
def minilm():  # type: ignore[no-untyped-def]
    from xmodal.encoders.minilm import MiniLMEncoder

    return MiniLMEncoder()


@pytest.fixture()
def pairs_file(tmp_path: Path) -> Path:
    lines = []
    for i, shape in enumerate(SHAPES):
        for j, colour in enumerate([(0, 0, 0), (200, 30, 30)]):
            p = tmp_path / f"{shape.replace(' ', '_')}_{j}.png"
            draw(shape, colour).save(p)
            lines.append({"image": p.name, "text": f"a {shape}"})
            if i % 2 == 0:
                lines.append({"image": p.name, "text": shape})
    f = tmp_path / "pairs.jsonl"
    f.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    return f


def _cfg(**kw) -> TrainConfig:  # type: ignore[no-untyped-def]
    base = dict(epochs=3, batch_size=8, lr=5e-3, warmup_steps=2, val_fraction=0.25, steps_per_epoch=4,
                progress=False, arch=TINY_ARCH, augment=AugmentConfig())  # fmt: skip
    return TrainConfig(**{**base, **kw})


def test_train_saves_a_loadable_encoder(pairs_file: Path, tmp_path: Path, minilm) -> None:  # type: ignore[no-untyped-def]
    pairs = load_pairs(pairs_file)
    assert len(pairs) == 12 and sum(len(c) for c in pairs.captions) == 18
    out = tmp_path / "model"
    report = train(pairs, minilm, out, _cfg(), log=lambda m: None)
    assert len(report.epochs) >= 1 and report.best_epoch >= 1
    row = report.epochs[0]
    for key in (
        "loss",
        "temperature",
        "val_t2i_recall@10",
        "val_i2t_recall@1",
        "val_alignment",
        "val_uniformity",
    ):
        assert np.isfinite(row[key]), key
    assert 0 < row["temperature"] < 1
    card = json.loads((out / "xmodal_encoder.json").read_text())
    assert card["encoder"] == "pictogram" and card["space"] == minilm.space
    enc = PictogramEncoder(str(out))
    img = draw("circle", (0, 0, 0)).convert("RGB")
    vecs = enc.encode_images([img, img])
    assert vecs.shape == (2, 384) and np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-5)
    assert np.allclose(vecs[0], vecs[1])
    # the registry finds it as a bare directory through its card
    assert EncoderRegistry().load(str(out)).info().name == "pictogram"


def test_training_is_reproducible(pairs_file: Path, tmp_path: Path, minilm) -> None:  # type: ignore[no-untyped-def]
    pairs = load_pairs(pairs_file)
    a = train(pairs, minilm, tmp_path / "a", _cfg(epochs=2, patience=5, vocab_loss_weight=0.5), log=lambda m: None)
    b = train(pairs, minilm, tmp_path / "b", _cfg(epochs=2, patience=5, vocab_loss_weight=0.5), log=lambda m: None)
    assert [r["loss"] for r in a.epochs] == [r["loss"] for r in b.epochs]
    wa = (tmp_path / "a" / "model.safetensors").read_bytes()
    assert wa == (tmp_path / "b" / "model.safetensors").read_bytes()


def test_interrupt_keeps_best_checkpoint(pairs_file: Path, tmp_path: Path, minilm) -> None:  # type: ignore[no-untyped-def]
    pairs = load_pairs(pairs_file)
    calls = {"n": 0}

    def interrupt_in_epoch_2(encode):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return {}

    out = tmp_path / "m"
    report = train(pairs, minilm, out, _cfg(epochs=5), evaluators=[interrupt_in_epoch_2], log=lambda m: None)
    assert report.interrupted and report.best_epoch == 1
    assert json.loads((out / "xmodal_encoder.json").read_text())["best_epoch"] == 1
    PictogramEncoder(str(out))  # loads: not corrupted
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".m.")]  # no temp dirs left


def test_refuses_to_overwrite_a_non_model_folder(pairs_file: Path, tmp_path: Path, minilm) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.txt").write_text("do not delete")
    with pytest.raises(InvalidArgumentError, match="not an xmodal model directory"):
        train(load_pairs(pairs_file), minilm, out, _cfg(), log=lambda m: None)
    assert (out / "thesis.txt").read_text() == "do not delete"


def _jsonl(tmp_path: Path, content: bytes) -> Path:
    f = tmp_path / "bad.jsonl"
    f.write_bytes(content)
    return f


def test_bad_pairs_files(tmp_path: Path) -> None:
    draw("circle", (0, 0, 0)).save(tmp_path / "c.png")
    draw("square", (0, 0, 0)).save(tmp_path / "s.png")
    warnings: list[str] = []
    ok = b'{"image": "c.png", "text": "circle"}\n{"image": "s.png", "text": "square"}\n'
    # missing image, empty caption and duplicate pair: warned and skipped
    content = ok + b'{"image": "gone.png", "text": "x"}\n{"image": "c.png", "text": "  "}\n'
    content += b'{"image": "c.png", "text": "circle"}\n'
    pairs = load_pairs(_jsonl(tmp_path, content), warn=warnings.append)
    assert len(pairs) == 2
    assert any("line 3" in w and "not found" in w for w in warnings)
    assert any("line 4" in w and "empty caption" in w for w in warnings)
    assert any("line 5" in w and "duplicate" in w for w in warnings)
    with pytest.raises(InvalidArgumentError, match="only one image"):
        load_pairs(_jsonl(tmp_path, b'{"image": "c.png", "text": "circle"}\n'), warn=warnings.append)
    with pytest.raises(InvalidArgumentError, match="line 2: not valid UTF-8"):
        load_pairs(_jsonl(tmp_path, ok[:38] + b'{"image": "s.png", "text": "\xff"}\n'))
    with pytest.raises(InvalidArgumentError, match="line 1: not valid JSON"):
        load_pairs(_jsonl(tmp_path, b"{nope\n"))
    with pytest.raises(InvalidArgumentError, match="no usable"):
        load_pairs(_jsonl(tmp_path, b'{"image": "gone.png", "text": "x"}\n'), warn=warnings.append)
    with pytest.raises(InvalidArgumentError, match="no such"):
        load_pairs(tmp_path / "absent.jsonl")


def test_folder_with_caption_sidecars(tmp_path: Path) -> None:
    for shape in ("circle", "square"):
        draw(shape, (0, 0, 0)).save(tmp_path / f"{shape}.png")
        (tmp_path / f"{shape}.txt").write_text(f"a {shape}\n{shape} shape\n", encoding="utf-8")
    draw("cross", (0, 0, 0)).save(tmp_path / "orphan.png")
    warnings: list[str] = []
    pairs = load_pairs(tmp_path, warn=warnings.append)
    assert len(pairs) == 2 and pairs.captions[0] == ["a circle", "circle shape"]
    assert any("orphan.png" in w for w in warnings)


def test_cli_train_bad_input_gives_one_line_error(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from xmodal.cli.main import main

    assert main(["train", str(_jsonl(tmp_path, b"\xff\n")), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("xmodal: error:") and "UTF-8" in err and "\n" not in err
    assert not (tmp_path / "m").exists()


def test_corrupt_model_dir_is_a_model_error(tmp_path: Path) -> None:
    (tmp_path / "xmodal_encoder.json").write_text('{"encoder": "pictogram"}')
    with pytest.raises(ModelError, match="missing"):
        PictogramEncoder(str(tmp_path))


def _cli(argv: list[str]) -> argparse.Namespace:
    from xmodal.cli import cmd_train

    parser = argparse.ArgumentParser()
    cmd_train.register(parser.add_subparsers())
    return parser.parse_args(["train", *argv])


def test_cli_train_end_to_end(pairs_file: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    init = tmp_path / "init.json"
    init.write_text(json.dumps({"steps_per_epoch": 2, "arch": {"image_size": 16, "stages": [[8, 1], [16, 1]]}}))
    out = tmp_path / "cli-model"
    args = _cli(
        [
            str(pairs_file),
            "--out",
            str(out),
            "--epochs",
            "2",
            "--batch-size",
            "4",
            "--init",
            str(init),
            "--bf16",
            "--quiet",
        ]
    )
    assert args.func(args) == 0
    assert "best epoch" in capsys.readouterr().out
    assert PictogramEncoder(str(out)).config.image_size == 16
    assert json.loads((out / "xmodal_encoder.json").read_text())["train_config"]["bf16"] is True


def test_cli_train_unknown_setting(pairs_file: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    init = tmp_path / "init.json"
    init.write_text(json.dumps({"augment": {"sparkle": 1}}))
    from xmodal.cli.main import main

    assert main(["train", str(pairs_file), "--out", str(tmp_path / "m"), "--init", str(init)]) == 2
    assert "unknown augmentation settings: sparkle" in capsys.readouterr().err


def test_vocab_loss_targets_every_caption_of_the_image() -> None:
    import torch

    from xmodal.train.losses import vocab_loss

    img = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=1)
    vocab = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]]), dim=1)
    scale = torch.tensor(0.0)  # logit scale 1
    got = vocab_loss(img, vocab, [[0, 1], [2]], scale)
    logp = torch.log_softmax(img @ vocab.t(), dim=1)
    want = -((logp[0, 0] + logp[0, 1]) / 2 + logp[1, 2]) / 2
    assert torch.allclose(got, want)


def test_bf16_training_writes_float32_weights(pairs_file: Path, tmp_path: Path, minilm) -> None:  # type: ignore[no-untyped-def]
    from safetensors.numpy import load_file

    pairs = load_pairs(pairs_file)
    report = train(pairs, minilm, tmp_path / "m", _cfg(epochs=2, bf16=True), log=lambda m: None)
    assert report.best_epoch >= 1 and all(np.isfinite(r["loss"]) for r in report.epochs)
    weights = load_file(str(tmp_path / "m" / "model.safetensors"))
    assert {w.dtype for w in weights.values()} <= {np.dtype("float32"), np.dtype("int64")}
    vec = PictogramEncoder(str(tmp_path / "m")).encode_images([draw("circle", (0, 0, 0)).convert("RGB")])
    assert vec.shape == (1, 384) and np.isfinite(vec).all()


def test_saved_model_carries_the_modality_gap_shift(pairs_file: Path, tmp_path: Path, minilm) -> None:  # type: ignore[no-untyped-def]
    from safetensors.numpy import load_file

    pairs = load_pairs(pairs_file)
    train(pairs, minilm, tmp_path / "m", _cfg(epochs=1), log=lambda m: None)
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["gap_shift"] is True
    gaps = [v for k, v in load_file(str(tmp_path / "m" / "model.safetensors")).items() if k.endswith(".gap")]
    assert len(gaps) == 1 and gaps[0].shape == (384,) and np.linalg.norm(gaps[0]) > 0.1
    # without it the same training saves a plain network
    train(pairs, minilm, tmp_path / "n", _cfg(epochs=1, gap_shift=False), log=lambda m: None)
    assert json.loads((tmp_path / "n" / "config.json").read_text())["gap_shift"] is False
    a = PictogramEncoder(str(tmp_path / "m")).encode_images([draw("circle", (0, 0, 0)).convert("RGB")])
    b = PictogramEncoder(str(tmp_path / "n")).encode_images([draw("circle", (0, 0, 0)).convert("RGB")])
    assert np.isclose(np.linalg.norm(a), 1, atol=1e-5) and not np.allclose(a, b)
    # a query picture skips the shift (it would bias image -> text towards the mean text)
    from xmodal.types import Modality

    shifted = PictogramEncoder(str(tmp_path / "m"))
    circle = draw("circle", (0, 0, 0)).convert("RGB")
    q = shifted.encode_query(Modality.IMAGE, [circle, circle])
    import torch

    from xmodal.encoders.pictogram import images_to_array

    raw = shifted._net[:-1](torch.from_numpy(images_to_array([circle], 16))).detach().numpy()
    assert np.allclose(q[0], raw[0] / np.linalg.norm(raw[0]), atol=1e-5) and np.allclose(q[0], q[1])
    assert not np.allclose(q[0], a[0], atol=1e-3)
    plain = PictogramEncoder(str(tmp_path / "n"))
    assert np.allclose(plain.encode_query(Modality.IMAGE, [circle]), plain.encode_images([circle]))
    # an arch that already says gap_shift and hubness (e.g. a shipped config.json reused) trains
    # and loads; the bank is fitted after training, so the new model has none yet
    shifted_arch = PictogramConfig.from_dict(
        {**TINY_ARCH.to_dict(), "gap_shift": True, "hubness_bank": 8, "hubness_k": 2}
    )
    train(pairs, minilm, tmp_path / "o", _cfg(epochs=1, arch=shifted_arch), log=lambda m: None)
    again = PictogramEncoder(str(tmp_path / "o"))
    assert again.config.gap_shift and np.isfinite(again.encode_images([circle])).all()
    assert again.config.hubness_bank == 0


def test_hard_batches_keep_size_and_bring_look_alike_groups() -> None:
    from xmodal.train.trainer import hard_batch, pick_caption

    rng = np.random.default_rng(0)
    groups = [np.arange(g * 10, g * 10 + 10) for g in range(20)]
    idx = np.sort(rng.choice(200, 32, replace=False))
    out = hard_batch(idx, groups, 0.5, rng)
    assert len(out) == 32 and len(np.unique(out)) == 32 and (np.diff(out) > 0).all()
    # at least one whole group of 10 is in the batch
    assert any(np.isin(g, out).all() for g in groups)
    assert hard_batch(idx, groups, 0.0, rng).tolist() == idx.tolist()
    assert {pick_caption([7, 8, 9], 1.0, rng) for _ in range(20)} == {7}
    assert {pick_caption([7, 8, 9], 0.0, rng) for _ in range(200)} == {7, 8, 9}


def test_hard_batch_training_runs(pairs_file: Path, tmp_path: Path, minilm) -> None:  # type: ignore[no-untyped-def]
    pairs = load_pairs(pairs_file)
    cfg = _cfg(epochs=1, hard_batch_fraction=0.5, hard_group_size=2, first_caption_p=0.5)
    report = train(pairs, minilm, tmp_path / "m", cfg, log=lambda m: None)
    assert report.best_epoch == 1 and np.isfinite(report.epochs[0]["loss"])


def test_late_hard_batches_leave_the_earlier_epochs_unchanged(pairs_file: Path, tmp_path: Path, minilm) -> None:  # type: ignore[no-untyped-def]
    pairs = load_pairs(pairs_file)
    plain = train(pairs, minilm, tmp_path / "a", _cfg(epochs=2, patience=5), log=lambda m: None)
    late = _cfg(epochs=2, patience=5, hard_batch_fraction=0.5, hard_group_size=2, hard_batch_from_epoch=2)
    hard = train(pairs, minilm, tmp_path / "b", late, log=lambda m: None)
    assert hard.epochs[0]["loss"] == plain.epochs[0]["loss"]  # groups are made when first needed
    assert hard.epochs[1]["loss"] != plain.epochs[1]["loss"]


def test_training_with_content_fitting(pairs_file: Path, tmp_path: Path, minilm) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    pairs = load_pairs(pairs_file)
    cfg = _cfg(epochs=1, arch=replace(TINY_ARCH, fit_content=0.8))
    assert train(pairs, minilm, tmp_path / "m", cfg, log=lambda m: None).best_epoch == 1
    enc = PictogramEncoder(str(tmp_path / "m"))
    assert enc.config.fit_content == 0.8 and enc.settings()["fit_content"] == 0.8


def test_ema_near_zero_decay_saves_the_last_weights_and_real_decay_averages(  # type: ignore[no-untyped-def]
    pairs_file: Path, tmp_path: Path, minilm
) -> None:
    from safetensors.numpy import load_file

    pairs = load_pairs(pairs_file)
    runs = {}
    for name, decay in (("plain", 0.0), ("ema0", 1e-12), ("ema", 0.9)):
        report = train(pairs, minilm, tmp_path / name, _cfg(epochs=2, patience=5, bf16=True, ema_decay=decay),
                       log=lambda m: None)  # fmt: skip
        assert report.best_epoch >= 1 and all(np.isfinite(r["loss"]) for r in report.epochs)
        runs[name] = (report, load_file(str(tmp_path / name / "model.safetensors")))
    # the average only changes what is evaluated and saved, never the training itself
    assert [r["loss"] for r in runs["plain"][0].epochs] == [r["loss"] for r in runs["ema"][0].epochs]
    plain, ema0, ema = runs["plain"][1], runs["ema0"][1], runs["ema"][1]
    assert plain.keys() == ema0.keys() == ema.keys()
    assert runs["plain"][0].best_epoch == runs["ema0"][0].best_epoch
    assert all(np.allclose(plain[k], ema0[k], atol=1e-6) for k in plain)
    assert any(not np.allclose(plain[k], ema[k], atol=1e-4) for k in plain if plain[k].dtype == np.float32)
    vec = PictogramEncoder(str(tmp_path / "ema")).encode_images([draw("circle", (0, 0, 0)).convert("RGB")])
    assert vec.shape == (1, 384) and np.isfinite(vec).all()


def test_out_of_range_ema_and_balance_are_refused(pairs_file: Path, tmp_path: Path, minilm) -> None:  # type: ignore[no-untyped-def]
    pairs = load_pairs(pairs_file)
    for bad in ({"ema_decay": 1.0}, {"ema_decay": -0.1}, {"group_balance": -1.0}):
        with pytest.raises(InvalidArgumentError, match="ema_decay"):
            train(pairs, minilm, tmp_path / "m", _cfg(**bad), log=lambda m: None)
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    "bad", [{"ema_decay": "x"}, {"lr": "x"}, {"group_balance": None}, {"epochs": "3"}, {"epochs": 2.5}, {"bf16": 1}]
)
def test_settings_of_the_wrong_type_are_one_clear_error(bad: dict, pairs_file: Path, tmp_path: Path, capsys) -> None:  # type: ignore[type-arg]
    from xmodal.cli.main import main

    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(InvalidArgumentError, match=f"training setting {next(iter(bad))} must be"):
        TrainConfig(**bad)
    rc = main(["train", str(pairs_file), "--out", str(tmp_path / "m"), "--init", str(settings), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and len(err.splitlines()) == 1 and "must be" in err and "internal error" not in err
    assert not (tmp_path / "m").exists()


def test_group_balance_weights_each_source_and_name_alike() -> None:
    from xmodal.train.data import PairSet
    from xmodal.train.trainer import balance_weights

    pixels = np.zeros((5, 4, 4, 4), dtype=np.uint8)
    captions = [["home"], ["home"], ["home"], ["home", "house"], ["star"]]
    pairs = PairSet(pixels, captions, [str(i) for i in range(5)], ["mat", "mat", "mat", "mdi", "mat"])
    idx = np.arange(5)
    assert balance_weights(pairs, idx, 0.0) is None
    w = balance_weights(pairs, idx, 1.0)
    assert w is not None and np.allclose(w, np.array([1 / 3, 1 / 3, 1 / 3, 1, 1]) / 3)
    w = balance_weights(pairs, np.array([0, 4]), 0.5)  # counts within the training split only
    assert w is not None and np.allclose(w, [0.5, 0.5])
    no_sources = PairSet(pixels, captions, [str(i) for i in range(5)])
    w = balance_weights(no_sources, idx, 1.0)
    assert w is not None and np.allclose(w, np.array([1 / 4] * 4 + [1]) / 2)


def test_balanced_training_runs_and_is_reproducible(pairs_file: Path, tmp_path: Path, minilm) -> None:  # type: ignore[no-untyped-def]
    pairs = load_pairs(pairs_file)
    a = train(pairs, minilm, tmp_path / "a", _cfg(epochs=2, group_balance=1.0), log=lambda m: None)
    b = train(pairs, minilm, tmp_path / "b", _cfg(epochs=2, group_balance=1.0), log=lambda m: None)
    assert a.best_epoch >= 1 and [r["loss"] for r in a.epochs] == [r["loss"] for r in b.epochs]


def test_info_nce_rows_of_the_same_image_are_positives() -> None:
    import torch

    from xmodal.train.losses import info_nce

    img = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), dim=1)
    txt = torch.nn.functional.normalize(torch.tensor([[1.0, 0.1], [1.0, -0.1], [0.0, 1.0]]), dim=1)
    text_ids, scale = torch.tensor([0, 1, 2]), torch.tensor(0.0)
    distinct = torch.tensor([0, 1, 2])
    assert torch.allclose(info_nce(img, txt, text_ids, scale), info_nce(img, txt, text_ids, scale, distinct))
    got = info_nce(img, txt, text_ids, scale, torch.tensor([7, 7, 9]))  # rows 0 and 1: one image, two captions
    logits = img @ txt.t()
    pos = torch.tensor([[1.0, 1, 0], [1, 1, 0], [0, 0, 1]])
    tgt = pos / pos.sum(1, keepdim=True)
    want = (-(tgt * logits.log_softmax(1)).sum(1).mean() - (tgt * logits.t().log_softmax(1)).sum(1).mean()) / 2
    assert torch.allclose(got, want)


def test_info_nce_soft_targets_mix_in_caption_similarity() -> None:
    import torch

    from xmodal.train.losses import info_nce

    img = torch.nn.functional.normalize(torch.tensor([[1.0, 0.2], [0.9, 0.4], [0.0, 1.0]]), dim=1)
    txt = torch.nn.functional.normalize(torch.tensor([[1.0, 0.1], [1.0, -0.1], [0.0, 1.0]]), dim=1)
    ids, scale = torch.tensor([0, 1, 2]), torch.tensor(1.0)
    assert torch.allclose(info_nce(img, txt, ids, scale), info_nce(img, txt, ids, scale, soft=0.0))
    got = info_nce(img, txt, ids, scale, soft=0.25, soft_temperature=0.1)
    logits = scale.exp() * img @ txt.t()
    tgt = 0.75 * torch.eye(3) + 0.25 * (txt @ txt.t() / 0.1).softmax(1)
    want = (-(tgt * logits.log_softmax(1)).sum(1).mean() - (tgt * logits.t().log_softmax(1)).sum(1).mean()) / 2
    assert torch.allclose(got, want)
    # captions 0 and 1 are near-synonyms: pictures that match them the wrong way round cost less
    # than with hard targets, while a swap with an unrelated caption costs no less
    scale = torch.tensor(2.3)

    def cost(swap: list[int], soft: float) -> float:
        return float(info_nce(txt[swap], txt, ids, scale, soft=soft) - info_nce(txt, txt, ids, scale, soft=soft))

    assert 0 < cost([1, 0, 2], 0.5) < cost([1, 0, 2], 0.0)
    assert cost([2, 1, 0], 0.5) >= cost([2, 1, 0], 0.0) > 10 * cost([1, 0, 2], 0.0)


def test_soft_targets_and_temperature_floor_train(pairs_file: Path, tmp_path: Path, minilm) -> None:  # type: ignore[no-untyped-def]
    pairs = load_pairs(pairs_file)
    cfg = _cfg(epochs=2, lr=0.05, soft_targets=0.3, min_temperature=0.05)
    report = train(pairs, minilm, tmp_path / "m", cfg, log=lambda m: None)
    assert report.best_epoch >= 1 and all(np.isfinite(r["loss"]) for r in report.epochs)
    assert all(r["temperature"] >= 0.05 - 1e-6 for r in report.epochs)


SOFT_BAD = [
    {"soft_targets": 1.0},
    {"soft_targets": -0.1},
    {"soft_target_temperature": 0.0},
    {"min_temperature": 0.0},
    {"min_temperature": 0.5},
]


@pytest.mark.parametrize("bad", SOFT_BAD)
def test_out_of_range_soft_targets_and_temperature_floor_are_refused(bad: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(InvalidArgumentError, match=r"soft_targets|min_temperature"):
        TrainConfig(**bad)


def test_time_budget_stops_before_an_epoch_that_would_overrun_it() -> None:
    # t0 = 0 (start, incl. caption embedding 10 s), epochs from 10 s, 3 epochs done at 310 s (100 s each)
    assert not next_epoch_overruns(0.0, 0.0, 10.0, 3, now=310.0)  # no budget
    assert not next_epoch_overruns(410.0, 0.0, 10.0, 3, now=310.0)  # 310 + 100 = 410: fits exactly
    assert next_epoch_overruns(409.0, 0.0, 10.0, 3, now=310.0)
    assert next_epoch_overruns(300.0, 0.0, 10.0, 3, now=310.0)  # already past it


def test_time_budget_in_training(pairs_file: Path, tmp_path: Path, minilm) -> None:  # type: ignore[no-untyped-def]
    pairs, lines = load_pairs(pairs_file), []
    report = train(pairs, minilm, tmp_path / "m", _cfg(epochs=3, time_budget_s=1e-6), log=lines.append)
    assert len(report.epochs) == 1 and report.best_epoch == 1  # one epoch always runs, then it stops
    assert any("epoch 2 would end past" in line for line in lines)
    report = train(pairs, minilm, tmp_path / "n", _cfg(epochs=2, time_budget_s=3600.0), log=lines.append)
    assert len(report.epochs) == 2


@pytest.mark.parametrize("bad", [-1.0, float("inf"), float("nan")])
def test_bad_time_budget_is_refused(bad: float) -> None:
    with pytest.raises(InvalidArgumentError, match="time_budget_s"):
        TrainConfig(time_budget_s=bad)


def test_sigterm_stops_training_like_ctrl_c_and_keeps_the_best_checkpoint(pairs_file: Path, tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    init = tmp_path / "init.json"
    arch = {"image_size": 16, "stages": [[8, 1], [16, 1]]}
    init.write_text(json.dumps({"steps_per_epoch": 2, "patience": 10**6, "arch": arch}))  # never ends by itself
    out = tmp_path / "m"
    argv = [str(pairs_file), "--out", str(out), "--epochs", "100000", "--batch-size", "4", "--init", str(init)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "xmodal.cli.main", "train", *argv, "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (out / "xmodal_encoder.json").exists():  # the first epoch is saved: it is training
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert stdout.startswith("interrupted: best epoch") and "Traceback" not in stderr
    PictogramEncoder(str(out))  # the kept checkpoint loads
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".m.")]


def test_retraining_into_the_same_folder_gives_a_new_version(pairs_file: Path, tmp_path: Path, minilm) -> None:  # type: ignore[no-untyped-def]
    """A collection indexed with the first weights must see that the folder now holds others."""
    from xmodal.collection import Collection
    from xmodal.config import ModelConfig
    from xmodal.errors import EncoderMismatchError

    pairs = load_pairs(pairs_file)
    out = tmp_path / "model"
    train(pairs, minilm, out, _cfg(epochs=1), log=lambda m: None)
    first = json.loads((out / "xmodal_encoder.json").read_text())["version"]
    assert first.startswith("sha256-") and PictogramEncoder(str(out)).version == f"pictogram:{first}"
    assert (out / "model.safetensors").stat().st_mode & 0o044  # readable by others, as the folder is
    (tmp_path / "pics").mkdir()
    draw("circle", (0, 0, 0)).save(tmp_path / "pics" / "circle.png")
    model = ModelConfig(photo=None, image=str(out), ocr=None, asr=None)
    with Collection.open(tmp_path / "c", create=True, model=model) as coll:
        coll.add([tmp_path / "pics"])
    train(pairs, minilm, out, _cfg(epochs=1, seed=1), log=lambda m: None)
    second = json.loads((out / "xmodal_encoder.json").read_text())["version"]
    assert second != first
    # a new process (encoders are cached per registry) sees the change
    coll = Collection.open(tmp_path / "c", registry=EncoderRegistry())
    with pytest.raises(EncoderMismatchError, match="re-embed"):
        coll.search("a circle")
    coll.close()
    # and `xmodal serve` says so in one line instead of starting (a new process, as a user runs it)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    served = subprocess.run(
        [sys.executable, "-m", "xmodal", "serve", "-c", str(tmp_path / "c"), "--port", "0"],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert served.returncode == 3 and "Traceback" not in served.stderr, served.stderr
    assert "image encoder changed" in served.stderr and len(served.stderr.strip().splitlines()) == 1
    # the same training again gives the same version: the name follows the content
    train(pairs, minilm, tmp_path / "again", _cfg(epochs=1, seed=1), log=lambda m: None)
    assert json.loads((tmp_path / "again" / "xmodal_encoder.json").read_text())["version"] == second
    # a blank version is no version
    train(pairs, minilm, tmp_path / "blank", _cfg(epochs=1, seed=1, version="  "), log=lambda m: None)
    assert json.loads((tmp_path / "blank" / "xmodal_encoder.json").read_text())["version"] == second


def test_an_unwritable_out_folder_is_refused_before_training(pairs_file: Path, tmp_path: Path, minilm) -> None:  # type: ignore[no-untyped-def]
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(InvalidArgumentError, match="cannot write the model there"):
        train(load_pairs(pairs_file), minilm, blocker / "model", _cfg(), log=lambda m: None)
