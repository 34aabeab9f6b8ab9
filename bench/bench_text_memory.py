#!/usr/bin/env python
"""The pictogram memory's text side on the held-out sets: text->image Recall@10 with it off and
for a grid of its settings (k nearest names, softmax sharpness, weight), then pseudo-relevance
feedback on top of the shipped setting (the mean of the top m pictures added to the query).

The pictures are encoded once through the real encoder (indexed form: pull, gap shift, hubness
correction); every setting is the encoder's own ``text_query_for_images`` with the memory's
settings changed in place (tests/test_text_query_for_images.py checks it against the formula).
``--model``: a pictogram model with a memory (default: the bundled one).

    python bench/bench_text_memory.py --data CACHE_DIR/data [--model DIR]
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
    ap.add_argument("--model", default=None)
    args = ap.parse_args(argv)

    from build_pictogram_data import HELDOUT_SETS
    from train_pictogram import composite_pil

    from xmodal.encoders.minilm import MiniLMEncoder
    from xmodal.encoders.pictogram import PictogramEncoder
    from xmodal.eval.metrics import dense_metrics

    enc = PictogramEncoder(args.model)
    if not enc.config.memory_size:
        raise SystemExit("--model: need a pictogram model with a memory")
    memory = enc._net[-1].memory
    shipped = (memory.text_k, memory.text_beta, memory.text_weight)
    text = MiniLMEncoder()
    sets = []
    for s in HELDOUT_SETS:
        items = json.loads((args.data / f"heldout-{s}.json").read_text(encoding="utf-8"))
        queries = sorted({x["query"] for x in items})
        pos = np.array([[x["query"] == q for x in items] for q in queries], dtype=bool)
        pictures = enc.encode_images(composite_pil(np.load(args.data / f"heldout-{s}.npz")["images"]))
        sets.append((s, pictures, text.encode_text(queries), pos))

    def recall(k: int, beta: float, weight: float, prf: tuple[int, float] = (0, 0.0)) -> list[float]:
        memory.text_k, memory.text_beta, memory.text_weight = k, beta, weight
        out = []
        for _, pictures, queries, pos in sets:
            sims = memory.text_query(queries) @ pictures.T
            m, gamma = prf
            if m:
                top = np.argsort(-sims, axis=1)[:, :m]
                sims = sims + gamma * (pictures[top].mean(axis=1) @ pictures.T)
            out.append(dense_metrics(sims, pos)["recall@10"])
        return out

    def show(label: str, r: list[float]) -> None:
        print(f"| {label} | " + " | ".join(f"{x:.3f}" for x in r) + f" | {np.mean(r):.4f} |", flush=True)

    print("| text side | " + " | ".join(s for s, *_ in sets) + " | mean |")
    print("|---|" + "---|" * (len(sets) + 1))
    show("off (text vectors only)", recall(shipped[0], shipped[1], 0.0))
    for k in (3, 10, 20):
        for beta in (10.0, 20.0, 50.0):
            for weight in (0.1, 0.2, 0.3):
                mark = " (shipped)" if (k, beta, weight) == shipped else ""
                show(f"k {k}, beta {beta:g}, weight {weight:g}{mark}", recall(k, beta, weight))
    for m in (1, 3):
        for gamma in (0.1, 0.2):
            show(f"shipped + feedback from the top {m}, weight {gamma:g}", recall(*shipped, prf=(m, gamma)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
