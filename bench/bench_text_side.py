#!/usr/bin/env python
"""What the pictogram memory's text side costs a text query: search latency (encode + the
image tower's own query vector + two filtered ANN searches + catalog) against the same model
with the text side off (one search), on mixed collections of synthetic picture and text vectors.

Both collections hold the same vectors; they differ only in the model directory (the shipped one,
and a copy with ``memory_text_weight`` 0). Queries alternate between the two, in one run.

    python bench/bench_text_side.py --sizes 1000 50000 --queries 40
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

QUERIES = ["red umbrella", "arrow pointing left", "smiling face with hearts", "file with a lock", "cloud rain",
           "trash can", "quarterly revenue", "a man turns into a bug", "calendar", "person walking",
           "house", "bell", "camera", "envelope", "music note", "chat bubble with dots", "shopping cart",
           "truth is stranger than fiction", "battery charging", "sun behind cloud"]  # fmt: skip


def fill(coll, n: int, seed: int) -> None:  # type: ignore[no-untyped-def]
    """n picture items (one image vector each) and n text items (one text vector each)."""
    from xmodal.catalog import VectorRecord
    from xmodal.types import Item, Modality, Segment, VectorKind

    rng = np.random.default_rng(seed)
    now = time.time()
    for start in range(0, n, 5000):
        entries = []
        for i in range(start, min(n, start + 5000)):
            for kind, modality in ((VectorKind.IMAGE, Modality.IMAGE), (VectorKind.TEXT, Modality.TEXT)):
                vec = rng.normal(size=384).astype(np.float32)
                vec /= np.linalg.norm(vec)
                uri = f"/synthetic/{kind.value}-{i}"
                item = Item(f"{kind.value}{i}", uri, modality, f"h{kind.value}{i}", 1, {}, "", now, now)
                entries.append((item, 0, [VectorRecord(kind, vec, Segment("x" if kind is VectorKind.TEXT else ""))]))
        coll._write_items(entries)
    coll._save_index()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 50000], help="items of each kind")
    ap.add_argument("--queries", type=int, default=40, help="timed queries per model and size")
    args = ap.parse_args()

    from xmodal.collection import Collection
    from xmodal.config import ModelConfig
    from xmodal.encoders.pictogram import bundled_model_dir
    from xmodal.search import Query, TextQueryVectors

    root = Path(tempfile.mkdtemp(prefix="xmodal-textside-"))
    off = root / "model-off"
    shutil.copytree(bundled_model_dir(), off)
    cfg = json.loads((off / "config.json").read_text(encoding="utf-8"))
    (off / "config.json").write_text(json.dumps({**cfg, "memory_text_weight": 0.0}), encoding="utf-8")
    models = {"text side on (shipped)": bundled_model_dir(), "text side off (baseline)": off}
    print("| items per kind | model | p50 ms | p99 ms | p50 / baseline |")
    print("|---|---|---|---|---|")
    for n in args.sizes:
        colls = {}
        for label, d in models.items():
            coll = Collection.open(root / f"c{n}-{len(colls)}", create=True, model=ModelConfig(image=f"pictogram:{d}"))
            fill(coll, n, seed=n)
            colls[label] = coll
        on = next(iter(colls.values()))
        assert isinstance(on.pipeline.encode(Query.text("x")), TextQueryVectors)
        times: dict[str, list[float]] = {label: [] for label in colls}
        for q in QUERIES:  # warm-up: model loads, kind lists
            for coll in colls.values():
                coll.search(q, k=10)
        for i in range(args.queries):
            q = QUERIES[i % len(QUERIES)] + f" {i}"  # new text: no cache anywhere
            for label, coll in colls.items():
                t = time.perf_counter()
                coll.search(q, k=10)
                times[label].append((time.perf_counter() - t) * 1000)
        base = statistics.median(times["text side off (baseline)"])
        for label, ts in times.items():
            p99 = float(np.percentile(ts, 99))
            print(f"| {n:,} | {label} | {statistics.median(ts):.1f} | {p99:.1f} | {statistics.median(ts) / base:.2f} |")
        for coll in colls.values():
            coll.close()
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
