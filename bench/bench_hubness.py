#!/usr/bin/env python
"""Hubness correction settings on the held-out pictogram sets: text->image Recall@10 of a model
without the correction, then with it for a grid of caption banks, k and weights.

Every setting is applied exactly as ``GapShift`` does (unit vector + gap - weight x (hub score -
training mean) x m/|m|^2, then L2-normalised like every encoder output), from one encoding of
the pictures, so the whole grid is one run. ``--model`` must be a model without a bank (e.g.
version 6); caption vectors come from the recipe's cache (DATA/cache), as in training.

    python bench/bench_hubness.py --data CACHE_DIR/data --model V6_DIR
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--model", required=True, help="pictogram model dir without a hubness bank")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import torch
    from build_pictogram_data import HELDOUT_SETS
    from PIL import Image
    from train_pictogram import CachedText, composite_pil

    from xmodal.encoders.pictogram import PictogramEncoder
    from xmodal.eval.metrics import dense_metrics
    from xmodal.train.augment import composite_white
    from xmodal.train.data import load_npz_pairs
    from xmodal.train.hubness import caption_bank
    from xmodal.train.trainer import embed_captions
    from xmodal.types import Modality

    enc = PictogramEncoder(args.model)
    if enc.config.hubness_bank or not enc.config.gap_shift:
        raise SystemExit("--model: need a model with the gap shift and without a hubness bank")
    gap = enc._net[-1].gap.float().numpy()
    text = CachedText(args.data / "cache")
    pairs = load_npz_pairs(args.data / "train.npz", args.data / "train.json")
    _, captions, _ = embed_captions(pairs, text)
    rng = np.random.default_rng(args.seed)
    sample = np.sort(rng.choice(len(pairs), size=min(len(pairs), 4096), replace=False))
    train_unit = enc.encode_query(Modality.IMAGE, composite_pil(pairs.pixels[sample]))
    mean = captions.astype(np.float64).mean(axis=0)
    direction = (mean / float(mean @ mean)).astype(np.float32)

    sets = []
    for s in HELDOUT_SETS:
        items = json.loads((args.data / f"heldout-{s}.json").read_text(encoding="utf-8"))
        pixels = np.load(args.data / f"heldout-{s}.npz")["images"]
        queries = sorted({x["query"] for x in items})
        pos = np.array([[x["query"] == q for x in items] for q in queries], dtype=bool)
        unit = enc.encode_query(Modality.IMAGE, [Image.fromarray(p) for p in composite_white(pixels)])
        sets.append((s, unit, text.encode_text(queries), pos))

    def recall(bank: np.ndarray | None, k: int, weight: float) -> list[float]:
        out = []
        for _, unit, q, pos in sets:
            vec = unit + gap
            if bank is not None:
                b = torch.from_numpy(bank)
                score = (torch.from_numpy(unit) @ b.t()).topk(k, dim=-1).values.mean(-1).numpy()
                ref = float((torch.from_numpy(train_unit) @ b.t()).topk(k, dim=-1).values.mean(-1).mean())
                vec = vec - weight * (score - ref)[:, None] * direction
            vec = vec / np.linalg.norm(vec, axis=1, keepdims=True)
            out.append(dense_metrics(q @ vec.T, pos)["recall@10"])
        return out

    names = [s for s, *_ in sets]
    print("| bank | k | weight | " + " | ".join(names) + " | mean |")
    print("|---|---|---|" + "---|" * (len(names) + 1))
    base = recall(None, 0, 0.0)
    print("| none | | | " + " | ".join(f"{v:.3f}" for v in base) + f" | {np.mean(base):.3f} |", flush=True)
    banks = {
        "10,000 random captions": captions[rng.choice(len(captions), 10000, replace=False)],
        "20,000 random captions": captions[rng.choice(len(captions), 20000, replace=False)],
        f"all {len(captions):,} captions": captions,
        "8,000 centroids": caption_bank(captions, 8000, args.seed),
    }
    for name, bank in banks.items():
        bank = np.ascontiguousarray(bank, dtype=np.float32)
        for k in (5, 10, 20):
            for weight in (0.3, 0.5, 0.7):
                r = recall(bank, k, weight)
                cells = " | ".join(f"{v:.3f}" for v in r)
                print(f"| {name} | {k} | {weight} | {cells} | {np.mean(r):.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
