"""Preview URLs signed for one key (so ``<img>`` and ``<audio>`` tags can load them without
headers), and image thumbnails cached in the collection."""

from __future__ import annotations

import hashlib
import hmac
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from xmodal.errors import AuthError

PREVIEWS_DIR = "previews"


class PreviewSigner:
    def __init__(self, secret: bytes, ttl_s: int) -> None:
        self._secret = secret
        self.ttl_s = max(60, int(ttl_s))

    def _sig(self, item_id: str, key_id: str, exp: int) -> str:
        msg = f"{item_id}.{key_id}.{exp}".encode()
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()[:32]

    def url(self, item_id: str, key_id: str, now: float | None = None) -> str:
        # Expiry is rounded up to a 10-minute step so a page's URLs stay stable (browser caching).
        step = 600
        exp = int(((now or time.time()) + self.ttl_s) // step * step + step)
        return f"/items/{item_id}/preview?key={key_id}&exp={exp}&sig={self._sig(item_id, key_id, exp)}"

    def check(self, item_id: str, key_id: str, exp: str, sig: str) -> None:
        try:
            expires = int(exp)
        except ValueError:
            raise AuthError("malformed preview signature") from None
        if not sig.isascii():  # compare_digest raises TypeError on non-ASCII text
            raise AuthError("malformed preview signature")
        if not hmac.compare_digest(self._sig(item_id, key_id, expires), sig):
            raise AuthError("invalid preview signature")
        if expires < time.time():
            raise AuthError("this preview link has expired; search again")


def thumbnail(src: Path, dest_dir: Path, item_id: str, content_hash: str, size: int, limits: object) -> Path:
    """A JPEG thumbnail of an image file, made once per content version."""
    from xmodal.media.image import load_image
    from xmodal.media.limits import MediaLimits

    dest = dest_dir / f"{item_id}-{content_hash[:12]}.jpg"
    if not dest.is_file():
        image = load_image(src, limits if isinstance(limits, MediaLimits) else None)
        image.thumbnail((size, size))
        _save_preview(image, dest, item_id, content_hash)
    return dest


def page_thumbnail(src: Path, dest_dir: Path, item_id: str, content_hash: str, page: int, size: int) -> Path:
    """A JPEG of one page of a PDF, made once per content version and page."""
    from xmodal.media.pdf import render_page

    dest = dest_dir / f"{item_id}-{content_hash[:12]}-p{page}.jpg"
    if not dest.is_file():
        _save_preview(render_page(src, page, max_side=size), dest, item_id, content_hash)
    return dest


def _save_preview(image: Any, dest: Path, item_id: str, content_hash: str) -> None:
    """Write a JPEG preview into place and drop the previews of the item's earlier content
    versions. Concurrent requests for one preview each write their own temp file (not matched
    by the cleanup glob) and rename it into place; the last rename wins with identical content."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f"{item_id}-", suffix=".tmp", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            image.save(fh, format="JPEG", quality=85)
        tmp.replace(dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    for old in dest.parent.glob(f"{item_id}-*.jpg"):
        if not old.name.startswith(f"{item_id}-{content_hash[:12]}"):
            old.unlink(missing_ok=True)


def drop_previews(dest_dir: Path, item_id: str) -> None:
    for old in dest_dir.glob(f"{item_id}-*.jpg"):
        old.unlink(missing_ok=True)
