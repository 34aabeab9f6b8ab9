"""Text decoding (UTF-8, UTF-16 by BOM, else a legacy 8-bit code page) and chunking."""

from __future__ import annotations

import re
from pathlib import Path

from xmodal.errors import MediaError, MediaTooLargeError
from xmodal.media.limits import MediaLimits


def decode_text(raw: bytes) -> tuple[str, str]:
    """Returns (text, encoding used). Never fails: the last resort is cp1252 with replacement."""
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8", errors="replace"), "utf-8-sig"
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16", errors="replace"), "utf-16"
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace"), "cp1252"


def load_text(path: Path, limits: MediaLimits | None = None) -> tuple[str, str]:
    limits = limits or MediaLimits()
    try:
        size = path.stat().st_size
        if size > 4 * limits.max_text_chars:  # UTF-8 needs at most 4 bytes a character
            raise MediaTooLargeError(f"text file is {size:,} bytes; the limit is {limits.max_text_chars:,} characters")
        raw = path.read_bytes()
    except PermissionError as exc:
        raise MediaError("permission denied") from exc
    except OSError as exc:
        raise MediaError(f"cannot read: {exc.strerror or exc}") from exc
    text, encoding = decode_text(raw)
    if len(text) > limits.max_text_chars:
        raise MediaTooLargeError(f"text has {len(text):,} characters; the limit is {limits.max_text_chars:,}")
    return text, encoding


_WS = re.compile(r"\s+")


def chunk_words(text: str, max_words: int = 120, overlap: int = 20) -> list[str]:
    """Split text into overlapping windows of words; MiniLM reads at most ~256 tokens."""
    words = _WS.sub(" ", text).strip().split(" ")
    words = [w for w in words if w]
    if not words:
        return []
    if len(words) <= max_words:
        return [" ".join(words)]
    step = max(1, max_words - overlap)
    chunks = []
    for start in range(0, len(words), step):
        chunks.append(" ".join(words[start : start + max_words]))
        if start + max_words >= len(words):
            break
    return chunks
