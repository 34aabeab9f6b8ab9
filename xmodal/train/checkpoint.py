"""Write a model directory atomically: readers see the old complete model or the new one."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from xmodal.encoders.pictogram import CARD_FILE, CONFIG_FILE, WEIGHTS_FILE, PictogramConfig
from xmodal.errors import InvalidArgumentError


def check_out_dir(out: Path) -> None:
    """Refuse to overwrite a folder that holds anything but an earlier xmodal model, and find out
    before training (not after it) that the model could not be written there."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / CARD_FILE).is_file())):
        raise InvalidArgumentError(f"{out}: exists and is not an xmodal model directory; choose another --out")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{out.name}.probe-", dir=out.parent):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InvalidArgumentError(f"{out}: cannot write the model there ({reason}); choose another --out") from None


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
    if not str(card.get("version") or "").strip():
        # no version given: name the weights by their content, so retraining into the same
        # folder gives a new version and collections indexed with the old weights see it
        card = {**card, "version": content_version(tmp)}
    (tmp / "training_log.json").write_text(json.dumps(log, indent=1), encoding="utf-8")
    (tmp / CARD_FILE).write_text(json.dumps(card, indent=2), encoding="utf-8")  # last: marks complete
    for f in tmp.iterdir():
        f.chmod(0o666 & ~_umask())  # readable by whoever may read the folder, like any other file
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def content_version(model_dir: Path) -> str:
    """``sha256-`` and 16 hex digits of the weights and config.json: equal only for equal vectors."""
    h = hashlib.sha256()
    for name in (WEIGHTS_FILE, CONFIG_FILE):
        with open(model_dir / name, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return f"sha256-{h.hexdigest()[:16]}"


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
