#!/usr/bin/env python
"""Held-out table of a pictogram model: text->image and image->text Recall@1/5/10 (ranx
definitions, via xmodal.eval.metrics) on each held-out set, next to random-chance baselines.

Images go through the real inference path (``PictogramEncoder`` on PIL images composited on
white); queries through MiniLM, then the model's own text-query vectors for pictures when it has
them (``text_query_for_images``). Prints a markdown table and writes JSON with ``--json``.

    python scripts/eval_pictogram_heldout.py --model xmodal/data/models/pictogram --data DATA_DIR
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from build_pictogram_data import HELDOUT_SETS as HELDOUT  # the sets it writes; scripts/ is on sys.path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default=None, help="model dir (default: the bundled model)")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)

    from PIL import Image

    from xmodal.encoders.minilm import MiniLMEncoder
    from xmodal.encoders.pictogram import PictogramEncoder
    from xmodal.eval.metrics import dense_metrics, random_recall_at_k
    from xmodal.train.augment import composite_white
    from xmodal.types import Modality

    image_enc, text_enc = PictogramEncoder(args.model), MiniLMEncoder()
    rows = {}
    by_size: dict[str, dict[int, tuple[int, float]]] = {}
    for s in HELDOUT:
        pixels = np.load(args.data / f"heldout-{s}.npz")["images"]
        items = json.loads((args.data / f"heldout-{s}.json").read_text(encoding="utf-8"))
        queries = sorted({x["query"] for x in items})
        pos = np.array([[x["query"] == q for x in items] for q in queries], dtype=bool)
        pictures = [Image.fromarray(p) for p in composite_white(pixels)]
        text = text_enc.encode_text(queries)
        # indexed pictures (with the gap shift) for text queries; query pictures (without it)
        # against the texts, exactly as a collection uses them
        indexed = image_enc.encode_images(pictures)
        # text queries score pictures with the model's own query vectors when it has them
        # (its memory of pictures per name), as SearchPipeline does
        for_images = image_enc.text_query_for_images(text)
        sims = (text if for_images is None else for_images) @ indexed.T
        t2i = dense_metrics(sims, pos)
        by_size[s] = recall_by_group_size(sims, pos)
        query_pictures = image_enc.encode_query(Modality.IMAGE, pictures)
        i2t = dense_metrics(query_pictures @ text.T, pos.T)
        i2i = image_to_image(query_pictures, indexed, [x["query"] for x in items])
        n_img, n_q = len(items), len(queries)
        rows[s] = {
            "images": n_img,
            "queries": n_q,
            **{f"t2i_{k}": v for k, v in t2i.items()},
            **{f"i2t_{k}": v for k, v in i2t.items()},
            **{f"i2i_{k}": v for k, v in i2i.items()},
            **{f"t2i_random_recall@{k}": random_recall_at_k(n_img, k) for k in (1, 5, 10)},
            **{f"i2t_random_recall@{k}": random_recall_at_k(n_q, k) for k in (1, 5, 10)},
        }
    print(
        "| held-out set | images | queries | t2i R@1 | R@5 | R@10 | i2t R@1 | R@5 | R@10 "
        "| t2i hit@10 | random t2i R@10 | random i2t R@10 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for s, r in rows.items():
        cells = [f"{r[f'{d}_recall@{k}']:.3f}" for d in ("t2i", "i2t") for k in (1, 5, 10)]
        base = [
            f"{r['t2i_hit@10']:.3f}",
            f"{r['t2i_random_recall@10']:.4f}",
            f"{r['i2t_random_recall@10']:.4f}",
        ]
        print(f"| {s} | {r['images']} | {r['queries']} | " + " | ".join(cells + base) + " |")
    print("\n| held-out set | image queries | i2i R@1 | R@10 | MRR@10 |\n|---|---|---|---|---|")
    for s, r in rows.items():
        cells = [f"{r[f'i2i_{m}']:.3f}" for m in ("recall@1", "recall@10", "mrr@10")]
        print(f"| {s} | {r['i2i_queries']:.0f} | " + " | ".join(cells) + " |")
    print("\n| held-out set | relevant images per query | queries | t2i R@10 |\n|---|---|---|---|")
    for s, table in by_size.items():
        for size, (n, recall) in sorted(table.items()):
            print(f"| {s} | {size} | {n} | {recall:.3f} |")
    if args.json:
        for s, table in by_size.items():
            rows[s]["t2i_recall@10_by_group_size"] = {str(k): v[1] for k, v in table.items()}
        args.json.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0


def image_to_image(queries: np.ndarray, indexed: np.ndarray, groups: list[str]) -> dict[str, float]:
    """Each picture of a group with others (skin tones, -fill / -solid variants) as a query
    picture against every other indexed picture of the set; relevant = the rest of its group."""
    from xmodal.eval.metrics import dense_metrics

    g = np.array(groups)
    same = g[:, None] == g[None, :]
    np.fill_diagonal(same, False)
    rows = np.flatnonzero(same.any(axis=1))
    sims = queries[rows] @ indexed.T
    sims[np.arange(len(rows)), rows] = -np.inf  # never the query itself
    return {**dense_metrics(sims, same[rows]), "queries": float(len(rows))}


def recall_by_group_size(sims: np.ndarray, pos: np.ndarray, k: int = 10) -> dict[int, tuple[int, float]]:
    """Text->image Recall@k averaged over the queries with the same number of relevant images
    (e.g. an emoji and its five skin tones): {size: (queries, recall)}."""
    top = np.argsort(-sims, axis=1)[:, :k]
    found = np.take_along_axis(pos, top, axis=1).sum(axis=1)
    sizes = pos.sum(axis=1)
    return {int(n): (int((sizes == n).sum()), float((found / sizes)[sizes == n].mean())) for n in np.unique(sizes)}


if __name__ == "__main__":
    raise SystemExit(main())
