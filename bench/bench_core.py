"""Core benchmark: ingest items/s per modality, no-op re-run, query latency, index engines.

Every figure is printed beside its baseline from the same run (the machine is noisy: read
ratios). Usage:  .venv/bin/python bench/bench_core.py [--texts 200 --scans 60 --clips 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def build(root: Path, n_text: int, n_scans: int, n_clips: int) -> dict[str, Path]:
    from xmodal.demo import _spoken_form, load_quotes, render_document, speak

    quotes = load_quotes()
    dirs = {m: root / m for m in ("text", "image", "audio")}
    for d in dirs.values():
        d.mkdir(parents=True)
    for i in range(n_text):
        (dirs["text"] / f"t{i:04d}.txt").write_text(quotes[i % len(quotes)] + f"\n(copy {i})\n", encoding="utf-8")
    for i in range(n_scans):
        render_document(quotes[(i * 7) % len(quotes)], dirs["image"] / f"s{i:04d}.png", seed=i)
    shorts = [q for q in quotes if len(_spoken_form(q)) < 140]
    for i in range(n_clips):
        speak(_spoken_form(shorts[i % len(shorts)]), dirs["audio"] / f"a{i:04d}.wav")
    return dirs


def clustered(n: int, dim: int = 384, centers: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Embedding-like data: unit vectors around topics; queries are near (not at) stored points.
    (Uniform random vectors in 384-d have no neighbours worth the name: every ANN fails there.)"""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centers, dim)).astype(np.float32)
    xb = c[rng.integers(0, centers, n)] + 1.0 * rng.standard_normal((n, dim)).astype(np.float32)
    xb /= np.linalg.norm(xb, axis=1, keepdims=True)
    xq = xb[rng.choice(n, 200, replace=False)] + 0.04 * rng.standard_normal((200, dim)).astype(np.float32)
    xq /= np.linalg.norm(xq, axis=1, keepdims=True)
    return xb, xq


def timed(fn):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs) * 1000.0, q))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--texts", type=int, default=200)
    ap.add_argument("--scans", type=int, default=60)
    ap.add_argument("--clips", type=int, default=30)
    ap.add_argument("--vectors", type=int, default=100_000)
    args = ap.parse_args()

    from xmodal.collection import Collection
    from xmodal.encoders.registry import default_registry
    from xmodal.index import IndexConfig, create_index, faiss_index

    parallel_queries = faiss_index.PARALLEL_QUERIES

    tmp = Path(tempfile.mkdtemp(prefix="xmodal-bench-"))
    dirs = build(tmp / "media", args.texts, args.scans, args.clips)
    reg = default_registry()
    coll, t_open = timed(lambda: Collection.open(tmp / "coll", create=True, registry=reg))
    # warm the extractors so per-modality rates measure work, not model loading
    coll.embedder.ocr()
    coll.embedder.asr()
    enc = coll.embedder.text_encoder
    rows = []
    for modality in ("text", "image", "audio"):
        report, secs = timed(lambda m=modality: coll.add([dirs[m]]))
        assert report.failed == 0, report.failures
        rows.append((modality, report.added, secs, report.added / secs))
    total_first = sum(r[2] for r in rows)
    noop, t_noop = timed(lambda: coll.add([tmp / "media"]))
    assert noop.unchanged == sum(r[1] for r in rows)

    # bare encoder on the same texts: the baseline for pipeline overhead
    texts = [p.read_text(encoding="utf-8") for p in sorted(dirs["text"].iterdir())]
    _, t_bare = timed(lambda: enc.encode_text(texts))

    queries = ["umbrella when the sun is shining", "a man turns into a bug", "truth", "money and writing",
               "shakespeare", "the cat carried by its tail", "time is important", "books nobody reads"]  # fmt: skip
    for q in queries:  # warm-up
        coll.search(q, k=10)
    lat, enc_only, lat_omp = [], [], []
    for block in range(6):  # alternating blocks: xmodal's setting, then FAISS on its default
        # OpenMP threads for single queries too (before session 15); idle OpenMP workers spin
        # into what follows them, so the two must not interleave query by query
        faiss_index.PARALLEL_QUERIES = parallel_queries if block % 2 == 0 else 1
        coll.search(queries[-1], k=10)
        for q in queries * 3:
            if block % 2 == 0:
                lat.append(timed(lambda q=q: coll.search(q, k=10))[1])
                enc_only.append(timed(lambda q=q: enc.encode_text([q]))[1])
            else:
                lat_omp.append(timed(lambda q=q: coll.search(q, k=10))[1])
    faiss_index.PARALLEL_QUERIES = parallel_queries

    cli_env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cli_cmd = [sys.executable, "-m", "xmodal.cli.main", "search", "truth", "-c", str(tmp / "coll"), "--json"]
    cold = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run(cli_cmd, check=True, capture_output=True, env=cli_env)
        cold.append(time.perf_counter() - t)
    imp = [sys.executable, "-c", "import xmodal.cli.main"]
    t = time.perf_counter()
    subprocess.run(imp, check=True, env=cli_env)
    t_import = time.perf_counter() - t

    # index engines at scale, against numpy brute force
    xb, xq = clustered(args.vectors)
    ids = np.arange(args.vectors, dtype=np.int64)
    truth = np.argsort(-(xq @ xb.T), axis=1)[:, :10]
    engine_rows = []
    brute = []
    for q in xq[:100]:
        t = time.perf_counter()
        np.argpartition(-(xb @ q), 10)[:10]
        brute.append(time.perf_counter() - t)
    for cfg in (
        IndexConfig("flat"),
        IndexConfig("hnsw", {"m": 32, "ef_construction": 80, "ef_search": 64}),
        IndexConfig("hnsw", {"m": 32, "ef_construction": 80, "ef_search": 256}),
    ):
        index = create_index(cfg, 384)
        _, t_build = timed(lambda index=index: index.add(ids, xb))
        single = []
        for q in xq[:100]:
            single.append(timed(lambda q=q, index=index: index.search(q[None, :], 10))[1])
        _, found = index.search(xq, 10)
        recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])
        label = cfg.kind + (f" ef_search={cfg.params['ef_search']}" if cfg.params else "")
        engine_rows.append((label, t_build, pct(single, 50), pct(single, 99), recall))

    print(f"\n## xmodal core benchmark ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores)\n")
    print(f"Command: `.venv/bin/python bench/bench_core.py --texts {args.texts} --scans {args.scans} "
          f"--clips {args.clips} --vectors {args.vectors}`\n")  # fmt: skip
    print("### Ingest (default stack: MiniLM + RapidOCR + Whisper tiny.en; models warm)\n")
    print("| modality | items | seconds | items/s |\n|---|---|---|---|")
    for m, n, s, r in rows:
        print(f"| {m} | {n} | {s:.1f} | {r:.1f} |")
    print(f"\nBaseline for text: the bare MiniLM encoder on the same {len(texts)} texts runs at "
          f"{len(texts) / t_bare:.1f} items/s; the pipeline reaches {rows[0][3] / (len(texts) / t_bare):.2f}x of it "
          f"(hashing, decoding, chunking, SQLite, FAISS).\n")  # fmt: skip
    n_all = sum(r[1] for r in rows)
    print(f"Re-run on the same {n_all} files (no-op): {t_noop:.3f}s vs {total_first:.1f}s first run "
          f"= {t_noop / total_first:.4f}x ({total_first / max(t_noop, 1e-9):.0f} times faster).\n")  # fmt: skip
    print(f"Collection create + model load: {t_open:.1f}s.\n")
    print(f"### Query latency ({len(lat)} text queries, k=10, {coll.catalog.vector_count()} vectors, warm)\n")
    print("| stage | p50 ms | p99 ms |\n|---|---|---|")
    print(f"| full search (encode + FAISS + catalog) | {pct(lat, 50):.1f} | {pct(lat, 99):.1f} |")
    print(f"| baseline: query encoding alone | {pct(enc_only, 50):.1f} | {pct(enc_only, 99):.1f} |")
    print(f"| full search, FAISS on its default OpenMP threads | {pct(lat_omp, 50):.1f} | {pct(lat_omp, 99):.1f} |")
    print(f"\nSearch overhead beyond encoding: {pct(lat, 50) / pct(enc_only, 50):.2f}x of encode time at p50.\n")
    print(f"CLI cold start `xmodal search` (process + model load): median {statistics.median(cold):.2f}s; "
          f"baseline `import xmodal.cli.main` alone {t_import:.2f}s.\n")  # fmt: skip
    print(f"### Index engines ({args.vectors:,} clustered unit vectors, 384-d, 100 single queries, k=10)\n")
    print("| engine | build s | p50 ms | p99 ms | recall@10 | p50 vs numpy brute force |\n|---|---|---|---|---|---|")
    b50 = pct(brute, 50)
    print(f"| numpy brute force (baseline) | - | {b50:.2f} | {pct(brute, 99):.2f} | 1.000 | 1.00x |")
    for kind, tb, p50, p99, rec in engine_rows:
        print(f"| faiss {kind} | {tb:.1f} | {p50:.2f} | {p99:.2f} | {rec:.3f} | {p50 / b50:.2f}x |")
    coll.close()


if __name__ == "__main__":
    main()
