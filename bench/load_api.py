"""Load test of the REST API: QPS and p50/p99 latency of text queries at 1, 8 and 32 concurrent
clients, against a server started here on loopback (nothing else is ever contacted).

    python bench/load_api.py                      # a synthetic 500-document collection, MiniLM
    python bench/load_api.py -c DEMO_COLLECTION   # an existing collection (e.g. the demo's)

Bounded: each level stops after --requests requests or --seconds seconds, whichever is first.
Two modes per level: "fresh" (every query text is new: encode + search) and "repeat" (20 query
texts over and over: served from the per-principal result cache after the first time)."""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

SUBJECTS = ["the harbour", "a violin", "the glacier", "an orchard", "the copper mine", "a falcon", "the lantern",
            "the desert", "a meadow", "the castle", "the river", "a mountain"]  # fmt: skip
VERBS = ["shines at", "is described in", "was sold near", "was painted beside", "echoes over", "is found near"]
PLACES = ["dawn", "the old town", "the northern coast", "the museum", "winter", "the market square"]


def synthetic_docs(folder: Path, n: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    for i in range(n):
        text = ". ".join(f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(PLACES)}" for _ in range(3))
        (folder / f"doc{i:04d}.txt").write_text(text.capitalize() + ".\n", encoding="utf-8")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[pos]


def run_level(base: str, key: str, clients: int, mode: str, max_requests: int, max_seconds: float) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(max_requests))
    deadline = time.monotonic() + max_seconds
    rng = random.Random(clients)
    repeat = [f"{rng.choice(SUBJECTS)} at {rng.choice(PLACES)}" for _ in range(20)]

    def worker(wid: int) -> None:
        nonlocal errors
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
            while time.monotonic() < deadline:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                if mode == "fresh":
                    text = f"{SUBJECTS[i % len(SUBJECTS)]} {PLACES[(i // 7) % len(PLACES)]} #{clients}-{i}"
                else:
                    text = repeat[i % len(repeat)]
                started = time.perf_counter()
                r = client.post("/search", json={"text": text, "k": 10})
                took = time.perf_counter() - started
                with lock:
                    if r.status_code == 200:
                        latencies.append(took)
                    else:
                        errors += 1

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return {
        "clients": clients,
        "mode": mode,
        "requests": len(latencies),
        "errors": errors,
        "seconds": round(wall, 2),
        "qps": round(len(latencies) / wall, 1) if wall > 0 else 0.0,
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 1) if latencies else float("nan"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-c", "--collection", type=Path, help="existing collection (default: a synthetic one)")
    ap.add_argument("--docs", type=int, default=500, help="documents in the synthetic collection")
    ap.add_argument("--levels", default="1,8,32", help="concurrent clients per level")
    ap.add_argument("--requests", type=int, default=300, help="at most this many requests per level and mode")
    ap.add_argument("--seconds", type=float, default=30.0, help="at most this long per level and mode")
    ap.add_argument("--threads", type=int, default=1, help="torch threads in the server (default 1)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(max(1, args.threads))
    from xmodal.access.store import AccessStore
    from xmodal.api import create_app
    from xmodal.api.server import serve_in_thread
    from xmodal.api.settings import ServeSettings
    from xmodal.collection import Collection

    levels = [int(x) for x in args.levels.split(",") if x.strip()]
    if not levels or min(levels) < 1 or max(levels) > 256:
        ap.error("--levels must be 1..256 clients")
    with tempfile.TemporaryDirectory(prefix="xmodal-load-") as tmp:
        if args.collection is None:
            docs = Path(tmp) / "docs"
            docs.mkdir()
            synthetic_docs(docs, args.docs)
            coll = Collection.open(Path(tmp) / "coll", create=True)
            t0 = time.perf_counter()
            coll.add([docs])
            print(f"indexed {len(coll)} documents in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        else:
            coll = Collection.open(args.collection)
        store = AccessStore(coll.path)
        key, info = store.create_key("load-test", note="bench/load_api.py (revoked at the end)")
        results = []
        try:
            app = create_app(ServeSettings(collection=coll.path), collection=coll)
            with serve_in_thread(app, host="127.0.0.1") as base:  # loopback only, by construction
                for clients in levels:
                    for mode in ("fresh", "repeat"):
                        res = run_level(base, key, clients, mode, args.requests, args.seconds)
                        results.append(res)
                        print(
                            f"{clients:>3} clients {mode:<6} {res['requests']:>5} req {res['qps']:>7.1f} QPS  "
                            f"p50 {res['p50_ms']:>7.1f} ms  p99 {res['p99_ms']:>7.1f} ms  errors {res['errors']}",
                            file=sys.stderr,
                        )
        finally:
            store.revoke(info.key_id)
            store.close()
            coll.close()
    summary = {"items": args.docs if args.collection is None else None, "cpu_count": os.cpu_count(),
               "torch_threads": args.threads, "results": results}  # fmt: skip
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print("| clients | mode | requests | QPS | p50 ms | p99 ms | errors |")
        print("|---:|---|---:|---:|---:|---:|---:|")
        for r in results:
            print(f"| {r['clients']} | {r['mode']} | {r['requests']} | {r['qps']} | {r['p50_ms']} | {r['p99_ms']} | "
                  f"{r['errors']} |")  # fmt: skip
    return 0 if all(r["errors"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
