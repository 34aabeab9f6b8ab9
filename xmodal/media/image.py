"""Image decoding with the pixel count checked from the header before any pixel is decoded."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from xmodal.errors import MediaError, MediaTooLargeError
from xmodal.media.limits import MediaLimits

# Decoders we accept; Pillow's others (EPS runs Ghostscript, PSD, FITS, ...) are not opened.
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")


def load_image(src: Path | bytes, limits: MediaLimits | None = None):  # type: ignore[no-untyped-def]
    """Decode to an RGB ``PIL.Image``; transparent areas become white."""
    from PIL import Image, ImageOps, UnidentifiedImageError

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
