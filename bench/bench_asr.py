"""Speech-recognition quality on the demo's own material: word error rate of PocketSphinx on the
demo quotations spoken by espeak-ng. Usage: .venv/bin/python bench/bench_asr.py [--voice en-us+m3]"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np


def wer(ref: str, hyp: str) -> float:
    a = re.sub(r"[^a-z' ]", " ", ref.lower()).split()
    b = hyp.split()
    d = np.zeros((len(a) + 1, len(b) + 1), dtype=int)
    d[:, 0], d[0, :] = range(len(a) + 1), range(len(b) + 1)
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1, d[i - 1, j - 1] + (a[i - 1] != b[j - 1]))
    return float(d[-1, -1]) / max(1, len(a))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--voice", default="en-us+m3")
    ap.add_argument("--limit", type=int, default=60)
    args = ap.parse_args()
    from xmodal.demo import _spoken_form, load_quotes
    from xmodal.extract.sphinx import PocketSphinxRecognizer
    from xmodal.media.audio import load_audio

    asr = PocketSphinxRecognizer()
    wav = Path(tempfile.mkdtemp()) / "q.wav"
    scores = []
    for quote in load_quotes():
        text = _spoken_form(quote)
        if len(text) > 160:
            continue
        subprocess.run(["espeak-ng", "-v", args.voice, "-s", "130", "-w", str(wav), text], check=True)
        hyp = " ".join(w.text for w in asr.transcribe(load_audio(wav)))
        scores.append(wer(text, hyp))
        if len(scores) >= args.limit:
            break
    s = np.asarray(scores)
    print(f"voice {args.voice}: {len(s)} quotations, mean WER {s.mean():.2f}, median {np.median(s):.2f}, "
          f"share with WER <= 0.5: {(s <= 0.5).mean():.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
