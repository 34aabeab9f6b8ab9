"""Image decoding with the pixel count checked from the header before any pixel is decoded."""

from __future__ import annotations

import io
import math
import re
import warnings
from pathlib import Path
from typing import Any

from xmodal.errors import MediaError, MediaTooLargeError
from xmodal.media.limits import MediaLimits

# Decoders we accept; Pillow's others (EPS runs Ghostscript, PSD, FITS, ...) are not opened.
# HEIF (iPhone HEIC) comes from pillow-heif, AVIF from Pillow itself.
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "HEIF", "AVIF")


def load_image(src: Path | bytes, limits: MediaLimits | None = None):  # type: ignore[no-untyped-def]
    """Decode to an RGB ``PIL.Image``, turned upright as its EXIF orientation says; transparent
    areas become white. The EXIF block stays with it (``photo_metadata``)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    _register_heif()
    limits = limits or MediaLimits()
    fp = io.BytesIO(src) if isinstance(src, bytes) else src
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(fp, formats=IMAGE_FORMATS) as img:
                width, height = img.size
                if width <= 0 or height <= 0:
                    raise MediaError("image has no pixels")
                if width * height > limits.max_image_pixels:
                    raise MediaTooLargeError(
                        f"image is {width}x{height} pixels; the limit is {limits.max_image_pixels:,} pixels"
                    )
                img.load()
                return _to_rgb(ImageOps.exif_transpose(img) or img)
    except MediaError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaTooLargeError(
            f"image is over the limit of {limits.max_image_pixels:,} pixels (a decompression bomb)"
        ) from exc
    except UnidentifiedImageError as exc:
        raise MediaError("not a readable image") from exc
    except PermissionError as exc:
        raise MediaError("permission denied") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise MediaError(f"corrupt or truncated image: {exc}") from exc


def _to_rgb(img):  # type: ignore[no-untyped-def]
    from PIL import Image

    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


def _register_heif() -> None:
    try:
        from pillow_heif import register_heif_opener
    except ImportError:  # pragma: no cover - a core dependency; HEIC files then fail one by one
        return
    register_heif_opener()  # idempotent; not at import time (no import-time side effects)


def photo_metadata(img: Any) -> dict[str, Any]:
    """What a photo's EXIF says, as filterable metadata: ``taken`` (ISO 8601 text, so ranges
    like ``taken>=2024-06-01`` work), ``camera`` and ``gps_lat``/``gps_lon`` (signed degrees).
    Missing or malformed fields are left out."""
    try:
        exif = img.getexif()
    except Exception:  # a damaged EXIF block must not fail the picture
        return {}
    out: dict[str, Any] = {}
    try:
        when = exif.get_ifd(0x8769).get(0x9003) or exif.get(0x0132)  # DateTimeOriginal, DateTime
        found = _EXIF_TIME.match(str(when or "").strip("\x00 "))
        if found:
            y, mo, d, h, mi, sec = found.groups()
            out["taken"] = f"{y}-{mo}-{d}T{h}:{mi}:{sec}"
        make, model = (str(exif.get(t) or "").strip("\x00 ") for t in (0x010F, 0x0110))
        camera = model if make and model.lower().startswith(make.lower()) else f"{make} {model}".strip()
        if camera and camera.isprintable() and len(camera) <= 200:
            out["camera"] = camera
        gps = exif.get_ifd(0x8825)
        for key, ref_tag, value_tag, negative in (("gps_lat", 1, 2, "S"), ("gps_lon", 3, 4, "W")):
            degrees = _degrees(gps.get(value_tag))
            if degrees is not None:
                out[key] = round(-degrees if str(gps.get(ref_tag, "")).upper().startswith(negative) else degrees, 6)
    except (ValueError, TypeError, KeyError, ZeroDivisionError, AttributeError):
        return out
    return out


_EXIF_TIME = re.compile(r"^(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")


def _degrees(dms: Any) -> float | None:
    """EXIF (degrees, minutes, seconds) rationals as decimal degrees, within -180..180."""
    if not isinstance(dms, tuple | list) or len(dms) != 3:
        return None
    d, m, s = (float(x) for x in dms)
    value = d + m / 60 + s / 3600
    return value if math.isfinite(value) and 0 <= value <= 180 else None


PHOTO_FLATNESS = 0.70  # below this share of flat neighbours a picture is a photo
# up to this, a picture may be either (a product shot cut out on white, a shaded drawing): both
# towers see it. Measured (bench_photos t2i, bench_mixed_pictograms): Recall@10 of the default
# stack 0.58 -> 0.63 on photo cut-outs, the mixed pictogram figures unchanged
BOTH_FLATNESS = 0.82
_FLAT_STEP = 6  # two neighbours differing by at most this (summed over R, G, B) are flat


def flatness(img: Any) -> float:
    """The share of neighbouring pixels of equal colour (within a few levels) in a thumbnail of
    at most 64 px a side, box-filtered so that a scan's sensor noise and JPEG ringing average
    out: drawings, icons, emoji and pages are flat (0.76-0.96 on the demo's pictograms and
    scans), photos are not (0.07-0.58 on scikit-image's sample photos)."""
    return _flatness(_thumb(img, _flat_side(img)))


def picture_worlds(img: Any) -> tuple[str, ...]:
    """The worlds a picture belongs to, first the likelier: ``("photo",)`` (the photo tower),
    ``("drawing",)`` (the pictogram tower: drawings, icons, emoji, pages) or both, by a cheap
    look at its flatness (:func:`flatness`); a page -- mostly light, colourless paper, however
    dense its print -- is a drawing. Measured in bench/bench_photos.py."""
    page = _thumb(img, PAGE_SIDE)
    if _page_like(page):
        return ("drawing",)
    side = _flat_side(img)
    flat = _flatness(page if side == PAGE_SIDE else _thumb(img, side))  # one thumbnail serves both
    if flat < PHOTO_FLATNESS:
        return ("photo",)
    return ("drawing", "photo") if flat < BOTH_FLATNESS else ("drawing",)


def is_photo(img: Any) -> bool:
    """Whether a picture is likelier a photo than a drawing (:func:`picture_worlds`)."""
    return picture_worlds(img)[0] == "photo"


def looks_like_page(img: Any) -> bool:
    """Mostly light (over half the pixels above 190 of 255) and all but colourless (95 % of
    pixels within 24 levels between their channels): print on paper, a screenshot of text."""
    return _page_like(_thumb(img, PAGE_SIDE))


PAGE_SIDE = 64  # the thumbnail both looks are taken on


def _flat_side(img: Any) -> int:
    return max(2, min(PAGE_SIDE, img.width, img.height))


def _thumb(img: Any, side: int) -> Any:
    """A box-filtered ``side`` x ``side`` RGB thumbnail as int16 (the difference of two pixels
    fits)."""
    import numpy as np
    from PIL import Image

    rgb = img if img.mode == "RGB" else img.convert("RGB")
    return np.asarray(rgb.resize((side, side), Image.Resampling.BOX), dtype=np.int16)


def _flatness(a: Any) -> float:
    import numpy as np

    across = np.abs(np.diff(a, axis=1)).sum(axis=-1) <= _FLAT_STEP
    down = np.abs(np.diff(a, axis=0)).sum(axis=-1) <= _FLAT_STEP
    return float((across.sum() + down.sum()) / (across.size + down.size))


def _page_like(a: Any) -> bool:
    light = float((a.min(axis=-1) > 190).mean())
    grey = float(((a.max(axis=-1) - a.min(axis=-1)) <= 24).mean())
    return light > 0.5 and grey > 0.95
