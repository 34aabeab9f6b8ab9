"""Shared fixtures. The fake encoder is a real (if simple) model: hashed bag of words, so the
expected ranking of a query can be worked out by hand. It registers through the same door as
any plugin (``EncoderRegistry.register``)."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xmodal.collection import Collection
from xmodal.config import ModelConfig
from xmodal.encoders.base import Encoder
from xmodal.encoders.registry import EncoderRegistry
from xmodal.types import Modality

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# the tests talk to servers on loopback; a CI machine's HTTP(S)_PROXY must not catch that
os.environ["NO_PROXY"] = ",".join(filter(None, [os.environ.get("NO_PROXY", ""), "127.0.0.1,localhost"]))

BOW_DIM = 256


def bow_vector(text: str) -> np.ndarray:
    vec = np.zeros(BOW_DIM, dtype=np.float32)
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little")
        vec[h % BOW_DIM] += 1.0
    if not vec.any():
        vec[0] = 1e-3
    return vec


class BagOfWordsEncoder(Encoder):
    name = "bow"
    modalities = frozenset({Modality.TEXT})

    def __init__(self, ref: str | None = None) -> None:
        self.dim = BOW_DIM
        self.space = "bow-v1"
        self.version = "1"
        self.calls = 0

    def encode_batch(self, modality: Modality, inputs: Sequence[Any]) -> np.ndarray:
        self.calls += 1
        return np.stack([bow_vector(t) for t in inputs])


class BagOfWordsEncoderV2(BagOfWordsEncoder):
    """The same model at a later version: what an upgrade of an installed encoder looks like."""

    def __init__(self, ref: str | None = None) -> None:
        super().__init__(ref)
        self.version = "2"


class PixelEncoder(Encoder):
    """Image tower in the bow space: mean colour mapped to fixed words' buckets."""

    name = "pixels"
    modalities = frozenset({Modality.IMAGE})

    def __init__(self, ref: str | None = None) -> None:
        self.dim, self.space, self.version = BOW_DIM, "bow-v1", "1"

    def encode_batch(self, modality: Modality, inputs: Sequence[Any]) -> np.ndarray:
        out = []
        for img in inputs:
            r, g, b = np.asarray(img.convert("RGB"), dtype=np.float32).reshape(-1, 3).mean(axis=0)
            word = ["red", "green", "blue"][int(np.argmax([r, g, b]))]
            out.append(bow_vector(word))
        return np.stack(out)


@pytest.fixture
def registry() -> EncoderRegistry:
    reg = EncoderRegistry()
    reg.register("bow", BagOfWordsEncoder)
    reg.register("pixels", PixelEncoder)
    return reg


FAKE_MODEL = ModelConfig(text="bow", photo=None, image=None, ocr=None, asr=None)


@pytest.fixture
def open_collection(tmp_path: Path, registry: EncoderRegistry) -> Callable[..., Collection]:
    opened: list[Collection] = []

    def factory(path: Path | None = None, **kwargs: Any) -> Collection:
        kwargs.setdefault("model", FAKE_MODEL)
        kwargs.setdefault("create", True)
        coll = Collection.open(path or tmp_path / "coll", registry=registry, **kwargs)
        opened.append(coll)
        return coll

    yield factory
    for coll in opened:
        coll.close()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
