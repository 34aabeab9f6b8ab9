"""Safety limits for decoding untrusted files. Saved in the collection manifest."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class MediaLimits:
    max_file_bytes: int = 512 * 1024 * 1024
    max_image_pixels: int = 64_000_000  # 8000 x 8000; Pillow's own bomb check is 89M
    max_audio_seconds: float = 3600.0
    max_text_chars: int = 2_000_000
    max_pdf_pages: int = 5000

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MediaLimits:
        fields = cls.__dataclass_fields__
        return cls(**{k: type(getattr(cls(), k))(v) for k, v in data.items() if k in fields})
