"""PDFs, one run: known-item search of a page by a phrase on it, and ingest throughput.

Corpus: real PDFs from Debian documentation packages (fetched once with ``apt-get download``
into ~/.cache/xmodal/bench; nothing is committed): ``libtasn1-doc`` (libtasn1.pdf),
``shared-mime-info`` (shared-mime-info-spec.pdf), ``asymptote-doc`` (asy-latex.pdf, CAD.pdf,
asyRefCard.pdf). Queries: for every page with at least 40 words, a 7-word window from its
middle; a query is answered when that PDF at that page is among the first 3 hits (R@3), by
each search mode.

Throughput (models warm): text PDFs in pages/s, and scanned PDFs (image-only pages of the demo's
quotations, rendered as the demo renders scans, 150 dpi) in pages/s.

Usage: .venv/bin/python bench/bench_pdf.py [--queries 150]"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

CACHE = Path.home() / ".cache" / "xmodal" / "bench" / "pdf"
PDFS = {
    "libtasn1-doc": ["usr/share/doc/libtasn1-doc/libtasn1.pdf"],
    "shared-mime-info": ["usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf"],
    "asymptote-doc": [
        "usr/share/doc/asymptote/asy-latex.pdf",
        "usr/share/doc/asymptote/CAD.pdf",
        "usr/share/doc/asymptote/asyRefCard.pdf",
    ],
}


def fetch(dest: Path) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for package, files in PDFS.items():
        root = CACHE / package
        if not all((root / f).is_file() for f in files):
            root.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory() as tmp:
                subprocess.run(["apt-get", "download", package], cwd=tmp, check=True, capture_output=True)
                subprocess.run(["dpkg-deb", "-x", str(next(Path(tmp).glob("*.deb"))), str(root)], check=True)
        for f in files:
            shutil.copy(root / f, dest / Path(f).name)
            out.append(dest / Path(f).name)
    return out


def queries(pdfs: list[Path], limit: int) -> list[tuple[str, str, int]]:
    from xmodal.media.pdf import iter_pages, open_pdf

    rng = random.Random(0)
    found = []
    for pdf in pdfs:
        for page in iter_pages(open_pdf(pdf), render=False):
            words = re.findall(r"[A-Za-z][A-Za-z'-]+", page.text)
            if len(words) >= 40:
                mid = len(words) // 2 - 3
                found.append((" ".join(words[mid : mid + 7]), pdf.name, page.number))
    rng.shuffle(found)
    return found[:limit]


def scanned(dest: Path, n_pages: int) -> Path:
    from PIL import Image

    from xmodal.demo import load_quotes, render_document
    from xmodal.media.image import load_image

    quotes = load_quotes()
    pages = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n_pages):
            png = Path(tmp) / f"p{i}.png"
            render_document(quotes[i], png, seed=i, serif=i % 2 == 0)
            page = Image.new("RGB", (1240, 1754), (252, 251, 247))
            scan = load_image(png)
            page.paste(scan, (60, 120))
            pages.append(page)
    path = dest / "scanned.pdf"
    pages[0].save(path, "PDF", resolution=150, save_all=True, append_images=pages[1:])
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=150)
    ap.add_argument("--scanned-pages", type=int, default=20)
    args = ap.parse_args()

    from xmodal.collection import Collection
    from xmodal.config import ModelConfig
    from xmodal.media.pdf import open_pdf

    work = Path(tempfile.mkdtemp(prefix="xmodal-pdf-"))
    pdfs = fetch(work / "text")
    n_pages = sum(open_pdf(p).pages for p in pdfs)
    (work / "scans").mkdir()
    scanned(work / "scans", args.scanned_pages)
    model = ModelConfig(asr=None)
    with Collection.open(work / "warm", create=True, model=model) as coll:  # models loaded and warm
        coll.add([pdfs[-1]])
    with Collection.open(work / "c", create=True, model=model) as coll:
        t = time.perf_counter()
        coll.add([work / "text"])
        text_rate = n_pages / (time.perf_counter() - t)
        t = time.perf_counter()
        coll.add([work / "scans"])
        scan_rate = args.scanned_pages / (time.perf_counter() - t)
        asked = queries(pdfs, args.queries)
        print(f"{len(pdfs)} PDFs, {n_pages} pages; {len(asked)} phrase queries (7 words from a page)")
        print("| mode | R@1 (file and page) | R@3 (file and page) | R@3 (file) |")
        print("|---|---|---|---|")
        for mode in ("dense", "keyword", "hybrid"):
            r1 = r3 = r3_file = 0
            for text, name, page in asked:
                hits = coll.search(text, k=3, mode=mode)
                right = [Path(h.uri).name == name and h.page == page for h in hits]
                r1 += bool(right[:1] and right[0])
                r3 += any(right)
                r3_file += any(Path(h.uri).name == name for h in hits)
            n = len(asked)
            print(f"| {mode} | {r1 / n:.3f} | {r3 / n:.3f} | {r3_file / n:.3f} |")
    print(f"\ningest, models warm: text PDFs {text_rate:.1f} pages/s; scanned PDF {scan_rate:.2f} pages/s")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
