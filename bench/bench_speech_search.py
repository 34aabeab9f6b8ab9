"""Text -> recording known-item search on the demo corpus (texts, scans, recordings,
pictograms, as `xmodal demo` builds them): each query is a window of 6-8 words of what one
recording says, and a hit is the recording among the first 3. Every speech engine indexes the
same corpus; keyword, dense (the default) and hybrid modes are measured side by side. Windows
overlap (every 3 words), so queries of one clip are not independent.

Usage: .venv/bin/python bench/bench_speech_search.py [--engines whisper-tiny.en,pocketsphinx,whisper-base]"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path


def windows(text: str, size: int = 7, stride: int = 3) -> list[str]:
    """Windows of ``size`` words every ``stride`` words, the last one ending with the clip; a
    clip of 6-8 words is one window of itself."""
    words = re.sub(r"[^\w' ]+", " ", text).split()
    if len(words) <= size + 1:
        return [" ".join(words)] if len(words) >= 6 else []
    starts = list(range(0, len(words) - size + 1, stride))
    if starts[-1] != len(words) - size:
        starts.append(len(words) - size)
    return [" ".join(words[i : i + size]) for i in starts]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engines", default="whisper-tiny.en,pocketsphinx")
    ap.add_argument("--modes", default="keyword,dense,hybrid")
    args = ap.parse_args()
    from xmodal.collection import Collection
    from xmodal.demo import _spoken_form, build_corpus, load_quotes

    root = Path(tempfile.mkdtemp(prefix="xmodal-speech-search-"))
    corpus = root / "corpus"
    build_corpus(corpus, log=lambda _: None)
    quotes = {f"voice-{i:03d}.wav": _spoken_form(q) for i, q in enumerate(load_quotes())}
    recordings = sorted(p.name for p in (corpus / "recordings").glob("*.wav"))
    queries = [(w, name) for name in recordings for w in windows(quotes[name])]
    print(f"{len(queries)} queries over {len(recordings)} recordings; corpus: texts, scans, recordings, pictograms")
    print("| engine | mode | top-3 | top-1 | p50 ms |")
    print("|---|---|---|---|---|")
    for engine in args.engines.split(","):
        with Collection.open(root / f"coll-{engine}", create=True, asr=engine) as coll:
            coll.add([corpus / sub for sub in ("texts", "scans", "recordings", "pictograms")])
            coll.search("warm up", k=3)
            for mode in args.modes.split(","):
                top3 = top1 = 0
                times = []
                for text, expect in queries:
                    t0 = time.perf_counter()
                    names = [h.metadata.get("name") for h in coll.search(text, k=3, mode=mode)]
                    times.append(time.perf_counter() - t0)
                    top3 += expect in names
                    top1 += bool(names) and names[0] == expect
                times.sort()
                n = len(queries)
                print(
                    f"| {engine} | {mode} | {top3 / n:.2f} | {top1 / n:.2f} | {times[n // 2] * 1000:.1f} |", flush=True
                )


if __name__ == "__main__":
    main()
