"""The ingest loop of :meth:`Collection.add`: per-file decisions, batched encoding, writes."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xmodal.catalog import VectorRecord, now
from xmodal.embedder import Embedder, Extracted
from xmodal.errors import MediaError, UnsupportedMediaError, XmodalError
from xmodal.extract.base import SecondsDone
from xmodal.ingest import (
    FileEntry,
    IngestReport,
    NullProgress,
    Progress,
    StopIngest,
    WalkError,
    bad_name,
    base_metadata,
    decode_file,
    hash_file,
    is_media_name,
    item_id_for,
    walk,
)
from xmodal.media.documents import PagedText
from xmodal.media.pdf import PdfSource
from xmodal.types import Item, Modality

if TYPE_CHECKING:
    from xmodal.collection import Collection


@dataclass
class Pending:
    entry: FileEntry
    uri: str
    digest: str
    size: int
    mtime_ns: int
    existed: bool
    created_at: float
    metadata: dict[str, Any]
    extracted: Extracted | None = None
    reused: tuple[str, list[VectorRecord]] | None = None


PENDING_BYTES = 256 * 1024 * 1024


class IngestRun:
    def __init__(
        self, coll: Collection, metadata: dict[str, Any], force: bool, progress: Progress, batch_size: int
    ) -> None:
        self.coll = coll
        self.metadata = metadata
        self.force = force
        self.progress = progress
        self.batch_size = max(1, batch_size)
        self.report = IngestReport()
        self.pending: list[Pending] = []

    def run(self, paths: list[str | Path], prune: bool) -> IngestReport:
        started = time.perf_counter()
        entries: list[FileEntry] = []
        walked: set[Path] = set()  # a path given twice, or a file inside a folder also given, once
        for found in walk(paths, exclude=[self.coll.path]):
            if isinstance(found, WalkError):
                self.report.failures.append((found.path, found.reason))
            elif (key := found.path.absolute()) not in walked:
                walked.add(key)
                entries.append(found)
        self.progress.start(len(entries))
        seen: set[str] = set()
        try:
            for entry in entries:
                seen.add(str(entry.path))
                self._one(entry)
                self.progress.advance(self.report.failed)
                if len(self.pending) >= self.batch_size or self._pending_bytes() > PENDING_BYTES:
                    self._flush()
            self._flush()
            self._prune_or_count(paths, seen, prune)
        except StopIngest:
            self._flush()  # asked to stop between files: keep what was read
            self.report.interrupted = True
        except KeyboardInterrupt:
            self.report.interrupted = True
            with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C gives them up
                self._flush()  # files already read are encoded and kept
        finally:
            self.progress.close()
            self.report.seconds = time.perf_counter() - started
        return self.report

    def _pending_bytes(self) -> int:
        """Decoded media waiting for the encoder; flushed early so long recordings or large
        images never pile up in memory."""
        total = 0
        for p in self.pending:
            ex = p.extracted
            if ex is not None and ex.image is not None:
                total += ex.image.width * ex.image.height * 3
            if ex is not None and ex.clip is not None:
                total += ex.clip.samples.nbytes
        return total

    def _unchanged(self, item_id: str, uri: str) -> None:
        """An unchanged file is not read again, but metadata given now still applies to it."""
        if self.metadata and self.coll._set_metadata(item_id, self.metadata):
            self.report.metadata_updated += 1
        else:
            self.report.unchanged += 1
        self.report.handled.append(uri)

    def _fail(self, path: Path, reason: str) -> None:
        self.report.failures.append((str(path), reason))

    def _one(self, entry: FileEntry) -> None:
        path = entry.path
        try:
            st = path.stat()
        except OSError as exc:
            self._fail(path, exc.strerror or str(exc))
            return
        uri = str(path)
        state = self.coll.catalog.file_state(uri)
        if state and not self.force and state.size == st.st_size and state.mtime_ns == st.st_mtime_ns:
            self._unchanged(state.item_id, uri)
            return
        try:
            digest = hash_file(path)
        except PermissionError:
            self._fail(path, "permission denied")
            return
        except OSError as exc:
            self._fail(path, exc.strerror or str(exc))
            return
        if state and not self.force and state.content_hash == digest:
            self.coll.catalog.touch(state.item_id, st.st_mtime_ns)
            self._unchanged(state.item_id, uri)
            return
        try:
            decoded = decode_file(path, self.coll.config.limits)
        except UnsupportedMediaError as exc:
            if is_media_name(path) or st.st_size == 0:
                self._fail(path, str(exc))
            else:
                self.report.skipped += 1
            return
        except MediaError as exc:
            self._fail(path, str(exc))
            return
        meta = base_metadata(entry, decoded, st.st_size)
        pending = Pending(entry, uri, digest, st.st_size, st.st_mtime_ns, state is not None, now(), meta)
        reuse = None if self.force else self.coll.catalog.vectors_for_hash(digest)
        if reuse is not None:
            pending.reused = reuse
            pending.extracted = Extracted(decoded.detected.modality)
        else:
            try:
                within = getattr(self.progress, "within", None)  # seconds done inside a long recording
                pending.extracted = extract_with(self.coll.embedder, decoded.detected.modality, decoded.payload, within)
            except XmodalError as exc:
                self._fail(path, str(exc))
                return
            except Exception as exc:  # an engine choking on one file must not stop the run
                self._fail(path, f"{type(exc).__name__}: {exc}")
                return
        self.pending.append(pending)

    def _flush(self) -> None:
        if not self.pending:
            return
        fresh = [p for p in self.pending if p.reused is None]
        encoded = iter(self.coll.embedder.encode([p.extracted for p in fresh if p.extracted is not None]))
        rows = []
        for p in self.pending:
            assert p.extracted is not None
            if p.reused is not None:
                text, records = p.reused
            else:
                text, records = p.extracted.text, next(encoded)
            meta = {**p.metadata, **p.extracted.metadata, **self.metadata}
            item = Item(
                id=item_id_for(p.uri),
                uri=p.uri,
                modality=p.extracted.modality,
                content_hash=p.digest,
                size=p.size,
                metadata=meta,
                text=text,
                created_at=p.created_at,
                updated_at=now(),
            )
            rows.append((item, p.mtime_ns, records))
        self.coll._write_items(rows)
        # counted once written: a flush cut off by Ctrl-C is flushed again, not counted twice
        for p, (item, _, _) in zip(self.pending, rows, strict=True):
            if p.existed:
                self.report.updated += 1
            else:
                self.report.added += 1
            key = item.modality.value
            self.report.by_modality[key] = self.report.by_modality.get(key, 0) + 1
            self.report.handled.append(item.uri)
            self.report.written_ids.append(item.id)
        self.pending = []

    def _prune_or_count(self, paths: list[str | Path], seen: set[str], prune: bool) -> None:
        prefixes = []
        for raw in paths:
            root = Path(raw).expanduser().absolute()
            if root.is_dir() and not bad_name(root):  # a non-UTF-8 name failed in the walk
                prefixes.append(str(root).rstrip("/") + "/")
        gone = [item_id for item_id, uri in self.coll.catalog.uris_under(prefixes) if uri not in seen and _gone(uri)]
        if not gone:
            return
        if prune:
            with self.coll.catalog.transaction():
                deleted, vids = self.coll.catalog.delete_items(gone)
            if vids:
                import numpy as np

                self.coll.index.remove(np.asarray(vids, dtype=np.int64))
            self.report.pruned = len(deleted)
            self.report.pruned_ids = list(deleted)
        else:
            self.report.missing = len(gone)


def _gone(uri: str) -> bool:
    """True only when the file is certainly absent; an unreadable folder is not proof."""
    try:
        return not Path(uri).exists()
    except OSError:
        return False


def reembed_all(
    coll: Collection, embedder: Embedder, state: dict[str, Any], batch_size: int = 32, progress: Progress | None = None
) -> IngestReport:
    """Re-extract and re-encode every item with ``embedder`` in batches (only texts and vectors
    are kept between batches), then commit every new vector together with ``state`` (the model
    that made them) in one transaction. The caller rebuilds the ANN index from the catalog."""
    report = IngestReport()
    started = time.perf_counter()
    items = list(coll.catalog.iter_items())
    rows: list[tuple[Item, str, list[VectorRecord]]] = []
    progress = progress or NullProgress()
    progress.start(len(items))
    try:
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            extracted = []
            for item in chunk:
                try:
                    decoded = decode_file(Path(item.uri), coll.config.limits)
                    extracted.append(extract_with(embedder, decoded.detected.modality, decoded.payload))
                except (MediaError, OSError):
                    # the file is gone or unreadable: keep what the catalog knows, its text
                    extracted.append(Extracted(item.modality, item.text, coll.catalog.text_segments(item.id)))
                    report.missing += 1
                progress.advance(0)
            for item, ex, vectors in zip(chunk, extracted, embedder.encode(extracted), strict=True):
                rows.append((item, ex.text or item.text, vectors))
            report.updated += len(chunk)
    finally:
        progress.close()
    with coll.catalog.transaction():
        for item, text, vectors in rows:
            new_item = replace(item, text=text, updated_at=now())
            coll.catalog.upsert_item(new_item, _mtime(item), vectors)
        coll.catalog.set_model_state(state)
    report.seconds = time.perf_counter() - started
    return report


def extract_with(embedder: Embedder, modality: Modality, payload: Any, within: SecondsDone | None = None) -> Extracted:
    if isinstance(payload, PdfSource):  # a text document read page by page
        return embedder.extract_pdf(payload)
    if isinstance(payload, PagedText):  # slides, each with its number
        return embedder.extract_paged_text(payload)
    if modality is Modality.IMAGE:
        return embedder.extract_image(payload)
    if modality is Modality.AUDIO:
        return embedder.extract_audio(payload, within)
    return embedder.extract_text(payload)


def _mtime(item: Item) -> int:
    try:
        return Path(item.uri).stat().st_mtime_ns
    except OSError:
        return 0
