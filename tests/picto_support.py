"""Tiny pictogram models and pictures for the pictogram tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from xmodal.encoders.pictogram import PictogramConfig


def icon(size: int = 64, mode: str = "RGB") -> Image.Image:
    img = Image.new("RGB", (size, size), "white")
    ImageDraw.Draw(img).polygon([(size // 2, 4), (4, size - 4), (size - 4, size - 4)], fill="black")
    return img.convert(mode) if mode != "RGB" else img


def tiny_model_dir(tmp_path: Path, gap_shift: bool = True) -> Path:
    import torch
    from safetensors.torch import save_file

    from xmodal.encoders.pictogram import build_network

    cfg = PictogramConfig.from_dict({"image_size": 16, "stages": [[4, 1], [8, 1]], "gap_shift": gap_shift})
    torch.manual_seed(0)
    net = build_network(cfg)
    if gap_shift:
        net[-1].gap.copy_(torch.full((384,), 0.01))
    d = tmp_path / "tiny"
    d.mkdir()
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(d / "model.safetensors"))
    (d / "config.json").write_text(json.dumps(cfg.to_dict()), encoding="utf-8")
    (d / "xmodal_encoder.json").write_text(json.dumps({"encoder": "pictogram", "version": "t"}), encoding="utf-8")
    return d


def pictures() -> list[Image.Image]:
    rng = np.random.default_rng(1)
    return [Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)) for _ in range(6)] + [icon()]
