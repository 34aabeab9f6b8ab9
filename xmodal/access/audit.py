"""The audit log: ``audit.jsonl`` in the collection, one JSON object per line, only ever appended
to (retention rewrites it once, recording that it did). Each entry carries the SHA-256 of the
previous line, so an edited or removed entry breaks the chain that :meth:`AuditLog.verify` checks."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

AUDIT_FILE = "audit.jsonl"
AUDIT_LOCK = "audit.lock"
GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditFilter:
    principal: str | None = None
    action: str | None = None
    item: str | None = None
    since: float | None = None
    until: float | None = None
    contains: str | None = None
    limit: int | None = None

    def match(self, entry: dict[str, Any]) -> bool:
        ts = float(entry.get("ts", 0.0))
        if self.principal is not None and entry.get("principal") != self.principal:
            return False
        if self.action is not None and not str(entry.get("action", "")).startswith(self.action):
            return False
        if self.since is not None and ts < self.since:
            return False
        if self.until is not None and ts > self.until:
            return False
        if self.item is not None and self.item not in (entry.get("ids") or []):
            return False
        return self.contains is None or self.contains.lower() in json.dumps(entry, ensure_ascii=False).lower()


def _line_hash(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def _parse(line: bytes) -> dict[str, Any] | None:
    """An entry, or None for a damaged line (cut short by a crash or a full disk)."""
    try:
        entry = json.loads(line)
    except ValueError:  # UnicodeDecodeError included: a write may stop inside a character
        return None
    return entry if isinstance(entry, dict) and isinstance(entry.get("seq"), int) else None


class AuditLog:
    def __init__(self, collection_dir: Path) -> None:
        self.path = Path(collection_dir) / AUDIT_FILE
        # Appends and purges lock this file, not the log: a purge replaces the log, and a
        # writer waiting on the old log's lock would then append to a file no longer there.
        self.lock_path = Path(collection_dir) / AUDIT_LOCK
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock, open(self.lock_path, "a") as lock_fh:
            fcntl.flock(lock_fh, fcntl.LOCK_EX)  # released when the file closes
            yield

    def record(self, action: str, principal: str, **details: Any) -> dict[str, Any]:
        """Append one entry (thread- and process-safe). A damaged last line (a write cut short)
        does not stop the log: the entry after it starts a new chain segment and says so, and
        :meth:`verify` reports both."""
        with self._locked(), open(self.path, "ab+") as fh:
            lines, ends_with_newline = _tail_lines(fh)
            entry: dict[str, Any] = {"seq": 1}
            if lines:
                last = _parse(lines[-1])
                if last is None:
                    good = next((e for e in map(_parse, reversed(lines)) if e is not None), None)
                    last = good or {"seq": 0}
                    entry["chain_break"] = f"the previous line ({len(lines[-1])} bytes) is a damaged entry"
                entry["seq"] = int(last["seq"]) + 1
            entry.update(ts=round(time.time(), 6), principal=principal, action=action, **details)
            entry["prev"] = _line_hash(lines[-1]) if lines else GENESIS
            text = json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n"
            fh.seek(0, os.SEEK_END)
            fh.write(text.encode("utf-8") if ends_with_newline else b"\n" + text.encode("utf-8"))
            fh.flush()
        return entry

    def entries(self, flt: AuditFilter | None = None) -> list[dict[str, Any]]:
        flt = flt or AuditFilter()
        out = [e for e in self._read() if flt.match(e)]
        return out[-flt.limit :] if flt.limit else out

    def _read(self) -> Iterator[dict[str, Any]]:
        """Entries in order; damaged lines are left out (:meth:`verify` reports them)."""
        if not self.path.exists():
            return
        with open(self.path, "rb") as fh:
            for line in fh:
                entry = _parse(line) if line.strip() else None
                if entry is not None:
                    yield entry

    def verify(self) -> list[str]:
        """Problems found in the hash chain (empty when intact)."""
        problems: list[str] = []
        if not self.path.exists():
            return problems
        prev_line: bytes | None = None
        prev_seq: int | None = None
        with open(self.path, "rb") as fh:
            for n, raw in enumerate(fh, 1):
                line = raw.rstrip(b"\n")
                if not line.strip():
                    continue
                entry = _parse(line)
                if entry is None:
                    problems.append(f"line {n}: damaged entry (not a complete JSON entry)")
                    prev_line = line
                    continue
                if entry.get("chain_break"):
                    problems.append(f"line {n} (seq {entry['seq']}): chain restarted: {entry['chain_break']}")
                if prev_line is not None and entry.get("prev") != _line_hash(prev_line):
                    problems.append(f"line {n} (seq {entry['seq']}): previous entry was changed or removed")
                if prev_seq is not None and entry["seq"] != prev_seq + 1:
                    problems.append(f"line {n}: sequence jumps from {prev_seq} to {entry['seq']}")
                prev_line, prev_seq = line, entry["seq"]
        return problems

    def purge_before(self, cutoff: float, principal: str = "system") -> int:
        """Drop entries older than ``cutoff`` (retention), then record that it was done. The first
        kept entry keeps its ``prev`` hash: the anchor of the remaining chain."""
        removed = 0
        with self._locked():
            if not self.path.exists():
                return 0
            kept = []
            for line in self.path.read_bytes().split(b"\n"):
                if not line.strip():
                    continue
                entry = _parse(line)
                if entry is not None and _timestamp(entry) < cutoff:
                    removed += 1
                else:  # damaged lines stay, for verify to report
                    kept.append(line)
            if removed:
                tmp = self.path.with_name(self.path.name + ".tmp")
                tmp.write_bytes(b"".join(ln + b"\n" for ln in kept))
                os.replace(tmp, self.path)
        if removed:
            self.record("audit.purge", principal, removed=removed, cutoff=cutoff)
        return removed


def _timestamp(entry: dict[str, Any]) -> float:
    try:
        return float(entry.get("ts", 0.0))
    except (TypeError, ValueError):
        return 0.0


def _tail_lines(fh: IO[bytes]) -> tuple[list[bytes], bool]:
    """The last non-blank lines of the file (at least one whole line unless the file has none),
    and whether the file ends with a newline. Read as bytes: a text-mode seek could land
    inside a character."""
    fh.seek(0, os.SEEK_END)
    size = fh.tell()
    if size == 0:
        return [], True
    back = min(size, 1 << 16)
    while True:
        fh.seek(size - back)
        tail = fh.read()
        parts = tail.split(b"\n")
        if back < size:
            parts = parts[1:]  # may start inside a line
        lines = [ln for ln in parts if ln.strip()]
        if lines or back >= size:
            return lines, tail.endswith(b"\n")
        back = min(size, back * 4)
