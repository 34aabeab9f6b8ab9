"""The demo: build a small mixed corpus from real, freely licensed text (literary quotations from
Debian's ``fortunes-min``, bundled in xmodal/data/demo), index it, and query it every way.

Text files stay text; some quotations become scanned-looking document images (found by OCR);
some are spoken with espeak-ng (found by speech recognition, with the seconds of the hit).
Pictograms from icon sets the bundled image model never trained on (Bootstrap Icons, Fluent
Emoji Flat) are found by their look, from a text query or from another set's drawing. Eight
public-domain and CC0 photos (Wikimedia Commons, as packaged in Debian's ``gcompris-qt-data``)
go to the photo tower: found by what they show, and a recompressed copy finds its original."""

from __future__ import annotations

import random
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

SCAN_TARGET = "lends you his umbrella"
SPEECH_TARGET = "If you tell the truth you don't have to remember"
SPOKEN_QUERY_TARGET = "Truth is the most valuable thing we have"
N_TEXT, N_SCANS, N_SPEECH = 40, 16, 10
PICTOGRAM_TEXT_QUERY = ("bicycle", "bi-bicycle.png")
PICTOGRAM_IMAGE_QUERY = ("heroicons-home.png", "bi-house.png")
PHOTO_TEXT_QUERY = ("a chair", "chair.webp")
PHOTO_COPY = "windmill1.webp"  # a smaller, recompressed copy is the image query


@dataclass(frozen=True)
class DemoQuery:
    label: str
    kind: str  # text | image | audio
    value: str  # the text, or the file for image/audio queries
    expect: str  # file name expected among the top hits
    mode: str = "dense"  # how the query is matched (xmodal search --mode)
    page: int | None = None  # the page of ``expect`` that must be the hit's, for a PDF


def load_quotes() -> list[str]:
    raw = resources.files("xmodal").joinpath("data/demo/literature.txt").read_text(encoding="utf-8")
    return [q.strip() for q in raw.split("\n%\n") if q.strip()]


def _slug(i: int, prefix: str) -> str:
    return f"{prefix}-{i:03d}"


def _font(size: int, serif: bool = True) -> Any:
    from PIL import ImageFont

    names = ["DejaVuSerif.ttf", "DejaVuSans.ttf"] if serif else ["DejaVuSans.ttf", "DejaVuSerif.ttf"]
    for name in names:
        for base in ("", "/usr/share/fonts/truetype/dejavu/"):
            try:
                return ImageFont.truetype(base + name, size)
            except OSError:
                continue
    return ImageFont.load_default(size=size)


def render_document(text: str, path: Path, seed: int, serif: bool = True) -> None:
    """Render text like a scanned page: off-white paper, slight skew, sensor noise."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    rng = random.Random(seed)
    font = _font(rng.choice([26, 28, 30]), serif)
    lines: list[str] = []
    for para in text.split("\n"):
        words, line = para.split(), ""
        for word in words:
            trial = f"{line} {word}".strip()
            if font.getlength(trial) > 900 and line:
                lines.append(line)
                line = word
            else:
                line = trial
        lines.append(line)
    height = 80 + 44 * len(lines)
    img = Image.new("RGB", (1000, max(height, 200)), (248, 246, 238))
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((50, 40 + 44 * i), line, fill=(25, 25, 30), font=font)
    img = img.rotate(rng.uniform(-1.2, 1.2), expand=True, fillcolor=(248, 246, 238), resample=Image.Resampling.BICUBIC)
    arr = np.asarray(img).astype(np.int16) + np.random.default_rng(seed).integers(-12, 12, size=(1, 1, 1))
    noisy = np.clip(arr + np.random.default_rng(seed).normal(0, 6, arr.shape), 0, 255).astype(np.uint8)
    out = Image.fromarray(noisy).filter(ImageFilter.GaussianBlur(0.4))
    if path.suffix == ".jpg":
        out.save(path, quality=85)
    else:
        out.save(path)


def speak(text: str, path: Path) -> None:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed")
    subprocess.run([exe, "-v", "en-us+m3", "-s", "130", "-w", str(path), text], check=True, capture_output=True)


def _spoken_form(quote: str) -> str:
    return quote.split("--")[0].replace("\n", " ").strip()


def build_corpus(root: Path, log: Callable[[str], None] = print) -> list[DemoQuery]:
    """Write the demo corpus under ``root``; returns the queries that exercise it."""
    quotes = load_quotes()
    scan_i = next(i for i, q in enumerate(quotes) if SCAN_TARGET in q)
    speech_i = next(i for i, q in enumerate(quotes) if SPEECH_TARGET in q)
    spoken_q_i = next(i for i, q in enumerate(quotes) if SPOKEN_QUERY_TARGET in q)
    rng = random.Random(7)
    rest = [i for i in range(len(quotes)) if i not in (scan_i, speech_i, spoken_q_i)]
    rng.shuffle(rest)
    short = [i for i in rest if len(_spoken_form(quotes[i])) < 110]
    speech = [speech_i, *short[: N_SPEECH - 1]]
    scans = [scan_i, spoken_q_i, *[i for i in rest if i not in speech][: N_SCANS - 2]]
    texts = [i for i in rest if i not in speech and i not in scans][:N_TEXT]
    spare = [i for i in short if i not in speech and i not in scans and i not in texts]
    pdf_quotes, memo_quote = spare[:3], spare[3]
    for sub in ("texts", "scans", "recordings", "pictograms", "photos", "documents", "queries"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in texts:
        (root / "texts" / f"{_slug(i, 'quote')}.txt").write_text(quotes[i] + "\n", encoding="utf-8")
    for n, i in enumerate(scans):
        ext = ".jpg" if n % 3 == 2 else ".png"
        render_document(quotes[i], root / "scans" / f"{_slug(i, 'scan')}{ext}", seed=i, serif=n % 2 == 0)
    copy_pictograms(root / "pictograms", root / "queries")
    copy_photos(root / "photos")
    q_photo = root / "queries" / "windmill-copy.jpg"
    _recompressed_copy(root / "photos" / PHOTO_COPY, q_photo)
    write_pdf([quotes[i] for i in pdf_quotes], root / "documents" / "quotations.pdf")
    has_speech = shutil.which("espeak-ng") is not None
    if has_speech:
        for i in speech:
            speak(_spoken_form(quotes[i]), root / "recordings" / f"{_slug(i, 'voice')}.wav")
        memo = root / "queries" / "memo.wav"  # spoken, then kept as a phone's voice memo (AAC in M4A)
        speak(_spoken_form(quotes[memo_quote]), memo)
        to_m4a(memo, root / "recordings" / "voice-memo.m4a")
        memo.unlink()
    else:
        log("espeak-ng is not installed: the demo corpus has no recordings (apt-get install espeak-ng)")
    # query files live apart from the corpus
    q_img = root / "queries" / "photo-of-a-page.png"
    render_document(quotes[scans[2]].split("--")[0], q_img, seed=999, serif=False)
    queries = [
        DemoQuery(
            "text -> scanned document (OCR)", "text", "banker lending an umbrella", f"{_slug(scan_i, 'scan')}.png"
        ),
        DemoQuery("text -> recording (speech)", "text", "tell the truth", f"{_slug(speech_i, 'voice')}.wav"),
        DemoQuery(
            "one exact word -> scanned document (--mode keyword)", "text", "economize", _scan_name(scans, 1), "keyword"
        ),
        DemoQuery("image -> document", "image", str(q_img), _scan_name(scans, 2)),
        DemoQuery("text -> pictogram (a style never trained on)", "text", *PICTOGRAM_TEXT_QUERY),
        DemoQuery(
            "image -> pictogram (another icon set)",
            "image",
            str(root / "queries" / PICTOGRAM_IMAGE_QUERY[0]),
            PICTOGRAM_IMAGE_QUERY[1],
        ),
        DemoQuery("text -> photo (ImageNet classes in the text space)", "text", *PHOTO_TEXT_QUERY),
        DemoQuery("photo -> its original (a smaller, recompressed copy)", "image", str(q_photo), PHOTO_COPY),
        DemoQuery(
            "text -> the scanned page of a PDF (OCR, page 3)",
            "text",
            _phrase(quotes[pdf_quotes[2]]),
            "quotations.pdf",
            "keyword",
            page=3,
        ),
        DemoQuery("text -> a phone voice memo (M4A)", "text", _phrase(quotes[memo_quote]), "voice-memo.m4a"),
    ]
    if not has_speech:
        queries = [q for q in queries if not q.expect.endswith((".wav", ".m4a"))]
    else:
        q_audio = root / "queries" / "spoken-question.wav"
        speak(SPOKEN_QUERY_TARGET, q_audio)
        queries.append(DemoQuery("audio -> scanned document", "audio", str(q_audio), _scan_name(scans, 1)))
    return queries


def copy_pictograms(corpus: Path, queries: Path) -> None:
    """The bundled held-out pictograms (scripts/build_demo_pictograms.py made them)."""
    for group, dest in (("corpus", corpus), ("queries", queries)):
        _copy_bundled(f"pictograms/{group}", ".png", dest)


def write_pdf(quotes: list[str], path: Path) -> None:
    """A three-page PDF: two pages with a text layer, the third a scanned page (a picture only,
    found by OCR)."""
    import io
    import textwrap

    import pypdfium2

    from xmodal.media.pdf_write import text_pdf

    doc = pypdfium2.PdfDocument(text_pdf([textwrap.wrap(q.replace("\n", " "), 80) for q in quotes[:2]]))
    with tempfile.TemporaryDirectory() as tmp:
        scan = Path(tmp) / "scan.png"
        render_document(quotes[2], scan, seed=3, serif=True)
        from xmodal.media.image import load_image

        page_pdf = io.BytesIO()
        load_image(scan).save(page_pdf, "PDF", resolution=100)
        doc.import_pages(pypdfium2.PdfDocument(page_pdf.getvalue()))
    with open(path, "wb") as fh:
        doc.save(fh)
    doc.close()


def to_m4a(wav: Path, dest: Path) -> None:
    """AAC in an M4A container, as a phone records a voice memo (FFmpeg through PyAV)."""
    from xmodal.media.audio import load_audio
    from xmodal.media.audio_write import encode_audio

    clip = load_audio(wav)
    encode_audio(dest, clip.samples, clip.sample_rate, "aac", "ipod")


def _phrase(quote: str) -> str:
    """Six words from the middle of a quotation, as a user remembers it."""
    words = _spoken_form(quote).split()
    mid = max(0, len(words) // 2 - 3)
    return " ".join(words[mid : mid + 6])


def copy_photos(dest: Path) -> None:
    """The bundled demo photos (sources and licences in photos/SOURCES.json)."""
    _copy_bundled("photos", ".webp", dest)


def _copy_bundled(folder: str, suffix: str, dest: Path) -> None:
    """Copy the ``suffix`` files of ``xmodal/data/demo/<folder>`` into ``dest``."""
    for entry in resources.files("xmodal").joinpath("data/demo", folder).iterdir():
        if entry.name.endswith(suffix):
            (dest / entry.name).write_bytes(entry.read_bytes())


def _recompressed_copy(src: Path, dest: Path) -> None:
    from xmodal.media.image import load_image

    img = load_image(src)
    img.resize((img.width * 3 // 4, img.height * 3 // 4)).save(dest, quality=60)


def _scan_name(scans: list[int], n: int) -> str:
    ext = ".jpg" if n % 3 == 2 else ".png"
    return f"{_slug(scans[n], 'scan')}{ext}"


def run_demo(
    workdir: Path | None, collection: Path | None, log: Callable[[str], None] = print, progress: Any = None
) -> int:
    """Build the corpus, index it, run the example queries. Returns how many queries missed."""
    from dataclasses import replace

    from xmodal.collection import Collection
    from xmodal.config import DEFAULT_ASR, DEFAULT_PHOTO_ENCODER
    from xmodal.search import Query

    root = workdir or Path(tempfile.mkdtemp(prefix="xmodal-demo-"))
    corpus = root / "corpus"
    log(f"building the demo corpus in {corpus} ...")
    queries = build_corpus(corpus, log)
    coll_dir = collection or (root / "collection")
    with Collection.open(coll_dir, create=True) as coll:
        change = coll.encoder_change() or coll.extractor_change()
        if coll.config.model.asr != DEFAULT_ASR:
            change = change or f"speech recognition is now {DEFAULT_ASR}"
        if coll.config.model.photo != DEFAULT_PHOTO_ENCODER:
            change = change or "photos now have a tower of their own"
        if change:  # the demo's own collection, built by an earlier xmodal: bring it up to date
            log(f"{change.split(';')[0]}: re-embedding the demo collection ...")
            coll.reembed(replace(coll.config.model, asr=DEFAULT_ASR, photo=DEFAULT_PHOTO_ENCODER))
        folders = ("texts", "scans", "recordings", "pictograms", "photos", "documents")
        report = coll.add([corpus / f for f in folders], progress=progress)
        log(f"indexed into {coll.path}: {report.summary()}")
        missed = 0
        for q in queries:
            query = Query.text(q.value) if q.kind == "text" else getattr(Query, q.kind)(q.value)
            hits = coll.search(query, k=3, mode=q.mode)
            names = [h.metadata.get("name") for h in hits]
            ok = any(n == q.expect and (q.page is None or h.page == q.page) for n, h in zip(names, hits, strict=True))
            missed += 0 if ok else 1
            shown = q.value if q.kind == "text" else Path(q.value).name
            log(f"\n[{'ok' if ok else 'MISS'}] {q.label}: {shown!r} (expect {q.expect})")
            for rank, h in enumerate(hits, 1):
                span = f" at {h.start:.1f}-{h.end:.1f}s" if h.start is not None else ""
                span += f" page {h.page}" if h.page is not None else ""
                snippet = (h.snippet or "").replace("\n", " ")[:60]
                log(f"   {rank}. {h.score:.3f} {h.modality.value:<5} {h.metadata.get('name')}{span}  {snippet!r}")
    log(f'\ntry it yourself:  {_cli_name()} search "carrying a cat by its tail" -c {coll_dir}')
    return missed


def _cli_name() -> str:
    """``xmodal`` when that is this installation's command on PATH, else its full path (``make
    demo`` runs from a virtual environment that is not activated)."""
    import shutil
    import sys

    here = Path(sys.executable).parent / "xmodal"
    found = shutil.which("xmodal")
    if here.exists() and (found is None or Path(found).resolve() != here.resolve()):
        return str(here)
    return "xmodal"
