"""Fit the hubness correction of a trained pictogram tower (see ``PictogramConfig``): a bank of
caption centroids, the mean-caption direction the offset is folded along, and the training
pictures' mean hub score. Runs after training, on the saved model directory."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from xmodal.encoders.pictogram import CONFIG_FILE, WEIGHTS_FILE, PictogramConfig, hub_score, read_model_dir
from xmodal.errors import InvalidArgumentError


def caption_bank(caption_vecs: np.ndarray, rows: int, seed: int = 0) -> np.ndarray:
    """``rows`` unit vectors that summarise the captions: spherical k-means centroids (FAISS),
    or the captions themselves when there are not more of them than ``rows``."""
    x = np.ascontiguousarray(caption_vecs, dtype=np.float32)
    if len(x) <= rows:
        return x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12)
    import faiss

    km = faiss.Kmeans(x.shape[1], rows, niter=20, seed=seed, spherical=True, verbose=False)
    km.train(x)
    return np.asarray(km.centroids, dtype=np.float32)


def fit_hubness(
    model_dir: Path,
    caption_vecs: np.ndarray,
    picture_vecs: np.ndarray,
    rows: int = 8000,
    k: int = 10,
    weight: float = 0.5,
    seed: int = 0,
    float16: bool = False,
) -> PictogramConfig:
    """Add the correction to the model in ``model_dir`` (config and weights, rewritten in place).

    ``caption_vecs``: the training captions' text vectors; ``picture_vecs``: unit vectors of a
    sample of training pictures (``encode_query``: no gap shift). ``float16`` stores every
    floating-point tensor as float16 (the encoder runs them as float32)."""
    import torch
    from safetensors.torch import load_file

    _, cfg = read_model_dir(model_dir)
    if not cfg.gap_shift:
        raise InvalidArgumentError(f"{model_dir}: the hubness correction needs a model with the gap shift")
    if len(caption_vecs) < k or rows < k:
        raise InvalidArgumentError(f"hubness: need at least k={k} captions and bank rows")
    bank = caption_bank(caption_vecs, rows, seed)
    direction = caption_direction(caption_vecs)
    bank_t = torch.from_numpy(bank)
    pictures = torch.nn.functional.normalize(torch.from_numpy(np.asarray(picture_vecs, dtype=np.float32)), dim=-1)
    hub_mean = float(hub_score(pictures, bank_t, k).mean())

    state = load_file(str(model_dir / WEIGHTS_FILE))
    prefix = next(name for name in state if name.endswith("gap"))[: -len("gap")]
    state.update(
        {
            prefix + "hub_bank": bank_t,
            prefix + "hub_dir": torch.from_numpy(direction),
            prefix + "hub_mean": torch.tensor([hub_mean], dtype=torch.float32),
        }
    )
    new_cfg = replace(cfg, hubness_bank=len(bank), hubness_k=k, hubness_weight=weight)
    write_model(model_dir, new_cfg, state, float16)
    return new_cfg


def caption_direction(caption_vecs: np.ndarray) -> np.ndarray:
    """m / |m|^2 for the captions' mean m: the direction a hubness offset is folded along (a
    caption's dot with it is about 1)."""
    mean = np.asarray(caption_vecs).astype(np.float64).mean(axis=0)
    return (mean / float(mean @ mean)).astype(np.float32)


def write_model(model_dir: Path, cfg: PictogramConfig, state: dict[str, Any], float16: bool = False) -> None:
    """Write config and weights (``float16``: every floating-point tensor as float16; the
    encoder runs them as float32). Both files are written in full to temporary names first and
    then renamed, so a failed write leaves the model as it was (only a crash between the two
    renames leaves a pair that fails to load, with ModelError naming the mismatch)."""
    from safetensors.torch import save_file

    if float16:
        state = {name: t.half() if t.is_floating_point() else t for name, t in state.items()}
    tmp_w = model_dir / (WEIGHTS_FILE + ".tmp")
    save_file({name: t.contiguous() for name, t in state.items()}, str(tmp_w))
    tmp_c = model_dir / (CONFIG_FILE + ".tmp")
    tmp_c.write_text(json.dumps(cfg.to_dict(), indent=2), encoding="utf-8")
    for tmp in (tmp_w, tmp_c):
        tmp.chmod(0o644)  # safetensors writes 0600; a shipped model must be readable by all
    tmp_w.replace(model_dir / WEIGHTS_FILE)
    tmp_c.replace(model_dir / CONFIG_FILE)


def store_float16(model_dir: Path) -> None:
    """Rewrite the weights in ``model_dir`` as float16 (half the size; run as float32)."""
    from safetensors.torch import load_file

    _, cfg = read_model_dir(model_dir)
    write_model(model_dir, cfg, load_file(str(model_dir / WEIGHTS_FILE)), float16=True)
