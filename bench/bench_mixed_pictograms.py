#!/usr/bin/env python
"""Pictograms inside a mixed collection: does a text query still find the picture when it has
to beat documents, scans and recordings in one result list?

Builds the demo corpus (quotes as text, scans, speech, 52 pictograms from icon sets the model
never trained on, and the demo's 8 photos), indexes it once per image model with the default
stack (MiniLM, OCR, ASR, the photo tower for photos; ``--no-photo LABEL``: also without it)
and asks each pictogram's name ("cloud rain", "red apple"), then the 5 Heroicons query pictures
(image -> image), then the first six words of each quote (text -> text: must a picture ever
top the quote?). Every model is measured in the same run; compare ratios.

    python bench/bench_mixed_pictograms.py --model v2=xmodal/data/models/pictogram --model v1=OLD_DIR
    python bench/bench_mixed_pictograms.py --model v2=DIR --no-gap v2   # also v2 with its gap shift removed
    python bench/bench_mixed_pictograms.py --model v8=xmodal/data/models/pictogram --no-photo v8
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

IMAGE_QUERIES = {
    "heroicons-home.png": "bi-house.png",
    "heroicons-camera.png": "bi-camera.png",
    "heroicons-envelope.png": "bi-envelope.png",
    "heroicons-bell.png": "bi-bell.png",
    "heroicons-trash.png": "bi-trash.png",
}


def words(file_name: str) -> str:
    stem = file_name.removesuffix(".png")
    for prefix in ("fluent-emoji-flat-", "bi-", "heroicons-"):
        stem = stem.removeprefix(prefix)
    return stem.replace("-", " ")


def without_gap(src: Path, dst: Path) -> Path:
    """A copy of a model directory with the modality-gap shift taken out (an ablation)."""
    from safetensors.numpy import load_file, save_file

    shutil.copytree(src, dst)
    weights = {k: v for k, v in load_file(str(src / "model.safetensors")).items() if not k.endswith(".gap")}
    save_file(weights, str(dst / "model.safetensors"))
    cfg = json.loads((src / "config.json").read_text())
    (dst / "config.json").write_text(json.dumps({**cfg, "gap_shift": False}))
    return dst


def measure(label: str, model_dir: Path, corpus: Path, root: Path, photo: bool = True) -> dict[str, float]:
    import numpy as np

    from xmodal.collection import Collection
    from xmodal.config import ModelConfig
    from xmodal.search import Query

    pictos = sorted(p.name for p in (corpus / "pictograms").iterdir())
    by_words: dict[str, list[str]] = {}
    for name in pictos:
        by_words.setdefault(words(name), []).append(name)
    model = ModelConfig(image=f"pictogram:{model_dir}", photo="photo" if photo else None)
    with Collection.open(root / f"coll-{label}", create=True, model=model) as coll:
        coll.add([corpus / d for d in ("texts", "scans", "recordings", "pictograms", "photos")], progress=None)
        ranks, top_is_picto = [], []
        for query, relevant in by_words.items():
            names = [h.metadata.get("name") for h in coll.search(query, k=10)]
            hit = [i for i, n in enumerate(names) if n in relevant]
            ranks.append(hit[0] + 1 if hit else 99)
            top_is_picto.append(bool(names) and names[0] in pictos)
        img_hits = []
        for q, want in IMAGE_QUERIES.items():
            names = [h.metadata.get("name") for h in coll.search(Query.image(corpus / "queries" / q), k=1)]
            img_hits.append(names[:1] == [want])
        # the quotes' own words: the quote (or its scan or recording) must stay on top
        text_top, text_picto = [], []
        for doc in sorted((corpus / "texts").iterdir()):
            query = " ".join(doc.read_text(encoding="utf-8").split()[:6])
            names = [h.metadata.get("name") for h in coll.search(query, k=10)]
            text_top.append(bool(names) and Path(names[0]).stem == doc.stem)
            text_picto.append(bool(names) and names[0] in pictos)
    r = np.array(ranks)
    return {
        "text_queries": len(r),
        "t2i_hit@1": float(np.mean(r <= 1)),
        "t2i_hit@10": float(np.mean(r <= 10)),
        "t2i_mrr@10": float(np.mean(np.where(r <= 10, 1.0 / r, 0.0))),
        "top_hit_is_a_pictogram": float(np.mean(top_is_picto)),
        "i2i_hit@1": float(np.mean(img_hits)),
        "text_queries_on_texts": len(text_top),
        "t2t_hit@1": float(np.mean(text_top)),
        "t2t_top_is_a_pictogram": float(np.mean(text_picto)),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", required=True, metavar="LABEL=DIR")
    ap.add_argument(
        "--no-gap", action="append", default=[], metavar="LABEL", help="also run LABEL without its gap shift"
    )
    ap.add_argument(
        "--no-photo", action="append", default=[], metavar="LABEL", help="also run LABEL without the photo tower"
    )
    args = ap.parse_args()
    from xmodal.demo import build_corpus

    root = Path(tempfile.mkdtemp(prefix="xmodal-mixed-"))
    corpus = root / "corpus"
    build_corpus(corpus, log=lambda m: None)
    models = dict(m.split("=", 1) for m in args.model)
    runs = [(label, Path(d), True) for label, d in models.items()]
    runs += [
        (f"{label} without gap shift", without_gap(Path(models[label]), root / f"{label}-nogap"), True)
        for label in args.no_gap
    ]
    runs += [(f"{label} without the photo tower", Path(models[label]), False) for label in args.no_photo]
    print(
        "| model | text queries | t2i hit@1 | t2i hit@10 | t2i MRR@10 | top hit is a pictogram | image->image hit@1 "
        "| quote queries | quote first | a pictogram first |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, model_dir, photo in runs:
        m = measure(label.replace(" ", "-"), model_dir, corpus, root, photo)
        print(
            f"| {label} | {m['text_queries']} | {m['t2i_hit@1']:.3f} | {m['t2i_hit@10']:.3f} | {m['t2i_mrr@10']:.3f} "
            f"| {m['top_hit_is_a_pictogram']:.3f} | {m['i2i_hit@1']:.3f} | {m['text_queries_on_texts']} "
            f"| {m['t2t_hit@1']:.3f} | {m['t2t_top_is_a_pictogram']:.3f} |",
            flush=True,
        )
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
