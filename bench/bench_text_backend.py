#!/usr/bin/env python
"""The bundled text model on xmodal's plain-PyTorch BERT against SentenceTransformer, side by side.

1. Cold start: wall time of a whole ``xmodal search`` process (interpreter start, imports, model
   loads, query, printing) on an existing collection, the two backends alternated ``--runs``
   times. The baseline forces the SentenceTransformer path (``BertSentenceModel`` patched to
   refuse every folder), which is what xmodal used before.
2. Bulk encoding: captions per second through ``MiniLMEncoder.encode_text`` (batches of 64),
   both backends in one process, alternated, and whether their vectors are bit-identical.

    python bench/bench_text_backend.py -c demo-data/collection [--runs 5] [--captions FILE.json]

``--captions``: a JSON list of strings, or the pictogram training ``train.json`` (its captions,
first-seen order); default: 2,048 synthetic captions.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

RUN = (
    "import sys\n"
    "import xmodal.encoders.minilm as m\n"
    "def refuse(*args, **kwargs):\n"
    "    raise ValueError('forced SentenceTransformer')\n"
    "if sys.argv.pop(1) == 'st':\n"
    "    m.BertSentenceModel = refuse\n"
    "from xmodal.cli.main import main\n"
    "sys.argv[0] = 'xmodal'\n"
    "sys.exit(main())\n"
)


def cold_start(collection: str, runs: int, query: str) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"torch": [], "st": []}
    for _ in range(runs):
        for backend in ("torch", "st"):
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-c", RUN, backend, "search", query, "-c", collection, "-k", "5"],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            times[backend].append(time.perf_counter() - started)
    return times


def captions(path: str | None, n: int) -> list[str]:
    if path is None:
        words = [
            "red",
            "blue",
            "umbrella",
            "cat",
            "dog",
            "arrow",
            "left",
            "right",
            "circle",
            "check",
            "invoice",
            "revenue",
            "grew",
        ]
        return [" ".join(words[(i * 7 + j * 3) % len(words)] for j in range(1 + i % 6)) for i in range(n)]
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if data and isinstance(data[0], dict):
        seen: dict[str, None] = {}
        for row in data:
            for caption in row["captions"]:
                seen.setdefault(caption, None)
        data = list(seen)
    return [str(t) for t in data][:n]


def bulk(texts: list[str], rounds: int) -> dict[str, object]:
    import numpy as np

    import xmodal.encoders.minilm as m

    ours = m.MiniLMEncoder()
    real = m.BertSentenceModel

    def refuse(*args: object, **kwargs: object) -> None:
        raise ValueError("forced SentenceTransformer")

    m.BertSentenceModel = refuse  # type: ignore[assignment,misc]
    try:
        st = m.MiniLMEncoder()
    finally:
        m.BertSentenceModel = real  # type: ignore[misc]
    assert ours._bert is not None and st._bert is None
    rates: dict[str, list[float]] = {"torch": [], "st": []}
    vectors = {}
    for _ in range(rounds):
        for name, enc in (("torch", ours), ("st", st)):
            started = time.perf_counter()
            vectors[name] = enc.encode_text(texts)
            rates[name].append(len(texts) / (time.perf_counter() - started))
    diff = float(np.abs(vectors["torch"] - vectors["st"]).max())
    same = bool(np.array_equal(vectors["torch"], vectors["st"]))
    return {"captions_per_s": rates, "identical": same, "max_abs_diff": diff}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("-c", "--collection", required=True, help="an existing collection (e.g. make demo's)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--query", default="red umbrella")
    ap.add_argument("--captions", default=None)
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    times = cold_start(args.collection, args.runs, args.query)
    med = {k: statistics.median(v) for k, v in times.items()}
    out = {
        "cold_start_s": {k: [round(x, 2) for x in v] for k, v in times.items()},
        "cold_start_median_s": {k: round(v, 2) for k, v in med.items()},
        "st_over_torch": round(med["st"] / med["torch"], 2),
    }
    result = bulk(captions(args.captions, args.n), args.rounds)
    rates = result["captions_per_s"]
    assert isinstance(rates, dict)
    out["bulk"] = {
        "n": args.n,
        "captions_per_s": {k: [round(x) for x in v] for k, v in rates.items()},
        "identical": result["identical"],
        "max_abs_diff": result["max_abs_diff"],
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
