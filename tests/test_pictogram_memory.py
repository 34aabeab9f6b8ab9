"""The pictogram tower's memory of training pictures (xmodal.encoders.pictogram_memory, fitted by
xmodal.train.memory), on a tiny random model: the exact formula both ways, the pull towards the
names of the nearest remembered pictures, storage, and the inputs fitting refuses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from picto_support import pictures, tiny_model_dir

from xmodal.encoders.pictogram import PictogramConfig, PictogramEncoder, images_to_array
from xmodal.errors import InvalidArgumentError, ModelError
from xmodal.types import Modality


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _memory(plain: np.ndarray, rows: int = 300, names: int = 280) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Remembered vectors (the pictures' own first, then random ones), name ids and the name table."""
    rng = np.random.default_rng(3)
    remembered = np.concatenate([plain, _unit(rng.normal(size=(rows - len(plain), 384)))]).astype(np.float32)
    table = _unit(rng.normal(size=(names, 384))).astype(np.float32)
    return remembered, rng.integers(0, names, rows), table


def _decode(codes: np.ndarray, books: np.ndarray) -> np.ndarray:
    m = books.shape[0]
    return _unit(books.astype(np.float32)[np.arange(m), codes.astype(int)].reshape(len(codes), -1))


def test_memory_pulls_each_picture_towards_the_names_of_its_nearest_remembered_pictures(tmp_path: Path) -> None:
    import torch
    from safetensors.numpy import load_file

    from xmodal.train.memory import fit_memory

    d = tiny_model_dir(tmp_path)
    pics = pictures()
    plain = PictogramEncoder(str(d)).encode_query(Modality.IMAGE, pics)
    remembered, ids, table = _memory(plain)
    cfg = fit_memory(d, remembered, ids, table, plain, k=5, beta=20.0, weight=0.5, hub_k=4, subvectors=8, float16=True)
    assert (cfg.memory_size, cfg.memory_k, cfg.hubness_bank, cfg.hubness_k, cfg.pq_subvectors) == (300, 5, 280, 4, 8)
    enc = PictogramEncoder(str(d))
    assert enc.config == cfg
    w = load_file(str(d / "model.safetensors"))
    head = f"{len(enc._net) - 1}."
    assert head + "hub_bank" not in w  # the name table is the hubness bank
    assert w[head + "memory.key_codes"].dtype == np.uint8 and w[head + "memory.key_codes"].shape == (300, 8)
    assert all(v.dtype == np.float16 for v in w.values() if v.dtype.kind == "f")

    # the formula, from the saved codes: query pictures get the pull only ...
    with torch.inference_mode():
        x = torch.from_numpy(images_to_array(pics, cfg.image_size, cfg.fit_content))
        base = _unit(enc._net[:-1](x).numpy())
    keys = _decode(w[head + "memory.key_codes"], w[head + "memory.key_books"])
    bank = _decode(w[head + "memory.table_codes"], w[head + "memory.table_books"])
    sims = base @ keys.T
    top = np.argsort(-sims, axis=1)[:, :5]
    weights = np.exp(20.0 * np.take_along_axis(sims, top, axis=1))
    weights /= weights.sum(axis=1, keepdims=True)
    guess = _unit((weights[..., None] * bank[w[head + "memory.names"][top]]).sum(axis=1))
    pulled = _unit(base + 0.5 * guess)
    assert np.allclose(enc.encode_query(Modality.IMAGE, pics), pulled, atol=1e-4)
    # ... indexed pictures also the gap shift and the hubness correction against the table
    gap, direction, mean = (w[head + k].astype(np.float32) for k in ("gap", "hub_dir", "hub_mean"))
    score = np.sort(pulled @ bank.T, axis=1)[:, -4:].mean(axis=1)
    indexed = _unit(pulled + gap - 0.5 * (score - mean)[:, None] * direction)
    assert np.allclose(enc.encode_images(pics), indexed, atol=1e-4)

    # each picture is its own nearest remembered picture, so it moves towards its own name
    own = table[ids[: len(pics)]]
    assert np.all(np.sum(pulled * own, axis=1) > np.sum(plain * own, axis=1) + 0.05)
    assert np.allclose(direction @ table.mean(axis=0), 1, atol=1e-2)


def test_product_quantisation_decodes_like_faiss() -> None:
    import faiss
    import torch

    from xmodal.encoders.pictogram_memory import pq_decode
    from xmodal.train.memory import product_quantise

    x = _unit(np.random.default_rng(0).normal(size=(600, 384))).astype(np.float32)
    codes, books = product_quantise(x, 48, seed=0)
    assert codes.shape == (600, 48) and books.shape == (48, 256, 8)
    pq = faiss.ProductQuantizer(384, 48, 8)
    faiss.copy_array_to_vector(books.ravel(), pq.centroids)
    ours = pq_decode(torch.from_numpy(codes), torch.from_numpy(books)).numpy()
    assert np.allclose(ours, _unit(pq.decode(codes)), atol=1e-6)
    assert float(np.mean(np.sum(ours * x, axis=1))) > 0.5  # a code keeps most of the direction
    again, _ = product_quantise(x, 48, seed=0)
    assert np.array_equal(codes, again)  # seeded


@pytest.mark.parametrize(
    "bad",
    [
        {"gap_shift": True, "memory_size": 5},  # no caption table (hubness_bank)
        {"gap_shift": True, "hubness_bank": 5, "memory_size": 5, "memory_k": 6},
        {"gap_shift": True, "hubness_bank": 5, "memory_size": 5, "memory_k": 0},
        {"gap_shift": True, "hubness_bank": 5, "memory_size": 5, "memory_beta": 0},
        {"gap_shift": True, "hubness_bank": 5, "memory_size": 5, "memory_weight": -1},
        {"gap_shift": True, "hubness_bank": 5, "memory_size": 5, "pq_subvectors": 7},
        {"gap_shift": True, "hubness_bank": 5, "memory_size": -1},
        {"gap_shift": True, "hubness_bank": 5, "memory_size": 5, "memory_k": 2.0},
        {"gap_shift": True, "hubness_bank": 5, "memory_size": 5, "memory_beta": float("nan")},
    ],
)
def test_bad_memory_configs(bad: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ModelError):
        PictogramConfig.from_dict(bad)


def test_fitting_refuses_bad_inputs_and_leaves_the_model_untouched(tmp_path: Path) -> None:
    from xmodal.train.memory import fit_memory

    d = tiny_model_dir(tmp_path)
    plain = PictogramEncoder(str(d)).encode_query(Modality.IMAGE, pictures())
    remembered, ids, table = _memory(plain)
    before = (d / "model.safetensors").read_bytes()
    cases = [
        ((remembered[:-1], ids, table, plain), {}, "one name id"),
        ((remembered, ids + 1000, table, plain), {}, "past the end"),
        ((remembered, -ids - 1, table, plain), {}, "one name id"),
        ((remembered[:200], ids[:200], table, plain), {}, "at least 256"),
        ((remembered[:, :100], ids, table, plain), {}, "384 dimensions"),
        ((remembered, ids, table, plain), {"subvectors": 7}, "pq_subvectors"),
        ((remembered, ids, table, plain), {"k": 301}, "memory_k"),
        ((remembered, ids.astype(float), table, plain), {}, "integers"),
        ((remembered, ids, table, plain[:0]), {}, "non-empty"),
        ((remembered, ids, table, plain[0]), {}, "non-empty"),
    ]
    for args, kw, message in cases:
        with pytest.raises(InvalidArgumentError, match=message):
            fit_memory(d, *args, **kw)
    assert (d / "model.safetensors").read_bytes() == before
    fit_memory(d, remembered, ids, table, plain, subvectors=8)
    with pytest.raises(InvalidArgumentError, match="already has a memory"):
        fit_memory(d, remembered, ids, table, plain, subvectors=8)
    other = tmp_path / "no-gap"
    other.mkdir()
    with pytest.raises(InvalidArgumentError, match="gap shift"):
        fit_memory(tiny_model_dir(other, gap_shift=False), remembered, ids, table, plain)


def test_weights_without_the_memory_do_not_load_as_a_model_with_one(tmp_path: Path) -> None:
    import json

    d = tiny_model_dir(tmp_path)
    cfg = json.loads((d / "config.json").read_text(encoding="utf-8"))
    cfg.update(hubness_bank=280, memory_size=300, pq_subvectors=8)
    (d / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    with pytest.raises(ModelError, match="do not match"):
        PictogramEncoder(str(d))


def test_name_ids_outside_the_table_are_refused_at_load(tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    from xmodal.train.memory import fit_memory

    d = tiny_model_dir(tmp_path)
    plain = PictogramEncoder(str(d)).encode_query(Modality.IMAGE, pictures())
    fit_memory(d, *_memory(plain), plain, subvectors=8)
    enc = PictogramEncoder(str(d))
    enc.encode_images(pictures())  # decodes under inference_mode; the cache stays usable outside it
    assert not enc._net[-1].memory.table().is_inference()
    w = load_file(str(d / "model.safetensors"))
    key = next(k for k in w if k.endswith("memory.names"))
    w[key][0] = 280  # one past the table's last row
    save_file(w, str(d / "model.safetensors"))
    with pytest.raises(ModelError, match="outside the name table"):
        PictogramEncoder(str(d))
