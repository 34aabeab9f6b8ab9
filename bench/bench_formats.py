"""Ingest throughput per document and phone format, one run, models warm (the default stack):
files made here from the demo's quotations (the writers of tests/media_makers.py and
xmodal.media.pdf_write), each format indexed into its own new collection; items/s and, for
PDFs and slides, pages/s. Plain text is the baseline beside every other format.

Usage: .venv/bin/python bench/bench_formats.py [--n 40]"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def make(kind: str, folder: Path, quotes: list[str], n: int) -> None:
    import media_makers as mm

    from xmodal.media.pdf_write import text_pdf

    folder.mkdir(parents=True)
    for i in range(n):
        q = quotes[i % len(quotes)] + f" (copy {i})"
        lines = textwrap.wrap(q.replace("\n", " "), 80)
        if kind == "txt":
            (folder / f"{i}.txt").write_text(q, encoding="utf-8")
        elif kind == "md":
            (folder / f"{i}.md").write_text(f"# Quote {i}\n\n{q}\n", encoding="utf-8")
        elif kind == "html":
            body = "".join(f"<p>{line}</p>" for line in lines)
            html = f"<!DOCTYPE html><html><head><title>Quote {i}</title><script>x=1</script></head><body>{body}</body>"
            (folder / f"{i}.html").write_text(html + "</html>", encoding="utf-8")
        elif kind == "docx":
            mm.docx(folder / f"{i}.docx", lines)
        elif kind == "odt":
            mm.odt(folder / f"{i}.odt", f"Quote {i}", lines)
        elif kind == "pptx (3 slides)":
            mm.pptx(folder / f"{i}.pptx", [lines[:2], lines[2:4], [f"slide three of {i}"]])
        elif kind == "pdf (3 text pages)":
            (folder / f"{i}.pdf").write_bytes(text_pdf([lines, lines[::-1], [f"page three of {i}"] * 12]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=40)
    args = ap.parse_args()

    from xmodal.collection import Collection
    from xmodal.config import ModelConfig
    from xmodal.demo import load_quotes

    quotes = load_quotes()
    work = Path(tempfile.mkdtemp(prefix="xmodal-formats-"))
    kinds = ["txt", "md", "html", "docx", "odt", "pptx (3 slides)", "pdf (3 text pages)"]
    model = ModelConfig(asr=None)
    for n, kind in enumerate(kinds):
        make(kind, work / f"f{n}", quotes, args.n)
    with Collection.open(work / "warm", create=True, model=model) as coll:
        coll.add([work / f"f{n}" for n in range(len(kinds))][:1])  # models loaded
    print(f"{args.n} files a format")
    print("| format | items/s | pages/s | vs plain text |")
    print("|---|---|---|---|")
    base = None
    for n, kind in enumerate(kinds):
        with Collection.open(work / f"c{n}", create=True, model=model) as coll:
            t = time.perf_counter()
            report = coll.add([work / f"f{n}"])
            rate = report.added / (time.perf_counter() - t)
        base = base or rate
        pages = f"{rate * 3:.1f}" if "3" in kind else "-"
        print(f"| {kind} | {rate:.1f} | {pages} | {rate / base:.2f} |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
