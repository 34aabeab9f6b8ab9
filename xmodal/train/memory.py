"""Fit the memory of a trained pictogram tower (see :mod:`xmodal.encoders.pictogram_memory`):
product-quantise the remembered pictures' vectors and their name table (FAISS), make the table
the hubness bank, and write both into the saved model. Runs after training (and after the gap
is measured), on the saved model directory."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from xmodal.encoders.pictogram import (
    WEIGHTS_FILE,
    PictogramConfig,
    hub_score,
    read_model_dir,
)
from xmodal.errors import InvalidArgumentError, ModelError
from xmodal.train.hubness import caption_direction, write_model

PQ_CENTROIDS = 256  # one byte per sub-vector


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12)


def product_quantise(x: np.ndarray, subvectors: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 codes (n, subvectors) and codebooks (subvectors, 256, d / subvectors) for rows ``x``."""
    import faiss

    pq = faiss.ProductQuantizer(x.shape[1], subvectors, 8)
    pq.cp.seed = seed
    pq.train(x)
    books = faiss.vector_to_array(pq.centroids).reshape(subvectors, PQ_CENTROIDS, x.shape[1] // subvectors)
    return pq.compute_codes(x), books


def fit_memory(
    model_dir: Path,
    picture_vecs: np.ndarray,
    name_ids: np.ndarray,
    name_vecs: np.ndarray,
    hub_sample: np.ndarray,
    *,
    k: int = 10,
    beta: float = 20.0,
    weight: float = 0.15,
    hub_k: int = 10,
    hub_weight: float = 0.5,
    subvectors: int = 96,
    seed: int = 0,
    float16: bool = False,
) -> PictogramConfig:
    """Add the memory to the model in ``model_dir`` (config and weights rewritten in place).

    ``picture_vecs``: the remembered training pictures' vectors through the model as saved
    (``encode_query``); ``name_ids[i]``: the row of ``name_vecs`` (caption vectors) that names
    picture ``i``; ``hub_sample``: training pictures' vectors for the hubness mean. The table
    replaces a hubness bank the model had; ``float16`` stores floating tensors as float16."""
    import torch
    from safetensors.torch import load_file

    _, cfg = read_model_dir(model_dir)
    if cfg.memory_size:
        raise InvalidArgumentError(
            f"{model_dir}: the model already has a memory (its query vectors include the pull); "
            "fit one on the model without it"
        )
    name_ids = np.asarray(name_ids)
    if name_ids.ndim != 1 or (name_ids.size and name_ids.dtype.kind not in "iu"):
        raise InvalidArgumentError("memory: name ids must be integers, one per picture")
    if any(np.ndim(x) != 2 or not len(x) for x in (picture_vecs, name_vecs, hub_sample)):
        raise InvalidArgumentError("memory: pictures, names and the hubness sample must be non-empty (n, dim) arrays")
    dims = {np.shape(picture_vecs)[-1], np.shape(name_vecs)[-1], np.shape(hub_sample)[-1]}
    if not cfg.gap_shift:
        raise InvalidArgumentError(f"{model_dir}: the memory needs a model with the gap shift")
    if dims != {cfg.embed_dim}:
        raise InvalidArgumentError(f"memory: vectors must have the model's {cfg.embed_dim} dimensions")
    if len(picture_vecs) != len(name_ids) or name_ids.min() < 0:
        raise InvalidArgumentError("memory: need one name id (a row of the name table) per picture")
    if name_ids.max() >= len(name_vecs):
        raise InvalidArgumentError("memory: a name id is past the end of the name table")
    if min(len(picture_vecs), len(name_vecs)) < PQ_CENTROIDS or len(name_vecs) < hub_k:
        raise InvalidArgumentError(f"memory: need at least {PQ_CENTROIDS} pictures and names to quantise")
    new_cfg = replace(
        cfg,
        hubness_bank=len(name_vecs),
        hubness_k=hub_k,
        hubness_weight=hub_weight,
        memory_size=len(picture_vecs),
        memory_k=k,
        memory_beta=beta,
        memory_weight=weight,
        pq_subvectors=subvectors,
    )
    try:
        PictogramConfig.from_dict(new_cfg.to_dict())  # checks the memory settings too
    except ModelError as exc:
        raise InvalidArgumentError(str(exc)) from exc
    key_codes, key_books = product_quantise(_unit(picture_vecs), subvectors, seed)
    names = _unit(name_vecs)
    table_codes, table_books = product_quantise(names, subvectors, seed)

    from xmodal.encoders.pictogram_memory import pq_decode

    table = pq_decode(torch.from_numpy(table_codes), torch.from_numpy(table_books))
    # centred on training pictures before the pull, as in version 7: pulled, a training picture
    # would move towards its own name (it is in the memory), unlike any new picture
    hub_mean = float(hub_score(torch.from_numpy(_unit(hub_sample)), table, hub_k).mean())
    state = load_file(str(model_dir / WEIGHTS_FILE))
    prefix = next(name for name in state if name.endswith("gap"))[: -len("gap")]
    state.pop(prefix + "hub_bank", None)
    state.update(
        {
            prefix + "hub_dir": torch.from_numpy(caption_direction(names)),
            prefix + "hub_mean": torch.tensor([hub_mean], dtype=torch.float32),
            prefix + "memory.key_codes": torch.from_numpy(key_codes),
            prefix + "memory.key_books": torch.from_numpy(key_books),
            prefix + "memory.names": torch.from_numpy(name_ids.astype(np.int32)),
            prefix + "memory.table_codes": torch.from_numpy(table_codes),
            prefix + "memory.table_books": torch.from_numpy(table_books),
        }
    )
    write_model(model_dir, new_cfg, state, float16)
    return new_cfg
