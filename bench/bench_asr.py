"""Speech recognition, every engine side by side in one run: word error rate and compute per
second of audio (models warm, load time apart) on
- the demo's speech: the 10 recordings `xmodal demo` indexes, and its first 60 short quotations,
  spoken by espeak-ng (voice en-us+m3, 130 wpm) as the demo does;
- real human speech with exact transcripts: the LibriVox (public-domain audiobook) and AN4
  clips in PocketSphinx's source distribution on PyPI (pocketsphinx 5.1.1 sdist, BSD-2;
  fetched once from the registry into ~/.cache/xmodal/bench and checked by its sha256).

WER is over normalised words (lower case, no punctuation, number words as digits, "mr" as
"mister", hyphens split), the same normalisation for every engine.

Usage: .venv/bin/python bench/bench_asr.py [--engines pocketsphinx,whisper-tiny.en,whisper-base]
       [--limit 60] [--threads 2]"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import re
import subprocess
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

SDIST = (
    "https://files.pythonhosted.org/packages/61/e7/13e0e787ff467218de880310d79cba14424f13b87171ac44af0bde1e428c/"
    "pocketsphinx-5.1.1.tar.gz"
)
SDIST_SHA256 = "675778b309a22dfc9b7d37f7621976bba491d2a5f8c59696bd77fd6d07271355"
_NUMBER_WORDS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen"
NUMBERS = {
    w: str(i) for i, w in enumerate([*_NUMBER_WORDS.split(), "sixteen", "seventeen", "eighteen", "nineteen", "twenty"])
}
SPELLING = {"mr": "mister", "mrs": "missus", "dr": "doctor", "%": " percent", "&": " and "}


def normalise(text: str) -> list[str]:
    text = text.lower()
    for a, b in (("%", " percent"), ("&", " and ")):
        text = text.replace(a, b)
    words = re.sub(r"[^a-z0-9' ]+", " ", text.replace("-", " ")).split()
    return [NUMBERS.get(w, SPELLING.get(w, w)) for w in (w.strip("'") for w in words) if w]


def wer(ref: str, hyp: str) -> tuple[int, int]:
    """(edits, reference words)."""
    a, b = normalise(ref), normalise(hyp)
    d = np.zeros((len(a) + 1, len(b) + 1), dtype=int)
    d[:, 0], d[0, :] = range(len(a) + 1), range(len(b) + 1)
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1, d[i - 1, j - 1] + (a[i - 1] != b[j - 1]))
    return int(d[-1, -1]), len(a)


def demo_speech(limit: int, voice: str) -> list[tuple[str, str, Path]]:
    from xmodal.demo import _spoken_form, load_quotes

    out_dir = Path(tempfile.mkdtemp(prefix="xmodal-asr-"))
    out = []
    for n, quote in enumerate(load_quotes()):
        text = _spoken_form(quote)
        if len(text) > 160:
            continue
        wav = out_dir / f"q{n:03d}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "130", "-w", str(wav), text], check=True)
        out.append((f"demo-{n}", text, wav))
        if len(out) >= limit:
            break
    return out


def demo_recordings() -> list[tuple[str, str, Path]]:
    """The 10 recordings `xmodal demo` itself indexes."""
    from xmodal.demo import _spoken_form, build_corpus, load_quotes

    root = Path(tempfile.mkdtemp(prefix="xmodal-asr-demo-"))
    build_corpus(root, log=lambda _: None)
    quotes = load_quotes()
    return [(p.stem, _spoken_form(quotes[int(p.stem.split("-")[1])]), p)
            for p in sorted((root / "recordings").glob("*.wav"))]  # fmt: skip


def human_speech() -> list[tuple[str, str, Path]]:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "xmodal" / "bench"
    root = cache / "pocketsphinx-5.1.1" / "test" / "data"
    if not (root / "librivox" / "transcription").exists():
        cache.mkdir(parents=True, exist_ok=True)
        data = urllib.request.urlopen(SDIST, timeout=120).read()
        if hashlib.sha256(data).hexdigest() != SDIST_SHA256:
            raise SystemExit("the pocketsphinx sdist does not match its sha256")
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            wanted = [m for m in tar.getmembers() if re.search(r"/test/data/(librivox|cards)/|goforward\.raw$", m.name)]
            tar.extractall(cache, members=wanted, filter="data")
    out = []
    for sub in ("librivox", "cards"):
        listing = next((root / sub).glob("*transcription"))
        for line in listing.read_text().splitlines():
            m = re.match(r"<s>(.*)</s>\s*\((.*)\)", line.strip())
            if m:
                out.append((f"{sub}-{m.group(2)}", m.group(1).strip(), root / sub / f"{m.group(2)}.wav"))
    raw = root / "goforward.raw"  # 16 kHz 16-bit mono; its transcript is in pocketsphinx's own tests
    wav = Path(tempfile.mkdtemp()) / "goforward.wav"
    subprocess.run(["sox", "-t", "raw", "-r", "16000", "-e", "signed", "-b", "16", "-c", "1", str(raw), str(wav)],
                   check=True)  # fmt: skip
    out.append(("an4-goforward", "go forward ten meters", wav))
    return out


def run(engine: str, sets: dict[str, list[tuple[str, str, Path]]]) -> dict[str, tuple[float, float, float]]:
    from xmodal.extract.base import load_asr
    from xmodal.media.audio import load_audio

    started = time.perf_counter()
    asr = load_asr(engine)
    first = load_audio(next(iter(sets.values()))[0][2])
    asr.transcribe(first)  # warm: load the weights
    load = time.perf_counter() - started
    out = {}
    for name, clips in sets.items():
        edits = words = 0
        compute = audio = 0.0
        for _, ref, path in clips:
            clip = load_audio(path)
            t0 = time.perf_counter()
            hyp = " ".join(w.text for w in asr.transcribe(clip))
            compute += time.perf_counter() - t0
            audio += clip.duration
            e, n = wer(ref, hyp)
            edits, words = edits + e, words + n
        out[name] = (edits / max(words, 1), compute / audio, audio)
    out["load"] = (load, 0.0, 0.0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--engines", default="pocketsphinx,whisper-tiny.en,whisper-base")
    ap.add_argument("--voice", default="en-us+m3")
    ap.add_argument("--limit", type=int, default=60)
    args = ap.parse_args()
    sets = {
        "demo's 10 recordings": demo_recordings(),
        f"{args.limit} demo quotations": demo_speech(args.limit, args.voice),
        "human (LibriVox + AN4)": human_speech(),
    }
    print(", ".join(f"{name}: {len(clips)} clips" for name, clips in sets.items()),
          f"; {len(os.sched_getaffinity(0))} cores")  # fmt: skip
    print("| engine | set | WER | compute s per s of audio | audio s |")
    print("|---|---|---|---|---|")
    for engine in args.engines.split(","):
        result = run(engine, sets)
        for name in sets:
            w, rtf, secs = result[name]
            print(f"| {engine} | {name} | {w:.3f} | {rtf:.3f} | {secs:.0f} |")
        print(f"| {engine} | load + first clip | | {result['load'][0]:.1f} s | |")


if __name__ == "__main__":
    main()
