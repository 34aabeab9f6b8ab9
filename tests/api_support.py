"""Shared helpers for the API tests: a tiny deterministic encoder registered through the
registry (so no model loads), media made in temp dirs, and an app with keys for a few principals."""

from __future__ import annotations

import hashlib
import io
import re
import wave
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from xmodal.access.store import AccessStore
from xmodal.api import create_app
from xmodal.api.settings import ServeSettings
from xmodal.collection import Collection
from xmodal.config import ModelConfig
from xmodal.encoders.base import Encoder
from xmodal.encoders.registry import EncoderRegistry
from xmodal.types import Modality

DIM = 512
COLOUR_DIMS = 3


class FakeEncoder(Encoder):
    """Text: hashed bag of words. Image: its mean colour. Audio: its loudest frequency band.
    All in one 512-d space, so cross-modal ranking can be worked out by hand."""

    name = "fake"
    modalities = frozenset({Modality.TEXT, Modality.IMAGE, Modality.AUDIO})

    made = 0  # how many were ever constructed (models load once per process)

    def __init__(self) -> None:
        FakeEncoder.made += 1
        self.dim = DIM
        self.space = "fake-space"
        self.version = "1"

    @staticmethod
    def _bucket(token: str) -> int:
        return COLOUR_DIMS + int(hashlib.md5(token.encode()).hexdigest(), 16) % (DIM - COLOUR_DIMS)

    def encode_batch(self, modality: Modality, inputs: Sequence[Any]) -> np.ndarray:
        out = np.zeros((len(inputs), DIM), dtype=np.float32)
        for i, x in enumerate(inputs):
            if modality is Modality.TEXT:
                for word in re.findall(r"[a-z0-9]+", x.lower()):
                    out[i, self._bucket(word)] += 1.0
            elif modality is Modality.IMAGE:
                rgb = np.asarray(x, dtype=np.float32).reshape(-1, 3).mean(axis=0) / 255.0
                out[i, :COLOUR_DIMS] = rgb - 0.5
            else:
                spectrum = np.abs(np.fft.rfft(x.samples))
                freq = float(np.argmax(spectrum)) * x.sample_rate / max(1, x.samples.shape[0])
                out[i, self._bucket(f"tone{round(freq / 100)}")] = 1.0
            if not out[i].any():
                out[i, DIM - 1] = 1e-3
        return out


FAKE_MODEL = ModelConfig(text="fake", photo=None, image="fake", audio="fake", ocr=None, asr=None)


def fake_registry() -> EncoderRegistry:
    reg = EncoderRegistry()
    reg.register("fake", lambda ref: FakeEncoder())
    return reg


def png_bytes(colour: tuple[int, int, int], size: tuple[int, int] = (32, 32)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


def wav_bytes(freq: float, seconds: float = 0.5, rate: int = 16000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.5 * np.sin(2 * np.pi * freq * t) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return buf.getvalue()


def bomb_png() -> bytes:
    """A 1-bit 30000x30000 PNG: a few KB on disk, 900 M pixels decoded."""
    import struct
    import zlib

    width = height = 30000
    raw = zlib.compress(b"".join(b"\x00" + b"\x00" * (width // 8) for _ in range(height)), 9)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


@dataclass
class ApiEnv:
    client: TestClient
    coll: Collection
    keys: dict[str, str]  # principal -> key
    root: Path  # the index root for POST /index
    settings: ServeSettings

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}

    def upload(self, who: str, files: dict[str, bytes], access: str | None = None, **meta: Any) -> Any:
        import json

        data: dict[str, str] = {}
        if access is not None:
            data["access"] = access
        if meta:
            data["metadata"] = json.dumps(meta)
        parts = [("files", (name, content, "application/octet-stream")) for name, content in files.items()]
        return self.client.post("/items", headers=self.h(who), files=parts, data=data)


def make_env(tmp: Path, registry: EncoderRegistry | None = None, **settings_kw: Any) -> Iterator[ApiEnv]:
    reg = registry if registry is not None else fake_registry()
    coll = Collection.open(tmp / "coll", create=True, model=FAKE_MODEL, registry=reg)
    root = tmp / "shared"
    root.mkdir()
    store = AccessStore(coll.path)
    keys = {
        "admin": store.create_key("admin", admin=True)[0],
        "alice": store.create_key("alice", groups=["eng"])[0],
        "bob": store.create_key("bob", groups=["sales"])[0],
        "carol": store.create_key("carol", groups=["eng", "sales"])[0],
    }
    store.close()
    settings = ServeSettings(collection=coll.path, index_root=root, **settings_kw)
    app = create_app(settings, collection=coll)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield ApiEnv(client, coll, keys, root, settings)
    coll.close()


def make_env_with(tmp: Path, encoder: Encoder, **settings_kw: Any) -> Iterator[ApiEnv]:
    """An app whose "fake" model is this one encoder instance (a model loaded once per process)."""
    reg = EncoderRegistry()
    reg.register("fake", lambda ref: encoder)
    return make_env(tmp, registry=reg, **settings_kw)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ApiEnv]:
    yield from make_env(tmp_path)
