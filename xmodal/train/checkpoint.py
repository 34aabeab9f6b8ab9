"""Write a model directory atomically: readers see the old complete model or the new one."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from xmodal.encoders.pictogram import CARD_FILE, CONFIG_FILE, WEIGHTS_FILE, PictogramConfig
from xmodal.errors import InvalidArgumentError


def check_out_dir(out: Path) -> None:
    """Refuse to overwrite a folder that holds anything but an earlier xmodal model."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / CARD_FILE).is_file())):
        raise InvalidArgumentError(f"{out}: exists and is not an xmodal model directory; choose another --out")


def save_model_dir(
    out: Path, state: dict[str, Any], cfg: PictogramConfig, card: dict[str, Any], log: list[dict[str, Any]]
) -> None:
    from safetensors.torch import save_file

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file({k: v.detach().contiguous().clone() for k, v in state.items()}, str(tmp / WEIGHTS_FILE))
    (tmp / CONFIG_FILE).write_text(json.dumps(cfg.to_dict(), indent=2), encoding="utf-8")
    (tmp / "training_log.json").write_text(json.dumps(log, indent=1), encoding="utf-8")
    (tmp / CARD_FILE).write_text(json.dumps(card, indent=2), encoding="utf-8")  # last: marks complete
    for f in tmp.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)
