#!/usr/bin/env python
"""Image encoding throughput of the pictogram encoder (goal: >= 300 images/s on 2 cores, batch 64).

Times ``PictogramEncoder.encode_images`` on in-memory PIL RGB images (decoding from disk is the
media layer's cost, not the encoder's), including resizing and L2-normalisation.

    python bench/bench_pictogram_encode.py [--model DIR] [--threads 2] [--n 2048] [--side 256]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None, help="model dir (default: the bundled model)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--side", type=int, nargs="+", default=[64, 256, 512])
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()

    import torch
    from PIL import Image

    from xmodal.encoders.pictogram import PictogramEncoder

    torch.set_num_threads(args.threads)
    enc = PictogramEncoder(args.model)
    enc.batch_size = args.batch
    rng = np.random.default_rng(0)
    results, checked = {}, {}
    for side in args.side:
        base = rng.integers(0, 256, size=(16, side, side, 3), dtype=np.uint8)
        images = [Image.fromarray(base[i % 16]) for i in range(args.n)]
        enc.encode_images(images[: args.batch])  # warm-up
        t = time.perf_counter()
        enc.encode_images(images)
        dt = time.perf_counter() - t
        results[f"{side}px"] = round(args.n / dt, 1)
        # as the embedder runs it at indexing: the blank-picture check first (Encoder.has_content)
        t = time.perf_counter()
        enc.encode_images([im for im in images if enc.has_content(im)])
        checked[f"{side}px"] = round(args.n / (time.perf_counter() - t), 1)
    print(json.dumps({"threads": args.threads, "batch": args.batch, "images_per_s": results,
                      "images_per_s_with_blank_check": checked}))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
