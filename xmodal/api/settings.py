"""Server settings: one frozen object handed to :func:`xmodal.api.create_app`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServeSettings:
    collection: Path
    host: str = "127.0.0.1"
    port: int = 8000
    index_root: Path | None = None  # POST /index may only read under this folder (None: disabled)
    uploads_dir: Path | None = None  # default: <collection>/uploads
    max_upload_bytes: int = 50 * 1024 * 1024  # per request body
    max_files_per_upload: int = 100
    embedding_cache_size: int = 2048
    result_cache_size: int = 4096
    retention_days: float | None = None
    retention_interval_s: float = 3600.0
    preview_ttl_s: int = 3600
    thumbnail_px: int = 320
    metrics_public: bool = False  # False: /metrics needs an admin key

    def __post_init__(self) -> None:
        if self.retention_days is not None:  # a bad value must fail at startup, not in each pass
            from xmodal.access.retention import check_days

            check_days(self.retention_days)

    @property
    def upload_root(self) -> Path:
        return (self.uploads_dir or Path(self.collection) / "uploads").absolute()
