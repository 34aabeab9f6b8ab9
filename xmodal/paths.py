"""Where xmodal keeps what it makes once and reuses (joined model files, class vectors)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$XMODAL_CACHE_DIR``, else ``$XDG_CACHE_HOME/xmodal``, else ``~/.cache/xmodal``."""
    env = os.environ.get("XMODAL_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "xmodal"
