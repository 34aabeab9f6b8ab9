"""xmodal index PATH... : add files and folders to a collection (incremental)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from xmodal.cli.common import audit_cli, common_parser, forget_access, parse_pairs, print_json, printable


def register(sub: Any) -> None:
    p = sub.add_parser(
        "index",
        parents=[common_parser()],
        help="index files and folders (re-running skips unchanged files)",
        description="Index files and folders. Unchanged files are skipped by content hash.",
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="files or folders to index")
    p.add_argument("--model", metavar="SPEC", help="encoder for a new collection: default, minilm, clip:DIR, ...")
    p.add_argument("--index", choices=None, metavar="KIND", help="vector index kind: flat (exact), hnsw or milvus")
    p.add_argument(
        "--asr",
        metavar="ENGINE",
        help="speech recognition: whisper-tiny.en (default), whisper-base (multilingual), pocketsphinx, "
        "whisper:DIR (a CTranslate2 Whisper folder) or none",
    )
    p.add_argument(
        "--language",
        metavar="CODE",
        help="language of the recordings (ISO 639-1: en, fr, ...; auto: detected, the default)",
    )
    p.add_argument("--reembed", action="store_true", help="re-embed every item (e.g. with a new --model or --asr)")
    p.add_argument("--prune", action="store_true", help="remove items whose files are gone")
    p.add_argument("--force", action="store_true", help="re-process files even if unchanged")
    p.add_argument("--meta", action="append", metavar="KEY=VALUE", help="metadata for every file (repeatable)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


class TqdmProgress:
    def __init__(self, desc: str = "indexing") -> None:
        self._bar: Any = None
        self.desc = desc

    def start(self, total: int) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=total, unit="file", desc=self.desc, dynamic_ncols=True, file=sys.stderr)

    def advance(self, failed: int) -> None:
        if self._bar is not None:
            if failed:
                self._bar.set_postfix(failed=failed, refresh=False)
            self._bar.update(1)

    def within(self, done: float, total: float) -> None:
        """Where speech recognition is inside a long recording."""
        if self._bar is not None and total >= 120:
            self._bar.set_postfix_str(f"{fmt_clock(done)} of {fmt_clock(total)} transcribed")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def fmt_clock(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{rest:02d}" if hours else f"{minutes}:{rest:02d}"


def run(args: argparse.Namespace) -> int:
    from xmodal.collection import Collection
    from xmodal.errors import InvalidArgumentError

    meta = {k: v if not isinstance(v, list) else v[-1] for k, v in parse_pairs(args.meta, "--meta").items()}
    if not args.paths and not args.reembed and not args.index and not args.asr and not args.language:
        raise InvalidArgumentError("nothing to index: give one or more files or folders")
    if args.paths and not any(os.path.lexists(os.path.expanduser(p)) for p in args.paths):
        # a typo must not leave an empty new collection behind
        raise InvalidArgumentError(f"no such file or directory: {', '.join(args.paths)}")
    quiet = args.quiet or args.json
    with Collection.open(
        args.collection, create=True, model=args.model, index=args.index, reembed=args.reembed,
        progress=None if quiet else TqdmProgress("re-embedding"), asr=args.asr, language=args.language,
    ) as coll:  # fmt: skip
        change = coll.extractor_change() if args.paths else None
        if change:
            print(f"xmodal: warning: {change}", file=sys.stderr)
        redone = coll.reembed_report
        if redone is not None:
            audit_cli(coll.path, "items.reembed", items=redone.updated, model=coll.config.model.to_dict())
        if redone is not None and not args.json:
            kept = f" ({redone.missing} from their stored text: file gone or unreadable)" if redone.missing else ""
            print(f"re-embedded {redone.updated} items{kept} in {redone.seconds:.1f}s")
        if not args.paths:
            if args.json:
                print_json({"collection": str(coll.path), "items": len(coll), **_reembed_json(redone)})
            else:
                print(f"collection {coll.path}: {len(coll)} items")
            return 0
        progress = None if quiet else TqdmProgress()
        report = coll.add(args.paths, metadata=meta, prune=args.prune, force=args.force, progress=progress)
        where = coll.path
    forget_access(args.collection, report.pruned_ids)
    if report.written_ids or report.metadata_updated:
        paths = [os.path.abspath(os.path.expanduser(p)) for p in args.paths]
        audit_cli(where, "items.add", ids=report.written_ids, paths=paths, metadata=meta or None,
                  failures=report.failed, metadata_updated=report.metadata_updated or None)  # fmt: skip
    if report.pruned_ids:
        audit_cli(where, "items.delete", ids=report.pruned_ids, pruned=True)
    if args.json:
        print_json({**report.to_dict(), **_reembed_json(redone)})
    else:
        for path, reason in report.failures:
            print(f"failed: {printable(path)}: {reason}", file=sys.stderr)
        print(report.summary())
    if report.interrupted:
        return 130
    return 1 if report.failed else 0


def _reembed_json(report: Any) -> dict[str, Any]:
    if report is None:
        return {}
    return {
        "reembed": {"items": report.updated, "from_stored_text": report.missing, "seconds": round(report.seconds, 3)}
    }
