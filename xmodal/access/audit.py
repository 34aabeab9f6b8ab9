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

from xmodal.errors import CollectionError

AUDIT_FILE = "audit.jsonl"
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


def _line_hash(line: str) -> str:
    return hashlib.sha256(line.encode("utf-8")).hexdigest()


class AuditLog:
    def __init__(self, collection_dir: Path) -> None:
        self.path = Path(collection_dir) / AUDIT_FILE
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def _locked(self, mode: str) -> Iterator[IO[str]]:
        with self._lock:
            fh = open(self.path, mode, encoding="utf-8")  # noqa: SIM115 - closed below
            try:
                fcntl.flock(fh, fcntl.LOCK_EX)
                yield fh
            finally:
                fh.close()

    def record(self, action: str, principal: str, **details: Any) -> dict[str, Any]:
        """Append one entry (thread- and process-safe)."""
        with self._locked("a+") as fh:
            last = _last_line(fh)
            prev = _line_hash(last) if last else GENESIS
            seq = int(json.loads(last)["seq"]) + 1 if last else 1
            entry = {"seq": seq, "ts": round(time.time(), 6), "principal": principal, "action": action, **details}
            entry["prev"] = prev
            fh.seek(0, os.SEEK_END)
            fh.write(json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n")
            fh.flush()
        return entry

    def entries(self, flt: AuditFilter | None = None) -> list[dict[str, Any]]:
        flt = flt or AuditFilter()
        out = [e for e in self._read() if flt.match(e)]
        return out[-flt.limit :] if flt.limit else out

    def _read(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except ValueError as exc:
                    raise CollectionError(f"{self.path}:{n}: corrupt audit entry ({exc})") from exc

    def verify(self) -> list[str]:
        """Problems found in the hash chain (empty when intact)."""
        problems: list[str] = []
        if not self.path.exists():
            return problems
        prev_line: str | None = None
        prev_seq: int | None = None
        with open(self.path, encoding="utf-8") as fh:
            for n, raw in enumerate(fh, 1):
                line = raw.rstrip("\n")
                try:
                    entry = json.loads(line)
                except ValueError:
                    problems.append(f"line {n}: not JSON")
                    prev_line = line
                    continue
                if prev_line is not None and entry.get("prev") != _line_hash(prev_line):
                    problems.append(f"line {n} (seq {entry.get('seq')}): previous entry was changed or removed")
                if prev_seq is not None and entry.get("seq") != prev_seq + 1:
                    problems.append(f"line {n}: sequence jumps from {prev_seq} to {entry.get('seq')}")
                prev_line, prev_seq = line, entry.get("seq")
        return problems

    def purge_before(self, cutoff: float, principal: str = "system") -> int:
        """Drop entries older than ``cutoff`` (retention), then record that it was done. The first
        kept entry keeps its ``prev`` hash: the anchor of the remaining chain."""
        removed = 0
        with self._locked("a+") as fh:
            fh.seek(0)
            lines = [ln for ln in fh.read().splitlines() if ln.strip()]
            kept = []
            for line in lines:
                try:
                    old = float(json.loads(line).get("ts", 0.0)) < cutoff
                except ValueError:
                    old = False
                if old:
                    removed += 1
                else:
                    kept.append(line)
            if removed:
                tmp = self.path.with_name(self.path.name + ".tmp")
                tmp.write_text("".join(ln + "\n" for ln in kept), encoding="utf-8")
                os.replace(tmp, self.path)
        if removed:
            self.record("audit.purge", principal, removed=removed, cutoff=cutoff)
        return removed


def _last_line(fh: IO[str]) -> str | None:
    fh.seek(0, os.SEEK_END)
    size = fh.tell()
    if size == 0:
        return None
    back = min(size, 1 << 16)
    while True:
        fh.seek(size - back)
        tail = fh.read()
        lines = [ln for ln in tail.splitlines() if ln.strip()]
        if (len(lines) >= 2 or back >= size) and lines:
            return lines[-1]
        if back >= size:
            return None
        back = min(size, back * 4)
