"""Training pairs: RGBA pixels plus one or more captions per image.

Load from a JSONL of ``{"image": path, "text": str}`` lines (several lines may share an image:
they become extra captions), or from a folder where ``NAME.png`` has a caption sidecar
``NAME.txt`` (one caption per line). Every problem is reported with its line or file.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xmodal.errors import InvalidArgumentError, MediaError
from xmodal.jsonl import iter_jsonl

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"}


@dataclass
class PairSet:
    """``pixels`` (n, s, s, 4) uint8 RGBA; ``captions[i]`` the texts of image i; ``names[i]`` its id."""

    pixels: np.ndarray
    captions: list[list[str]]
    names: list[str]
    sources: list[str] | None = None

    def __len__(self) -> int:
        return len(self.captions)

    def subset(self, idx: Sequence[int] | np.ndarray) -> PairSet:
        idx = [int(i) for i in idx]
        return PairSet(
            self.pixels[idx],
            [self.captions[i] for i in idx],
            [self.names[i] for i in idx],
            [self.sources[i] for i in idx] if self.sources is not None else None,
        )

    def mono_mask(self) -> np.ndarray:
        """True for single-colour images (icons drawn in black): those get recoloured."""
        rgb = self.pixels[..., :3].astype(np.int16)
        alpha = self.pixels[..., 3] > 16
        spread = (rgb.max(axis=-1) - rgb.min(axis=-1)) * alpha
        dark = rgb.max(axis=-1) * alpha
        return (spread.reshape(len(self), -1).max(axis=1) < 24) & (dark.reshape(len(self), -1).max(axis=1) < 80)


def fit_content_rgba(pixels: np.ndarray, share: float) -> np.ndarray:
    """RGBA (n, s, s, 4): each drawing cropped to its visible box and re-centred to span
    ``share`` of the side: the training counterpart of ``PictogramConfig.fit_content``."""
    from PIL import Image

    out = np.zeros_like(pixels)
    side = pixels.shape[1]
    for i, px in enumerate(pixels):
        ys, xs = np.nonzero(px[..., 3] > 16)
        if len(ys) == 0:
            out[i] = px
            continue
        crop = Image.fromarray(px[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1], "RGBA")
        scale = share * side / max(crop.size)
        w, h = max(1, round(crop.size[0] * scale)), max(1, round(crop.size[1] * scale))
        canvas = Image.new("RGBA", (side, side), (255, 255, 255, 0))
        canvas.paste(crop.resize((w, h), Image.Resampling.LANCZOS), ((side - w) // 2, (side - h) // 2))
        out[i] = np.asarray(canvas, dtype=np.uint8)
    return out


def image_to_rgba(path: Path, size: int) -> np.ndarray:
    from PIL import Image

    from xmodal.media.image import load_image

    try:
        with Image.open(path) as probe:
            has_alpha = probe.mode in ("RGBA", "LA", "PA") or "transparency" in probe.info
            img = probe.convert("RGBA") if has_alpha else None
    except (OSError, ValueError) as exc:
        raise MediaError(f"{path}: not a readable image ({exc})") from exc
    if img is None:
        img = load_image(path).convert("RGBA")
    w, h = img.size
    if w != h:
        side = max(w, h)
        canvas = Image.new("RGBA", (side, side), (255, 255, 255, 0))
        canvas.paste(img, ((side - w) // 2, (side - h) // 2))
        img = canvas
    return np.asarray(img.resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8)


def load_pairs(path: Path, size: int = 48, warn=None) -> PairSet:  # type: ignore[no-untyped-def]
    """Read a PAIRS file or folder; problems become one-line InvalidArgumentError/warnings."""
    warn = warn or (lambda msg: print(f"warning: {msg}", file=sys.stderr))
    path = Path(path)
    if path.is_dir():
        table = _read_folder(path, warn)
    elif path.is_file():
        table = _read_jsonl(path, warn)
    else:
        raise InvalidArgumentError(f"{path}: no such PAIRS file or folder")
    if not table:
        raise InvalidArgumentError(f"{path}: no usable (image, text) pairs")
    if len(table) < 2:
        raise InvalidArgumentError(f"{path}: only one image; contrastive training needs at least 2 distinct images")
    names = sorted(table)
    pixels = np.stack([image_to_rgba(Path(n), size) for n in names])
    return PairSet(pixels, [table[n] for n in names], names)


def _add(table: dict[str, list[str]], image: Path, text: str, where: str, warn) -> None:  # type: ignore[no-untyped-def]
    text = " ".join(str(text).split())
    if not text:
        warn(f"{where}: empty caption, skipped")
        return
    if not image.is_file():
        warn(f"{where}: image {image} not found, skipped")
        return
    key = str(image.resolve())
    caps = table.setdefault(key, [])
    if text in caps:
        warn(f"{where}: duplicate pair ({image.name}, {text!r}), skipped")
        return
    caps.append(text)


def _read_jsonl(path: Path, warn) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    table: dict[str, list[str]] = {}
    for _, where, rec in iter_jsonl(path):
        if not isinstance(rec, dict) or not isinstance(rec.get("image"), str) or "text" not in rec:
            raise InvalidArgumentError(f'{where}: expected {{"image": path, "text": str}}')
        if not isinstance(rec["text"], str):
            raise InvalidArgumentError(f"{where}: 'text' must be a string")
        image = Path(rec["image"])
        if not image.is_absolute():
            image = path.parent / image
        _add(table, image, rec["text"], where, warn)
    return table


def _read_folder(path: Path, warn) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    table: dict[str, list[str]] = {}
    for image in sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        sidecar = image.with_suffix(".txt")
        if not sidecar.is_file():
            warn(f"{image.name}: no caption sidecar {sidecar.name}, skipped")
            continue
        try:
            lines = sidecar.read_bytes().decode("utf-8").splitlines()
        except UnicodeDecodeError:
            raise InvalidArgumentError(f"{sidecar}: not valid UTF-8") from None
        if not any(x.strip() for x in lines):
            warn(f"{sidecar.name}: empty caption, skipped")
            continue
        for i, text in enumerate(lines, start=1):
            if text.strip():
                _add(table, image, text, f"{sidecar.name} line {i}", warn)
    return table


def load_npz_pairs(npz: Path, meta: Path) -> PairSet:
    """The pictogram recipe's pre-rendered arrays (see scripts/build_pictogram_data.py)."""
    pixels = np.load(npz)["images"]
    items = json.loads(Path(meta).read_text(encoding="utf-8"))
    return PairSet(
        pixels,
        [list(x.get("captions", [x.get("query", "")])) for x in items],
        [f"{x['set']}:{x['name']}" for x in items],
        [x["set"] for x in items],
    )
