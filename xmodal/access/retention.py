"""Retention: delete items and audit entries older than N days."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from xmodal.access.audit import AuditLog
from xmodal.access.store import AccessStore
from xmodal.errors import InvalidArgumentError, XmodalError

if TYPE_CHECKING:
    from xmodal.collection import Collection

DAY = 86400.0


@dataclass(frozen=True)
class RetentionReport:
    items: int
    audit_entries: int
    cutoff: float
    ids: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, float | int]:  # ids stay out: retention logs go to the server log
        return {"items_deleted": self.items, "audit_entries_deleted": self.audit_entries, "cutoff": self.cutoff}


def check_days(days: float) -> float:
    if not isinstance(days, int | float) or isinstance(days, bool) or not days > 0:
        raise InvalidArgumentError(f"retention must be a positive number of days, got {days!r}")
    return float(days)


def old_item_ids(coll: Collection, cutoff: float) -> list[str]:
    return [item.id for item in coll.items() if item.created_at < cutoff]


def remove_items(coll: Collection, store: AccessStore, ids: list[str], uploads_dir: Path | None) -> int:
    """Delete items with everything derived from them: vectors, access lists, previews and the
    server's own copies of uploaded files."""
    if not ids:
        return 0
    uris = {}
    for item_id in ids:
        try:
            uris[item_id] = coll.get(item_id).uri
        except XmodalError:  # already gone
            continue
    n = coll.delete(ids)
    store.drop_acl(ids)
    for item_id in ids:
        for old in (coll.path / "previews").glob(f"{item_id}-*.jpg"):
            old.unlink(missing_ok=True)
    if uploads_dir is not None:
        root = uploads_dir.resolve()
        for uri in uris.values():
            path = Path(uri)
            if path.is_file() and root in path.resolve().parents:
                path.unlink(missing_ok=True)
                with_parent = path.parent
                if with_parent != root and not any(with_parent.iterdir()):
                    with_parent.rmdir()
    return n


def apply_retention(
    coll: Collection, store: AccessStore, audit: AuditLog, days: float, uploads_dir: Path | None = None
) -> RetentionReport:
    cutoff = time.time() - check_days(days) * DAY
    ids = old_item_ids(coll, cutoff)
    n_items = remove_items(coll, store, ids, uploads_dir)
    if n_items:
        audit.record("retention.delete", "system", ids=ids, days=days)
    n_audit = audit.purge_before(cutoff)
    return RetentionReport(n_items, n_audit, cutoff, tuple(ids))
