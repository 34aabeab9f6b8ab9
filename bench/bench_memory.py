#!/usr/bin/env python
"""The pictogram memory (xmodal.encoders.pictogram_memory) on the held-out sets: text->image
Recall@10 of a model without it, then with memories of different training pictures, stored
exactly or product-quantised as shipped, for a few pull weights; image->text for each too.

Every setting is the formula the encoder applies (tests/test_pictogram_memory.py checks the
encoder against it): u' = unit(u + w * unit(sum softmax(beta * cos) * name)) over the k nearest
remembered pictures, then the gap shift and the hubness correction with the name table as the
bank, L2-normalised. One encoding of the pictures serves the whole grid. ``--model``: any
pictogram model with the gap shift (its memory, if any, is not used: vectors are taken before
it). Names are first captions, vectors from the recipe's cache (DATA/cache), as in training.

    python bench/bench_memory.py --data CACHE_DIR/data --model MODEL_DIR
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
EMOJI_SETS = ("emoji-google", "emoji-twitter", "noto", "twemoji")


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True).clip(1e-12)).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import torch
    from build_pictogram_data import HELDOUT_SETS
    from train_pictogram import CachedText, composite_pil, gap_sample, one_per_set_and_name

    from xmodal.encoders.pictogram import PictogramEncoder, hub_score, images_to_array
    from xmodal.encoders.pictogram_memory import pq_decode
    from xmodal.eval.metrics import dense_metrics
    from xmodal.train.data import load_npz_pairs
    from xmodal.train.hubness import caption_direction
    from xmodal.train.memory import product_quantise

    torch.set_num_threads(2)
    enc = PictogramEncoder(args.model)
    cfg = enc.config
    if not cfg.gap_shift:
        raise SystemExit("--model: need a model with the gap shift")
    gap = enc._net[-1].gap.float().numpy()

    def plain(pixels: np.ndarray) -> np.ndarray:
        """Unit vectors before the memory (the output layer's, normalised)."""
        out = []
        for i in range(0, len(pixels), 256):
            x = torch.from_numpy(images_to_array(composite_pil(pixels[i : i + 256]), cfg.image_size, cfg.fit_content))
            with torch.inference_mode():
                out.append(_unit(enc._net[:-1](x).numpy()))
        return np.concatenate(out)

    text = CachedText(args.data / "cache")
    pairs = load_npz_pairs(args.data / "train.npz", args.data / "train.json")
    assert pairs.sources is not None
    firsts = [c[0] for c in pairs.captions]
    names = sorted(set(firsts))
    row = {c: j for j, c in enumerate(names)}
    table = _unit(text.encode_text(names))
    name_ids = np.array([row[c] for c in firsts])
    pictures = plain(pairs.pixels)
    hub_sample = pictures[gap_sample(pairs, args.seed)]
    direction = caption_direction(table)
    sources = np.array(pairs.sources)
    selections = {
        "all pictures": np.arange(len(pairs)),
        "one per set and name (shipped)": one_per_set_and_name(pairs),
        "emoji sets only": np.flatnonzero(np.isin(sources, EMOJI_SETS)),
        "icon sets only": np.flatnonzero(~np.isin(sources, EMOJI_SETS)),
    }
    sets = []
    for s in HELDOUT_SETS:
        items = json.loads((args.data / f"heldout-{s}.json").read_text(encoding="utf-8"))
        queries = sorted({x["query"] for x in items})
        pos = np.array([[x["query"] == q for x in items] for q in queries], dtype=bool)
        pix = np.load(args.data / f"heldout-{s}.npz")["images"]
        sets.append((s, plain(pix), text.encode_text(queries), pos))

    def pq(x: np.ndarray) -> np.ndarray:
        codes, books = product_quantise(x, 96, args.seed)
        return pq_decode(torch.from_numpy(codes), torch.from_numpy(books)).numpy()

    def score(keys, ids, bank, weight, query=False):  # type: ignore[no-untyped-def]
        """t2i (or i2t) Recall@10 per held-out set with this memory (keys None: no memory)."""
        bank_t = torch.from_numpy(bank)
        hub_mean = float(hub_score(torch.from_numpy(hub_sample), bank_t, 10).mean())
        out = []
        for _, u, tq, pos in sets:
            if keys is not None:
                sims, idx = torch.from_numpy(u @ keys.T).topk(10, dim=-1)
                w = torch.softmax(20.0 * sims, dim=-1).numpy()
                u = _unit(u + weight * _unit((w[..., None] * bank[ids[idx.numpy()]]).sum(axis=1)))
            if query:
                out.append(dense_metrics(u @ tq.T, pos.T)["recall@10"])
                continue
            hub = hub_score(torch.from_numpy(u), bank_t, 10).numpy() - hub_mean
            v = _unit(u + gap - 0.5 * hub[:, None] * direction)
            out.append(dense_metrics(tq @ v.T, pos)["recall@10"])
        return out

    def show(label: str, r: list[float]) -> None:
        print(f"| {label} | " + " | ".join(f"{x:.3f}" for x in r) + f" | {np.mean(r):.4f} |", flush=True)

    print("| memory | " + " | ".join(s for s, *_ in sets) + " | mean |")
    print("|---|" + "---|" * (len(sets) + 1))
    table_pq = pq(table)
    show("none (hubness bank: the exact name table)", score(None, None, table, 0.0))
    show("none (hubness bank: the name table, PQ)", score(None, None, table_pq, 0.0))
    for label, keep in selections.items():
        keys_pq = pq(pictures[keep])
        for weight in (0.1, 0.15, 0.2):
            show(f"{label}, exact, weight {weight}", score(pictures[keep], name_ids[keep], table, weight))
            show(f"{label}, PQ, weight {weight}", score(keys_pq, name_ids[keep], table_pq, weight))
    keep = selections["one per set and name (shipped)"]
    show("image->text: no memory", score(None, None, table, 0.0, query=True))
    show("image->text: shipped memory (PQ, 0.15)", score(pq(pictures[keep]), name_ids[keep], table_pq, 0.15, True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
