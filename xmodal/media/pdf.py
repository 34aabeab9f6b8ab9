"""PDF documents by page, with pypdfium2 (PDFium, the PDF engine of Chromium; Apache-2.0/BSD-3,
native library inside its wheels). PDFium runs no JavaScript here (no form environment is made).

``open_pdf`` checks a file within limits (readable, not encrypted, 1 to ``max_pdf_pages`` pages)
without reading its pages; ``iter_pages`` then yields one page at a time: its text layer and,
when the page has little text (a scan, a slide, a diagram), the page rendered as a picture
bounded in pixels whatever the page size says (a 200-inch page renders as a small picture)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xmodal.errors import MediaError, MediaTooLargeError, MissingDependencyError
from xmodal.media.limits import MediaLimits

PAGE_TEXT_CHARS = 200  # a page with fewer characters of text is also seen as a picture (a slide)
NO_TEXT_CHARS = 20  # a page with fewer has no text layer to speak of: a scan, read by OCR
RENDER_PIXELS = 2_000_000  # a page rendered for OCR has at most this many pixels
PICTURE_SIDE = 512  # a page rendered only for the picture towers: its long side
MAX_RENDER_SCALE = 200 / 72  # and at most 200 dpi


@dataclass(frozen=True)
class PdfSource:
    """A checked PDF, to be read page by page (the file, or its bytes for an upload)."""

    src: Path | bytes
    pages: int
    title: str = ""


@dataclass(frozen=True)
class PdfPage:
    number: int  # from 1
    text: str
    picture: Any = None  # PIL image in RGB, or None when the page is text enough
    scanned: bool = False  # no text layer: the picture is rendered for OCR


def _pdfium() -> Any:
    try:
        import pypdfium2
    except ImportError as exc:  # pragma: no cover - a dependency
        raise MissingDependencyError("PDF support needs pypdfium2: pip install pypdfium2") from exc
    return pypdfium2


def _open(src: Path | bytes) -> Any:
    pdfium = _pdfium()
    try:
        return pdfium.PdfDocument(src if isinstance(src, bytes) else str(src))
    except pdfium.PdfiumError as exc:
        reason = str(exc).lower()
        if "password" in reason:
            raise MediaError("the PDF is encrypted (it needs a password)") from exc
        raise MediaError(f"not a readable PDF ({str(exc).split('(')[-1].rstrip(').')})") from exc
    except (OSError, ValueError) as exc:
        raise MediaError(f"not a readable PDF ({exc})") from exc


def open_pdf(src: Path | bytes, limits: MediaLimits | None = None) -> PdfSource:
    limits = limits or MediaLimits()
    doc = _open(src)
    try:
        pages = len(doc)
        if pages == 0:
            raise MediaError("the PDF has no pages")
        if pages > limits.max_pdf_pages:
            raise MediaTooLargeError(f"the PDF has {pages:,} pages; the limit is {limits.max_pdf_pages:,}")
        try:
            title = str(doc.get_metadata_value("Title") or "").strip()
        except Exception:  # a damaged info dictionary: no title
            title = ""
        return PdfSource(src, pages, title[:500])
    finally:
        doc.close()


def iter_pages(source: PdfSource, render: bool = True) -> Iterator[PdfPage]:
    """Each page in order: its text, and its picture when it holds fewer than
    ``PAGE_TEXT_CHARS`` characters of text (``render``): for OCR (up to ``RENDER_PIXELS``)
    when it has no text layer, else small, for the picture towers. A page PDFium cannot read
    is skipped."""
    pdfium = _pdfium()
    doc = _open(source.src)
    try:
        for i in range(min(len(doc), source.pages)):
            try:
                page = doc[i]
            except pdfium.PdfiumError:
                continue
            try:
                textpage = page.get_textpage()
                text = _clean(textpage.get_text_bounded())
                textpage.close()
                scanned = len(text) < NO_TEXT_CHARS
                picture = _render(page, scanned) if render and len(text) < PAGE_TEXT_CHARS else None
            except pdfium.PdfiumError:
                continue
            finally:
                page.close()
            yield PdfPage(i + 1, text, picture, scanned)
    finally:
        doc.close()


def _render(page: Any, for_ocr: bool) -> Any:
    width, height = page.get_size()  # points, 1/72 inch
    if width <= 0 or height <= 0:
        return None
    if for_ocr:
        scale = min(MAX_RENDER_SCALE, (RENDER_PIXELS / (width * height)) ** 0.5)
    else:
        scale = min(MAX_RENDER_SCALE, PICTURE_SIDE / max(width, height))
    bitmap = page.render(scale=scale, fill_color=(255, 255, 255, 255))
    try:
        return bitmap.to_pil().convert("RGB")
    finally:
        bitmap.close()


def render_page(src: Path | bytes, number: int, max_side: int = 512) -> Any:
    """One page as a picture (a preview), its long side at most ``max_side`` pixels."""
    pdfium = _pdfium()
    doc = _open(src)
    try:
        if not 1 <= number <= len(doc):
            raise MediaError(f"the PDF has no page {number}")
        page = doc[number - 1]
        width, height = page.get_size()
        scale = max(0.01, min(MAX_RENDER_SCALE, max_side / max(width, height, 1.0)))
        try:
            bitmap = page.render(scale=scale, fill_color=(255, 255, 255, 255))
        except pdfium.PdfiumError as exc:
            raise MediaError(f"page {number} cannot be rendered") from exc
        try:
            return bitmap.to_pil().convert("RGB")
        finally:
            bitmap.close()
            page.close()
    finally:
        doc.close()


def _clean(text: str) -> str:
    """PDFium's text: CRLF line ends, soft hyphens, NULs from broken fonts."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").replace("\u00ad", "")
    return "\n".join(line.rstrip() for line in text.split("\n")).strip()
