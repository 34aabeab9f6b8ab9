"""Fine-tuning an adapter over an existing image encoder's features (``--base``), tested with a
tiny randomly initialised CLIP vision tower built here (nothing downloaded).

The base encoder is registered under a test name, the way a plugin would be; the trained adapter
directory records the base spec and loads it back through the registry.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_train import SHAPES, _cfg, draw

from xmodal.encoders import registry as registry_module
from xmodal.encoders.base import Encoder
from xmodal.encoders.pictogram import PictogramEncoder
from xmodal.encoders.registry import EncoderRegistry
from xmodal.types import Modality


class TinyCLIPImageEncoder(Encoder):
    """Image features of a CLIP vision tower with projection, random weights saved in ``ref``."""

    name = "tinyclip-image"
    modalities = frozenset({Modality.IMAGE})

    def __init__(self, ref: str) -> None:
        import torch
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

        path = Path(ref)
        if not (path / "config.json").is_file():
            torch.manual_seed(0)
            cfg = CLIPVisionConfig(
                hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                image_size=32, patch_size=8, projection_dim=24,
            )  # fmt: skip
            CLIPVisionModelWithProjection(cfg).save_pretrained(path)
        self.model = CLIPVisionModelWithProjection.from_pretrained(path).eval()
        self.ref, self.dim, self.space, self.version = ref, 24, "tinyclip", "test"

    def encode_batch(self, modality: Modality, inputs: Sequence[Any]) -> np.ndarray:
        import torch

        x = np.stack([np.asarray(im.convert("RGB").resize((32, 32)), np.float32) / 127.5 - 1 for im in inputs])
        with torch.inference_mode():
            return self.model(pixel_values=torch.from_numpy(x.transpose(0, 3, 1, 2))).image_embeds.numpy()


@pytest.fixture()
def tiny_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    registry = EncoderRegistry()  # this test's own process-wide registry, put back afterwards
    monkeypatch.setattr(registry_module, "_default", registry)
    registry.register("tinyclip-image", lambda ref: TinyCLIPImageEncoder(ref or str(tmp_path / "clip")))
    spec = f"tinyclip-image:{tmp_path / 'clip'}"
    return spec, registry.load(spec)


def test_adapter_over_tiny_clip_features(tmp_path: Path, tiny_base) -> None:  # type: ignore[no-untyped-def]
    from xmodal.encoders.minilm import MiniLMEncoder
    from xmodal.train.data import load_pairs
    from xmodal.train.trainer import train

    spec, base = tiny_base
    lines = []
    for shape in SHAPES:
        p = tmp_path / f"{shape.replace(' ', '_')}.png"
        draw(shape, (0, 0, 0)).save(p)
        lines.append(f'{{"image": "{p.name}", "text": "a {shape}"}}')
    (tmp_path / "pairs.jsonl").write_text("\n".join(lines) + "\n")
    pairs = load_pairs(tmp_path / "pairs.jsonl")
    out = tmp_path / "adapter"
    report = train(
        pairs,
        MiniLMEncoder(),
        out,
        _cfg(epochs=3, batch_size=4),
        base=base,
        base_spec=spec,
        log=lambda m: None,
    )
    assert report.best_epoch >= 1
    losses = [r["loss"] for r in report.epochs]
    assert all(np.isfinite(losses))
    enc = PictogramEncoder(str(out))
    assert enc.config.kind == "adapter" and enc.config.base == spec and enc.config.in_dim == 24
    img = draw("circle", (0, 0, 0)).convert("RGB")
    vec = enc.encode_images([img])
    assert vec.shape == (1, 384)
    # the adapter is applied to the base encoder's (unit) features
    import torch

    feats = torch.from_numpy(base.encode_images([img]))
    with torch.inference_mode():
        expected = torch.nn.functional.normalize(enc._net(feats), dim=1).numpy()
    assert np.allclose(vec, expected, atol=1e-5)
