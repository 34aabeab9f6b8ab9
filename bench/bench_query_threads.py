"""Single-query search latency with FAISS on one OpenMP thread (xmodal's setting below
``faiss_index.PARALLEL_QUERIES`` queries) against FAISS's default threads, in alternating blocks
on an existing collection opened as a server opens it:

    python bench/bench_query_threads.py -c demo-data/collection [--blocks 10]

Idle OpenMP workers spin after a parallel region and take the cores from the text model's next
forward pass, so the two settings run in blocks, never interleaved query by query.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

QUERIES = ["umbrella when the sun is shining", "a man turns into a bug", "truth", "money and writing",
           "shakespeare", "the cat carried by its tail", "time is important", "books nobody reads"]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("-c", "--collection", type=Path, required=True)
    ap.add_argument("--blocks", type=int, default=10)
    args = ap.parse_args()

    from xmodal.collection import Collection
    from xmodal.index import faiss_index

    ours = faiss_index.PARALLEL_QUERIES
    with Collection.open(args.collection) as coll:
        enc = coll.embedder.text_encoder
        for q in QUERIES:  # warm-up: models loaded, caches filled
            coll.search(q, k=10)
        rows: dict[str, list[float]] = {"one thread": [], "default threads": [], "encode only": []}
        for block in range(args.blocks):
            faiss_index.PARALLEL_QUERIES = ours if block % 2 == 0 else 1
            coll.search(QUERIES[-1], k=10)
            for q in QUERIES * 3:
                t = time.perf_counter()
                coll.search(q, k=10)
                rows["one thread" if block % 2 == 0 else "default threads"].append(time.perf_counter() - t)
                if block % 2 == 0:
                    t = time.perf_counter()
                    enc.encode_text([q])
                    rows["encode only"].append(time.perf_counter() - t)
        n = coll.catalog.vector_count()
    faiss_index.PARALLEL_QUERIES = ours
    print(f"{len(rows['one thread'])} text queries per setting, k=10, {n} vectors, warm\n")
    print("| search | p50 ms | p99 ms |\n|---|---|---|")
    labels = {
        "one thread": "FAISS on one thread for single queries (xmodal)",
        "default threads": "baseline: FAISS on its default OpenMP threads",
        "encode only": "query encoding alone (after a search)",
    }
    for key, label in labels.items():
        x = np.array(rows[key]) * 1e3
        print(f"| {label} | {np.median(x):.1f} | {np.percentile(x, 99):.1f} |")
    ratio = np.median(rows["one thread"]) / np.median(rows["default threads"])
    print(f"\np50 one thread / default threads: {ratio:.2f}x")


if __name__ == "__main__":
    main()
