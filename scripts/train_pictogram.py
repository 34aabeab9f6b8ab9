#!/usr/bin/env python
"""Train the bundled pictogram model (the whole recipe; see scripts/train_pictogram.sh).

Reads the arrays written by scripts/build_pictogram_data.py, embeds every caption once with the
frozen MiniLM text encoder (cached on disk), trains with xmodal.train, selects the epoch by the
mean text->image Recall@10 over the held-out sets, and writes the model directory.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from build_pictogram_data import HELDOUT_SETS as HELDOUT  # the sets it writes; scripts/ is on sys.path

from xmodal.encoders.base import Encoder
from xmodal.encoders.pictogram import PictogramConfig, PictogramEncoder
from xmodal.eval.metrics import dense_metrics
from xmodal.train.augment import AugmentConfig
from xmodal.train.data import load_npz_pairs
from xmodal.train.trainer import ImageEncodeFn, TrainConfig, train
from xmodal.types import Modality

TextForImagesFn = Callable[[np.ndarray], np.ndarray | None]


class CachedText(Encoder):
    """MiniLM with an on-disk cache of caption vectors (keyed by the exact text list)."""

    name = "minilm"
    modalities = frozenset({Modality.TEXT})

    def __init__(self, cache: Path, cache_only: bool = False) -> None:
        """``cache_only``: never load MiniLM (a machine without it, fed by
        scripts/pictogram_cache_transfer.py); a text list missing from the cache is an error."""
        from xmodal.encoders.minilm import MINILM_SPACE, MiniLMEncoder

        self.inner = None if cache_only else MiniLMEncoder()
        if self.inner is None:
            self.dim, self.space, self.version = 384, MINILM_SPACE, "cache-only"
        else:
            self.dim, self.space, self.version = self.inner.dim, self.inner.space, self.inner.version
        self.cache = cache

    def info(self):  # type: ignore[no-untyped-def]
        return self.inner.info() if self.inner is not None else Encoder.info(self)

    def encode_batch(self, modality: Modality, inputs: Sequence[Any]) -> np.ndarray:
        if self.inner is None:
            raise SystemExit("--text-cache-only: encode_batch needs MiniLM")
        return self.inner.encode_batch(modality, inputs)

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        key = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
        path = self.cache / f"text-{key}.npy"
        if path.is_file():
            return np.load(path)
        if self.inner is None:
            raise SystemExit(f"--text-cache-only: {path} is not in the cache")
        vecs = self.inner.encode_text(texts)
        self.cache.mkdir(parents=True, exist_ok=True)
        np.save(path, vecs)
        return vecs


def gap_sample(pairs: Any, seed: int) -> np.ndarray:
    """The 4,096 training pairs (sorted indices) the gap, the hubness mean and the memory use."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(len(pairs), size=min(len(pairs), 4096), replace=False))


def one_per_set_and_name(pairs: Any) -> np.ndarray:
    """Indices of the first training picture of each (set, first caption): the memory's pictures."""
    assert pairs.sources is not None
    first: dict[tuple[str, str], int] = {}
    for i, (src, caps) in enumerate(zip(pairs.sources, pairs.captions, strict=True)):
        first.setdefault((src, caps[0]), i)
    return np.array(sorted(first.values()))


def remeasure_gap(model_dir: Path, pairs: Any, text: Encoder, seed: int) -> None:
    """Measure the modality-gap vector again through the inference settings just written (the
    trainer measured it on the training-time preprocessing): mean first-caption vector minus
    mean image vector over 4,096 training pairs, as the trainer does."""
    import torch
    from safetensors.torch import load_file, save_file

    from xmodal.encoders.pictogram import WEIGHTS_FILE

    sample = gap_sample(pairs, seed)
    first = text.encode_text([pairs.captions[i][0] for i in sample])
    images = PictogramEncoder(str(model_dir)).encode_query(Modality.IMAGE, composite_pil(pairs.pixels[sample]))
    state = load_file(str(model_dir / WEIGHTS_FILE))
    key = next(k for k in state if k.endswith(".gap"))
    state[key] = torch.from_numpy((first.mean(axis=0) - images.mean(axis=0)).astype(np.float32))
    save_file(state, str(model_dir / WEIGHTS_FILE))


def add_hubness(model_dir: Path, pairs: Any, text: Encoder, seed: int, settings: dict[str, Any], float16: bool) -> None:
    """Fit the hubness correction (bank of caption centroids from every training caption; the
    training pictures' mean hub score over the 4,096 pairs the gap uses) and/or store the
    weights as float16. ``settings``: hubness_bank / hubness_k / hubness_weight (bank 0: none)."""
    from xmodal.train.hubness import fit_hubness, store_float16
    from xmodal.train.trainer import embed_captions

    if settings.get("memory"):
        add_memory(model_dir, pairs, text, seed, settings, float16)
        return
    rows = int(settings.get("hubness_bank", 0))
    if rows <= 0:
        store_float16(model_dir)
        return
    sample = gap_sample(pairs, seed)
    _, caption_vecs, _ = embed_captions(pairs, text)
    pictures = PictogramEncoder(str(model_dir)).encode_query(Modality.IMAGE, composite_pil(pairs.pixels[sample]))
    fit_hubness(
        model_dir,
        caption_vecs,
        pictures,
        rows=rows,
        k=int(settings.get("hubness_k", 10)),
        weight=float(settings.get("hubness_weight", 0.5)),
        seed=seed,
        float16=float16,
    )


def add_memory(model_dir: Path, pairs: Any, text: Encoder, seed: int, settings: dict[str, Any], float16: bool) -> None:
    """Fit the memory (xmodal.train.memory): one training picture per set and name (first
    caption; Material's and Google's style variants of one icon are one entry), named by that
    first caption; the distinct names are the table, which is also the hubness bank; the
    hubness mean over the 4,096 pairs the gap uses."""
    from xmodal.train.memory import fit_memory

    keep = one_per_set_and_name(pairs)
    names = sorted({pairs.captions[i][0] for i in keep})
    row = {c: j for j, c in enumerate(names)}
    encoder = PictogramEncoder(str(model_dir))
    pictures = encoder.encode_query(Modality.IMAGE, composite_pil(pairs.pixels[keep]))
    sample = gap_sample(pairs, seed)
    hub_sample = encoder.encode_query(Modality.IMAGE, composite_pil(pairs.pixels[sample]))
    fit_memory(
        model_dir,
        pictures,
        np.array([row[pairs.captions[i][0]] for i in keep]),
        text.encode_text(names),
        hub_sample,
        k=int(settings.get("memory_k", 10)),
        beta=float(settings.get("memory_beta", 20.0)),
        weight=float(settings.get("memory_weight", 0.15)),
        hub_k=int(settings.get("hubness_k", 10)),
        hub_weight=float(settings.get("hubness_weight", 0.5)),
        subvectors=int(settings.get("pq_subvectors", 96)),
        seed=seed,
        float16=float16,
    )


def composite_pil(pixels: np.ndarray) -> list[Any]:
    from PIL import Image

    from xmodal.train.augment import composite_white

    return [Image.fromarray(p) for p in composite_white(pixels)]


def heldout_evaluator(data: Path, set_name: str, text: Encoder):  # type: ignore[no-untyped-def]
    pairs = load_npz_pairs(data / f"heldout-{set_name}.npz", data / f"heldout-{set_name}.json")
    queries = sorted({c[0] for c in pairs.captions})
    qvecs = text.encode_text(queries)
    pos = np.array([[c[0] == q for c in pairs.captions] for q in queries], dtype=bool)

    def evaluate(encode: ImageEncodeFn, for_images: TextForImagesFn | None = None) -> dict[str, float]:
        """``for_images``: the model's own text-query vectors for pictures (its memory), as a
        collection scores them; image->text always uses the caption vectors."""
        img = encode(pairs.pixels)
        sims = qvecs @ img.T
        queried = for_images(qvecs) if for_images is not None else None
        t2i = dense_metrics(sims if queried is None else queried @ img.T, pos)
        i2t = dense_metrics(sims.T, pos.T)
        out = {f"{set_name}_t2i_{k}": v for k, v in t2i.items()}
        out.update({f"{set_name}_i2t_{k}": v for k, v in i2t.items()})
        return out

    return evaluate, len(pairs), len(queries)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=Path("/work/cache/picto"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--config", type=Path, help="JSON overrides of TrainConfig / arch / augment")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument(
        "--text-cache-only",
        action="store_true",
        help="read caption vectors from DATA/cache only, never load MiniLM (see scripts/pictogram_cache_transfer.py)",
    )
    ap.add_argument(
        "--finish-only",
        action="store_true",
        help="do not train: apply the config's inference settings (gap, hubness, float16) to the model in --out",
    )
    args = ap.parse_args(argv)
    over: dict[str, Any] = json.loads(args.config.read_text()) if args.config else {}
    arch = PictogramConfig.from_dict(over.pop("arch", {}))
    # inference-only settings written into the saved config after training (e.g. fit_content:
    # the model trains on the usual scale augmentation, then every picture it encodes is first
    # fitted to its drawing, which removes the icon sets' different paddings)
    inference = over.pop("inference", {})
    # fitted after the gap (they need the final preprocessing): see xmodal.train.hubness
    fitted = ("hubness_bank", "hubness_k", "hubness_weight", "memory", "memory_k", "memory_beta", "memory_weight")
    hubness = {k: inference.pop(k) for k in (*fitted, "pq_subvectors") if k in inference}
    float16 = bool(over.pop("float16_weights", False))
    aug = AugmentConfig.from_dict(over.pop("augment", {}))
    cfg = TrainConfig(
        **{
            "threads": args.threads,
            "progress": not args.no_progress,
            "select": "heldout_mean_t2i_recall@10",
            **over,
            "arch": arch,
            "augment": aug,
        }
    )
    text = CachedText(args.data / "cache", cache_only=args.text_cache_only)
    pairs = load_npz_pairs(args.data / "train.npz", args.data / "train.json")
    evals = [heldout_evaluator(args.data, s, text) for s in HELDOUT]
    for s, (_, n, q) in zip(HELDOUT, evals, strict=True):
        print(f"held-out {s}: {n} images, {q} queries", file=sys.stderr)

    def mean_eval(encode: ImageEncodeFn, for_images: TextForImagesFn | None = None) -> dict[str, float]:
        row: dict[str, float] = {}
        for ev, _, _ in evals:
            row.update(ev(encode, for_images))
        row["heldout_mean_t2i_recall@10"] = float(np.mean([row[f"{s}_t2i_recall@10"] for s in HELDOUT]))
        return row

    report = None if args.finish_only else train(pairs, text, args.out, cfg, evaluators=[mean_eval])
    config_path = args.out / "config.json"
    if (inference or hubness or float16) and config_path.is_file():
        final = PictogramConfig.from_dict({**json.loads(config_path.read_text(encoding="utf-8")), **inference})
        config_path.write_text(json.dumps(final.to_dict(), indent=2), encoding="utf-8")
        if final.gap_shift:
            remeasure_gap(args.out, pairs, text, cfg.seed)
        if hubness or float16:
            add_hubness(args.out, pairs, text, cfg.seed, hubness, float16)
        # the card says what was applied after training (and, with --finish-only, to which version)
        card_path = args.out / "xmodal_encoder.json"
        card = json.loads(card_path.read_text(encoding="utf-8"))
        card["after_training"] = {**inference, **hubness, "float16_weights": float16}
        card["version"] = cfg.version
        card_path.write_text(json.dumps(card, indent=2), encoding="utf-8")
        final_encoder = PictogramEncoder(str(args.out))
        row = mean_eval(lambda px: final_encoder.encode_images(composite_pil(px)), final_encoder.text_query_for_images)
        (args.out / "heldout_final.json").write_text(json.dumps(row, indent=1), encoding="utf-8")
        print(
            f"inference settings {inference | hubness}: held-out mean t2i R@10 {row['heldout_mean_t2i_recall@10']:.4f}"
        )
    if report is None:
        return 0
    print(
        json.dumps(
            {
                "best_epoch": report.best_epoch,
                "best": report.best_score,
                "seconds": round(report.seconds),
                "interrupted": report.interrupted,
            }
        ),
        flush=True,
    )
    return 130 if report.interrupted else 0


if __name__ == "__main__":
    raise SystemExit(main())
