"""Text out of HTML pages and office documents: HTML (visible text and title, no markup, no
scripts), Word (DOCX), PowerPoint (PPTX, slide by slide with slide numbers) and OpenDocument
text (ODT). Office files are ZIP archives of XML, read with the standard library's ``zipfile``
and ``xml.etree`` (expat, which refuses entity-expansion bombs); every member's declared size
and compression ratio are checked before a byte is inflated (a ZIP bomb fails, nothing is
decompressed), and reads stop at the limits whatever the headers said."""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import IO
from xml.etree import ElementTree

from xmodal.errors import MediaError, MediaTooLargeError, UnsupportedMediaError
from xmodal.media.limits import MediaLimits
from xmodal.media.text import decode_text

HTML_MIME = "text/html"
DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PPTX_MIME = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
ODT_MIME = "application/vnd.oasis.opendocument.text"
MAX_RATIO = 200  # a member inflating over 200x its compressed size is taken for a bomb
MAX_MEMBER_BYTES = 64 * 1024 * 1024  # and none may inflate over 64 MiB
MAX_HTML_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class PagedText:
    """A document whose parts are numbered (slides): (number from 1, text) per part."""

    parts: tuple[tuple[int, str], ...]
    title: str = ""

    @property
    def text(self) -> str:
        return "\n\n".join(t for _, t in self.parts if t)


# ---- HTML ----------------------------------------------------------------------------------
_SKIP = {"script", "style", "template", "noscript", "svg", "head"}
_BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "td", "th"}


class _Visible(HTMLParser):
    def __init__(self, limit: int) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title: list[str] = []
        self._skip = 0
        self._in_title = False
        self.size = 0
        self.limit = limit

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in _SKIP:
            self._skip += 1
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in _SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title.append(data)
        elif not self._skip and self.size < self.limit:
            self.parts.append(data)
            self.size += len(data)


def html_text(raw: bytes, limits: MediaLimits | None = None) -> tuple[str, str]:
    """(visible text, title) of an HTML page, the text cut at ``max_text_chars``."""
    limits = limits or MediaLimits()
    if len(raw) > MAX_HTML_BYTES:
        raise MediaTooLargeError(f"HTML page is {len(raw):,} bytes; the limit is {MAX_HTML_BYTES:,}")
    text, _ = decode_text(raw)
    parser = _Visible(limits.max_text_chars)
    for start in range(0, len(text), 1 << 20):
        parser.feed(text[start : start + (1 << 20)])
    parser.close()
    body = re.sub(r"[ \t\r\f\v]+", " ", "".join(parser.parts))
    body = re.sub(r"\s*\n\s*", "\n", body).strip()[: limits.max_text_chars]
    return body, re.sub(r"\s+", " ", "".join(parser.title)).strip()[:500]


# ---- office documents ----------------------------------------------------------------------
def _member(archive: zipfile.ZipFile, name: str, limits: MediaLimits) -> bytes:
    info = archive.getinfo(name)
    cap = min(MAX_MEMBER_BYTES, 8 * limits.max_text_chars)
    if info.file_size > cap or (info.compress_size and info.file_size / info.compress_size > MAX_RATIO):
        raise MediaTooLargeError(f"{name} would inflate to {info.file_size:,} bytes (a ZIP bomb?); not read")
    with archive.open(info) as fh:
        data = _read_capped(fh, cap)
    return data


def _read_capped(fh: IO[bytes], cap: int) -> bytes:
    data = fh.read(cap + 1)
    if len(data) > cap:  # the header lied about the size
        raise MediaTooLargeError(f"a document part inflates over {cap:,} bytes; not read")
    return data


def _xml_text(data: bytes, paragraphs: set[str]) -> str:
    """One line per paragraph element of an XML part (tag names without namespace): all the
    text inside it."""
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        raise MediaError(f"a document part is not valid XML ({exc})") from exc
    lines = ["".join(para.itertext()).strip() for para in root.iter() if _local(para.tag) in paragraphs]
    return "\n".join(line for line in lines if line)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise MediaError(f"not a readable ZIP document ({exc})") from exc


def office_kind(path: Path) -> str:
    """The MIME type of an office document in a ZIP archive, by what the archive holds;
    UnsupportedMediaError for any other ZIP, or one that cannot be read."""
    try:
        archive = _open_zip(path)
    except MediaError as exc:
        raise UnsupportedMediaError(f"an unreadable ZIP archive, not a usable document ({exc})") from exc
    with archive:
        names = set(archive.namelist())
        if "word/document.xml" in names:
            return DOCX_MIME
        if "ppt/presentation.xml" in names:
            return PPTX_MIME
        odt = "content.xml" in names and "mimetype" in names and archive.getinfo("mimetype").file_size < 200
        if odt and archive.read("mimetype").strip() == ODT_MIME.encode():
            return ODT_MIME
    raise UnsupportedMediaError("a ZIP archive that is not a Word, PowerPoint or OpenDocument text file")


def load_office(path: Path, mime: str, limits: MediaLimits | None = None) -> str | PagedText:
    """A DOCX's or ODT's text, or a PPTX's slides (PagedText, slide numbers from 1)."""
    limits = limits or MediaLimits()
    try:
        with _open_zip(path) as archive:
            if mime == DOCX_MIME:
                return _within(_xml_text(_member(archive, "word/document.xml", limits), {"p"}), limits)
            if mime == ODT_MIME:
                return _within(_xml_text(_member(archive, "content.xml", limits), {"p", "h"}), limits)
            slides = sorted(
                (int(m.group(1)), name)
                for name in archive.namelist()
                if (m := re.fullmatch(r"ppt/slides/slide(\d+)\.xml", name))
            )
            parts, total = [], 0
            for number, name in slides:
                text = _xml_text(_member(archive, name, limits), {"p"})
                total += len(text)
                if total > limits.max_text_chars:
                    raise MediaTooLargeError(f"the slides hold over {limits.max_text_chars:,} characters")
                parts.append((number, text))
            return PagedText(tuple(parts))
    except (zipfile.BadZipFile, KeyError, EOFError, RuntimeError) as exc:  # RuntimeError: encrypted member
        raise MediaError(f"a broken or encrypted document ({exc})") from exc


def _within(text: str, limits: MediaLimits) -> str:
    if len(text) > limits.max_text_chars:
        raise MediaTooLargeError(f"text has {len(text):,} characters; the limit is {limits.max_text_chars:,}")
    return text
