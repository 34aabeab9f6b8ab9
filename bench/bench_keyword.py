#!/usr/bin/env python
"""Dense, keyword and hybrid search side by side on human-labelled data, and their latency.

Documents: every emoji's CLDR name from ``emojibase-data`` (one text file each, e.g. "grinning
face with big eyes"). Queries: the keywords people attached to emoji in ``emojilib`` ("happy",
"love", "money"), each relevant to every emoji that lists it (keywords of 1 to 20 emoji, the
emoji's own name slug excluded, 600 drawn with seed 0). Two halves are reported apart:
*lexical* queries, whose word appears in the name of at least one relevant emoji (what keyword
search can find), and *semantic* ones, whose word appears in none ("happy" for "grinning face").
All three modes run on one collection with the default text model, through ``Collection.search``
and the eval harness (Recall@10, nDCG@10, MRR@10; ranx definitions), in one process.

    python bench/bench_keyword.py --emojibase DIR --emojilib DIR

DIR: an unpacked npm package (``npm pack emojibase-data@17.0.0 emojilib@4.0.3``, then ``tar xzf``),
the same versions the pictogram recipe pins (scripts/pictogram_sources.json).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import tempfile
import time
from pathlib import Path

MODES = ("dense", "keyword", "hybrid")


def build(emojibase: Path, emojilib: Path, n_queries: int, seed: int) -> tuple[dict[str, str], list[dict]]:
    labels: dict[str, str] = {}
    for rec in json.loads((emojibase / "en" / "data.json").read_text(encoding="utf-8")):
        labels[rec["emoji"]] = rec["label"]
    relevant: dict[str, set[str]] = {}
    lib = json.loads((emojilib / "dist" / "emoji-en-US.json").read_text(encoding="utf-8"))
    for emoji, words in lib.items():
        if emoji not in labels:
            continue
        for word in words[1:]:  # words[0] is the emoji's own name slug
            if re.fullmatch(r"[a-z][a-z ]*[a-z]", word):
                relevant.setdefault(word, set()).add(emoji)
    file_of = {e: "-".join(f"{ord(c):x}" for c in e) + ".txt" for e in labels}
    docs = {file_of[e]: labels[e] for e in labels}
    rng = random.Random(seed)
    words = sorted(w for w, found in relevant.items() if 1 <= len(found) <= 20)
    queries = []
    for word in rng.sample(words, min(n_queries, len(words))):
        found = sorted(file_of[e] for e in relevant[word])
        lexical = any(re.search(rf"\b{re.escape(word)}\b", labels[e].lower()) for e in relevant[word])
        queries.append({"query": word, "relevant": found, "kind": "lexical" if lexical else "semantic"})
    return docs, queries


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--emojibase", type=Path, required=True)
    ap.add_argument("--emojilib", type=Path, required=True)
    ap.add_argument("--queries", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from xmodal.collection import Collection
    from xmodal.eval.harness import EvalQuery, evaluate_queries
    from xmodal.search import Query

    docs, queries = build(args.emojibase, args.emojilib, args.queries, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        media = Path(tmp) / "media"
        media.mkdir()
        for name, text in docs.items():
            (media / name).write_text(text, encoding="utf-8")
        with Collection.open(Path(tmp) / "coll", create=True) as coll:
            coll.add([media])
            print(f"{len(docs)} documents, {len(queries)} queries "
                  f"({sum(q['kind'] == 'lexical' for q in queries)} lexical)")  # fmt: skip
            print("| mode | queries | Recall@10 | nDCG@10 | MRR@10 |")
            print("|---|---|---|---|---|")
            for kind in ("lexical", "semantic", "all"):
                subset = [q for q in queries if kind in ("all", q["kind"])]
                evals = [EvalQuery(str(i), "text", q["query"], tuple(q["relevant"]), i) for i, q in enumerate(subset)]
                for mode in MODES:

                    def search(q: EvalQuery, k: int, mode: str = mode) -> list[tuple[str, float]]:
                        return [(h.uri, h.score) for h in coll.search(q.value, k=k, mode=mode)]

                    m = evaluate_queries(evals, search, k=10).metrics
                    print(f"| {mode} ({kind}) | {len(evals)} | {m['recall@10']:.3f} | {m['ndcg@10']:.3f} "
                          f"| {m['mrr@10']:.3f} |")  # fmt: skip
            # latency: the modes interleaved, each query warm (its vector is not cached in-process);
            # "keyword, access list": a principal allowed every item, so BM25 is computed from
            # the visible rows' statistics (keywords.visible_bm25) instead of by FTS5
            everyone = {item.id for item in coll.items()}
            runs = [(mode, None) for mode in MODES] + [(mode, everyone) for mode in MODES]
            labels = [*MODES, *(f"{mode}, access list of every item" for mode in MODES)]
            times: dict[str, list[float]] = {label: [] for label in labels}
            for q in queries[:200]:
                for label, (mode, allow) in zip(labels, runs, strict=True):
                    t0 = time.perf_counter()
                    coll.search(Query.text(q["query"]), k=10, mode=mode, allow_items=allow)
                    times[label].append(time.perf_counter() - t0)
            base = statistics.median(times["dense"])
            print("\n| mode | p50 ms | p50 / dense |")
            print("|---|---|---|")
            for label in labels:
                p50 = statistics.median(times[label])
                print(f"| {label} | {p50 * 1000:.2f} | {p50 / base:.2f} |")


if __name__ == "__main__":
    main()
