"""Detect a file's modality from its first bytes (magic numbers), not from its extension."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from xmodal.errors import MediaError, UnsupportedMediaError
from xmodal.types import Modality

SNIFF_BYTES = 4096
PDF_MIME = "application/pdf"
ZIP_MIME = "application/zip"
_HTML_START = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html[\s>])", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Detected:
    modality: Modality
    mime: str


_IMAGE_MAGIC: list[tuple[bytes, str]] = [
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
]
_AUDIO_MAGIC: list[tuple[bytes, str]] = [
    (b"fLaC", "audio/flac"),
    (b"OggS", "audio/ogg"),
    (b"ID3", "audio/mpeg"),
]


# ISO media brands of still pictures (HEIC/HEIF from phones, AVIF); other ftyp files are audio/video
_PICTURE_BRANDS = {
    b"heic": "image/heic", b"heix": "image/heic", b"heim": "image/heic", b"heis": "image/heic",
    b"hevc": "image/heic", b"hevx": "image/heic", b"mif1": "image/heif", b"msf1": "image/heif",
    b"avif": "image/avif", b"avis": "image/avif",
}  # fmt: skip


def sniff(head: bytes) -> Detected | None:
    """Return what ``head`` (the first bytes of a file) looks like, or None if unknown."""
    if head.startswith(b"PK\x03\x04"):  # a ZIP: Word, PowerPoint or OpenDocument (told apart when decoded)
        return Detected(Modality.TEXT, ZIP_MIME)
    if b"%PDF-" in head[:1024]:  # the header may follow up to 1 KB of junk (PDF 1.7, 7.5.2)
        return Detected(Modality.TEXT, PDF_MIME)  # a document: its pages' text, scans read by OCR
    for magic, mime in _IMAGE_MAGIC:
        if head.startswith(magic):
            return Detected(Modality.IMAGE, mime)
    if head[4:8] == b"ftyp" and head[8:12] in _PICTURE_BRANDS:
        return Detected(Modality.IMAGE, _PICTURE_BRANDS[head[8:12]])
    if _utf16_text(head):  # before audio: a UTF-16 byte-order mark also looks like MPEG frame sync
        return Detected(Modality.TEXT, "text/plain")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Detected(Modality.IMAGE, "image/webp")
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return Detected(Modality.AUDIO, "audio/wav")
    for magic, mime in _AUDIO_MAGIC:
        if head.startswith(magic):
            return Detected(Modality.AUDIO, mime)
    container = container_mime(head)
    if container:  # decoded by PyAV; one with a video stream is refused there (not audio)
        return Detected(Modality.AUDIO, container)
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0 and (head[1] & 0x06) != 0:
        return Detected(Modality.AUDIO, "audio/mpeg")  # MPEG audio frame sync
    if _looks_like_text(head):
        html = _HTML_START.match(head.removeprefix(b"\xef\xbb\xbf")) is not None
        return Detected(Modality.TEXT, "text/html" if html else "text/plain")
    return None


def container_mime(head: bytes) -> str | None:
    """Containers decoded by FFmpeg through PyAV (``media.audio``), libsndfile reads none of them."""
    if head[4:8] == b"ftyp" and head[8:12] not in _PICTURE_BRANDS:  # M4A/M4B voice memos, MP4/MOV
        return "audio/mp4"  # a file with a video stream is refused when decoded
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: WebM or Matroska
        return "audio/webm" if b"webm" in head[:64] else "audio/x-matroska"
    if head.startswith(b"#!AMR"):
        return "audio/amr"
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xF6) == 0xF0:
        return "audio/aac"  # ADTS frames
    return None


def _utf16_text(head: bytes) -> bool:
    """A UTF-16 byte-order mark followed by mostly printable characters."""
    codec = {b"\xff\xfe": "utf-16-le", b"\xfe\xff": "utf-16-be"}.get(head[:2])
    if codec is None:
        return False
    body = head[2 : 2 + (len(head) - 2) // 2 * 2].decode(codec, errors="replace")
    if not body:
        return True
    # random bytes (an MPEG frame after all) decode to many unassigned, private-use and
    # surrogate code points
    bad = sum(1 for c in body if unicodedata.category(c) in ("Cn", "Co", "Cs") or c == "\ufffd" or _control(c))
    return bad / len(body) < 0.02


def _control(c: str) -> bool:
    return ord(c) < 32 and c not in "\t\n\x0c\r\x1b"


def _looks_like_text(head: bytes) -> bool:
    if not head:
        return False
    if head.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        return True
    if b"\x00" in head:
        return False
    # Mostly printable bytes: accept UTF-8 and legacy 8-bit encodings alike.
    control = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13, 27))
    return control / len(head) < 0.02


def detect_file(path: Path) -> Detected:
    try:
        with open(path, "rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except PermissionError as exc:
        raise MediaError(f"permission denied: {path}") from exc
    except OSError as exc:
        raise MediaError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not head:
        raise UnsupportedMediaError("empty file (0 bytes)")
    found = sniff(head)
    if found is None:
        raise UnsupportedMediaError("unrecognised content (not an image, audio, PDF or text file)")
    return found
