"""Ingest: walk folders, detect and decode each file safely, skip unchanged files by content
hash, batch the encoder calls, and report what happened to every file."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from xmodal.errors import MediaError, MediaTooLargeError
from xmodal.media.audio import load_audio
from xmodal.media.detect import PDF_MIME, ZIP_MIME, Detected, detect_file
from xmodal.media.documents import HTML_MIME, MAX_HTML_BYTES, PagedText, html_text, load_office, office_kind
from xmodal.media.image import load_image, photo_metadata
from xmodal.media.limits import MediaLimits
from xmodal.media.pdf import open_pdf
from xmodal.media.text import load_text
from xmodal.types import Modality

MEDIA_EXTENSIONS = {
    ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".heic", ".heif", ".avif",
    ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".m4b", ".aac", ".weba", ".amr",
    ".pdf", ".docx", ".pptx", ".odt", ".html", ".htm", ".txt", ".md", ".markdown", ".rst", ".text", ".csv", ".log",
}  # fmt: skip


class Progress(Protocol):
    """Told how many files a run will read and when each is done. ``advance`` may raise
    :class:`StopIngest` to end the run there (what was read so far is kept). A progress may
    also have ``within(seconds_done, seconds_total)``: told how far speech recognition is
    inside a long recording."""

    def start(self, total: int) -> None: ...
    def advance(self, failed: int) -> None: ...
    def close(self) -> None: ...


class StopIngest(Exception):
    """Raised by a :class:`Progress` to stop a run after the file it just finished: the files
    read so far are indexed and the report says ``interrupted``."""


class NullProgress:
    def start(self, total: int) -> None:
        pass

    def advance(self, failed: int) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class IngestReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    metadata_updated: int = 0  # unchanged files whose metadata the run changed (not re-read)
    skipped: int = 0  # not media (unknown content and extension)
    pruned: int = 0
    missing: int = 0  # items whose files are gone (not pruned)
    failures: list[tuple[str, str]] = field(default_factory=list)
    by_modality: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    interrupted: bool = False
    pruned_ids: list[str] = field(default_factory=list)
    handled: list[str] = field(default_factory=list)  # URIs written or unchanged (never a failed one)
    written_ids: list[str] = field(default_factory=list)  # items added or updated (for the audit log)

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def processed(self) -> int:
        return self.added + self.updated

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "metadata_updated": self.metadata_updated,
            "skipped": self.skipped,
            "pruned": self.pruned,
            "missing": self.missing,
            "failed": self.failed,
            "failures": [{"path": p, "reason": r} for p, r in self.failures],
            "by_modality": self.by_modality,
            "seconds": round(self.seconds, 3),
            "interrupted": self.interrupted,
        }

    def summary(self) -> str:
        parts = [f"{self.added} added", f"{self.updated} updated", f"{self.unchanged} unchanged"]
        if self.metadata_updated:
            parts.append(f"{self.metadata_updated} with new metadata")
        if self.pruned:
            parts.append(f"{self.pruned} pruned")
        if self.skipped:
            parts.append(f"{self.skipped} skipped (not media)")
        parts.append(f"{self.failed} failed")
        rate = self.processed / self.seconds if self.seconds > 0 else 0.0
        line = ", ".join(parts) + f" in {self.seconds:.1f}s"
        if self.processed:
            line += f" ({rate:.1f} items/s)"
        if self.missing:
            line += f"; {self.missing} indexed files are gone (re-run with --prune to remove them)"
        if self.interrupted:
            line += "; interrupted: what was indexed so far is saved"
        return line


@dataclass(frozen=True)
class FileEntry:
    path: Path
    root: Path


@dataclass(frozen=True)
class WalkError:
    path: str
    reason: str


OUTSIDE = "a link to outside the index root (not followed)"


def walk(
    paths: Iterable[str | Path], exclude: Iterable[Path] = (), within: Path | None = None
) -> Iterator[FileEntry | WalkError]:
    """Yield files under ``paths`` (files are yielded as given). Follows symlinks, but never
    visits a directory twice, so symlink loops end. Hidden entries, ``exclude`` and folders that
    are xmodal collections are skipped. With ``within``, a link that leads out of that folder is
    not followed (a :class:`WalkError` says so), however large the tree behind it."""
    excluded = {_real(p) for p in exclude}
    inside = _real(within) if within is not None else None
    seen_dirs: set[tuple[int, int]] = set()
    for raw in paths:
        root = Path(raw).expanduser().absolute()
        try:
            st = root.stat()
        except FileNotFoundError:
            yield WalkError(display_path(root), "no such file or directory")
            continue
        except OSError as exc:
            yield WalkError(display_path(root), _os_reason(exc))
            continue
        if bad_name(root):
            yield WalkError(display_path(root), NOT_UTF8)
        elif inside is not None and not _is_within(root, inside):
            yield WalkError(str(root), OUTSIDE)
        elif stat.S_ISDIR(st.st_mode):
            yield from _walk_dir(root, root, seen_dirs, excluded, inside)
        elif not stat.S_ISREG(st.st_mode):  # reading a pipe or a device could block forever
            yield WalkError(str(root), "not a regular file (a pipe, socket or device)")
        else:
            yield FileEntry(root, root.parent)


NOT_UTF8 = "the name is not valid UTF-8: rename it to index it"

# a collection's own files (collection.py names them from here): folders holding them are
# another collection, never media -- its manifest would be indexed as text, its lock fail
COLLECTION_MANIFEST = "manifest.json"
COLLECTION_CATALOG = "catalog.sqlite"
COLLECTION_FORMAT = "xmodal-collection"


def is_collection_dir(directory: Path, names: set[str]) -> bool:
    """``directory`` (whose entries are ``names``) is an xmodal collection."""
    if COLLECTION_MANIFEST not in names or COLLECTION_CATALOG not in names:
        return False
    try:
        with open(directory / COLLECTION_MANIFEST, "rb") as fh:
            manifest = json.loads(fh.read(1 << 20))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == COLLECTION_FORMAT


def bad_name(path: Path) -> bool:
    """A path with bytes that are not UTF-8 (Python keeps them as surrogates): it cannot be
    stored or shown as text."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def display_path(path: Path | str | bytes) -> str:
    """``path`` as printable text, undecodable bytes shown as ``\\xff``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _is_within(path: Path, inside: str) -> bool:
    real = _real(path)
    return real == inside or real.startswith(inside.rstrip(os.sep) + os.sep)


def _walk_dir(
    directory: Path, root: Path, seen: set[tuple[int, int]], excluded: set[str], inside: str | None = None
) -> Iterator[FileEntry | WalkError]:
    try:
        st = directory.stat()
    except OSError as exc:
        yield WalkError(str(directory), _os_reason(exc))
        return
    key = (st.st_dev, st.st_ino)
    if key in seen or _real(directory) in excluded:
        return
    seen.add(key)
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError as exc:
        yield WalkError(str(directory), _os_reason(exc))
        return
    if is_collection_dir(directory, {e.name for e in entries}):
        if directory == root:  # asked for by name: say why nothing comes of it
            yield WalkError(str(directory), "an xmodal collection, not media (search it with -c)")
        return  # inside a folder: skipped like hidden entries
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        if bad_name(path):
            yield WalkError(display_path(path), NOT_UTF8)
            continue
        try:
            is_dir = entry.is_dir(follow_symlinks=True)
            is_file = entry.is_file(follow_symlinks=True)
        except OSError as exc:
            yield WalkError(str(path), _os_reason(exc))
            continue
        if (is_dir or is_file) and inside is not None and entry.is_symlink() and not _is_within(path, inside):
            yield WalkError(str(path), OUTSIDE)
        elif is_dir:
            yield from _walk_dir(path, root, seen, excluded, inside)
        elif is_file:
            yield FileEntry(path, root)
        elif entry.is_symlink():
            yield WalkError(str(path), "broken symbolic link (or a link loop)")


def _real(path: Path) -> str:
    try:
        return os.path.realpath(path)
    except OSError:
        return str(path)


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    if exc.errno == 40:  # ELOOP
        return "symbolic link loop"
    return exc.strerror or str(exc)


def hash_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def item_id_for(uri: str) -> str:
    return hashlib.sha1(uri.encode("utf-8")).hexdigest()[:16]


@dataclass
class Decoded:
    detected: Detected
    payload: Any  # str for text, PIL image, AudioClip, PdfSource
    encoding: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)  # what the file says of itself (EXIF)


def decode_file(path: Path, limits: MediaLimits) -> Decoded:
    """Detect by content and decode within limits. Raises MediaError with a one-line reason."""
    size = path.stat().st_size
    if size > limits.max_file_bytes:
        raise MediaTooLargeError(
            f"file is {size / 2**20:.0f} MiB; the limit is {limits.max_file_bytes / 2**20:.0f} MiB"
        )
    detected = detect_file(path)
    if detected.mime == PDF_MIME:
        pdf = open_pdf(path, limits)
        meta: dict[str, Any] = {"pages": pdf.pages}
        if pdf.title:
            meta["title"] = pdf.title
        return Decoded(detected, pdf, metadata=meta)
    if detected.mime == ZIP_MIME:
        mime = office_kind(path)
        detected = Detected(Modality.TEXT, mime)
        content = load_office(path, mime, limits)
        if not (content.text if isinstance(content, PagedText) else content).strip():
            raise MediaError("the document has no text")
        meta = {"slides": len(content.parts)} if isinstance(content, PagedText) else {}
        return Decoded(detected, content, metadata=meta)
    if detected.mime == HTML_MIME:
        if size > MAX_HTML_BYTES:  # before reading it (html_text checks the bytes it is given)
            raise MediaTooLargeError(f"HTML page is {size:,} bytes; the limit is {MAX_HTML_BYTES:,}")
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise MediaError(f"cannot read: {exc.strerror or exc}") from exc
        body, title = html_text(raw, limits)
        if not body.strip():
            raise MediaError("the HTML page has no visible text")
        return Decoded(detected, body, metadata={"title": title} if title else {})
    if detected.modality is Modality.IMAGE:
        image = load_image(path, limits)
        return Decoded(detected, image, metadata=photo_metadata(image))
    if detected.modality is Modality.AUDIO:
        return Decoded(detected, load_audio(path, limits))
    text, encoding = load_text(path, limits)
    if not text.strip():
        raise MediaError("text file has no text")
    return Decoded(detected, text, encoding)


def is_media_name(path: Path) -> bool:
    return path.suffix.lower() in MEDIA_EXTENSIONS


def base_metadata(entry: FileEntry, decoded: Decoded | None, size: int) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": entry.path.name,
        "ext": entry.path.suffix.lower().lstrip("."),
        "folder": entry.path.parent.name,
        "source": entry.root.name,
        "bytes": size,
    }
    if decoded is not None:
        meta["mime"] = decoded.detected.mime
        if decoded.encoding:
            meta["encoding"] = decoded.encoding
        meta.update(decoded.metadata)
    return meta
