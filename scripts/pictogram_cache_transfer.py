#!/usr/bin/env python
"""Pack the pictogram recipe's data cache small enough to carry to another machine (a lent GPU
takes 64 MiB), and unpack it there.

    python scripts/pictogram_cache_transfer.py pack CACHE_DIR/data PACKED_DIR
    python scripts/pictogram_cache_transfer.py unpack PACKED_DIR DATA_DIR
    python scripts/train_pictogram.py --data DATA_DIR --text-cache-only --config CFG.json --out M

Images are stored raw and lzma-compressed (42 MB npz -> 24 MB); caption vectors are int8 with a
scale per vector (max error ~0.0013 per component, renormalised on unpacking), because the
MiniLM weights (88 MB) do not travel: the trainer then reads vectors from the cache only. Runs on
the unpacked data are therefore close to, not identical with, runs on the original cache.
"""

from __future__ import annotations

import argparse
import json
import lzma
import shutil
from pathlib import Path

import numpy as np
from build_pictogram_data import HELDOUT_SETS as HELDOUT  # the sets it writes; scripts/ is on sys.path


def pack(src: Path, dst: Path) -> None:
    (dst / "cache").mkdir(parents=True, exist_ok=True)
    with np.load(src / "train.npz") as z:
        meta = {k: [list(z[k].shape), str(z[k].dtype)] for k in z.files}
        for k in z.files:
            (dst / f"train.{k}.xz").write_bytes(lzma.compress(np.ascontiguousarray(z[k]).tobytes()))
    (dst / "train.meta.json").write_text(json.dumps(meta))
    (dst / "train.json.xz").write_bytes(lzma.compress((src / "train.json").read_bytes()))
    for s in HELDOUT:
        shutil.copy(src / f"heldout-{s}.npz", dst)
        (dst / f"heldout-{s}.json.xz").write_bytes(lzma.compress((src / f"heldout-{s}.json").read_bytes()))
    for f in sorted((src / "cache").glob("text-*.npy")):
        v = np.load(f)
        scale = np.abs(v).max(axis=1, keepdims=True) / 127.0
        scale[scale == 0] = 1.0
        (dst / "cache" / f"{f.stem}.q.xz").write_bytes(lzma.compress(np.rint(v / scale).astype(np.int8).tobytes()))
        np.save(dst / "cache" / f"{f.stem}.scale.npy", scale.astype(np.float32))


def unpack(src: Path, dst: Path) -> None:
    (dst / "cache").mkdir(parents=True, exist_ok=True)
    meta = json.loads((src / "train.meta.json").read_text())
    arrays = {
        k: np.frombuffer(lzma.decompress((src / f"train.{k}.xz").read_bytes()), dtype=dt).reshape(shape)
        for k, (shape, dt) in meta.items()
    }
    np.savez(dst / "train.npz", **arrays)
    (dst / "train.json").write_bytes(lzma.decompress((src / "train.json.xz").read_bytes()))
    for s in HELDOUT:
        shutil.copy(src / f"heldout-{s}.npz", dst)
        (dst / f"heldout-{s}.json").write_bytes(lzma.decompress((src / f"heldout-{s}.json.xz").read_bytes()))
    for f in sorted((src / "cache").glob("*.q.xz")):
        stem = f.name[: -len(".q.xz")]
        scale = np.load(src / "cache" / f"{stem}.scale.npy")
        q = np.frombuffer(lzma.decompress(f.read_bytes()), dtype=np.int8).reshape(len(scale), -1)
        v = q.astype(np.float32) * scale
        v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        np.save(dst / "cache" / f"{stem}.npy", v.astype(np.float32))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=["pack", "unpack"])
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    args = ap.parse_args(argv)
    needed, kind = ("train.npz", "data cache") if args.action == "pack" else ("train.meta.json", "packed cache")
    if not (args.src / needed).is_file():
        ap.error(f"{args.src}: no {needed} here; not a {kind}")
    (pack if args.action == "pack" else unpack)(args.src, args.dst)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
