"""Makers of real (and deliberately broken) media files for tests."""

from __future__ import annotations

import struct
import wave
import zlib
from pathlib import Path

import numpy as np


def png(path: Path, color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (64, 48)) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, format="PNG")
    return path


def text_image(path: Path, text: str) -> Path:
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.truetype("DejaVuSans.ttf", 32)
    except OSError:
        font = ImageFont.load_default(size=32)
    img = Image.new("RGB", (900, 120), "white")
    ImageDraw.Draw(img).text((20, 40), text, fill="black", font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def wav(path: Path, seconds: float = 0.5, rate: int = 16000, freq: float = 440.0) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    data = (0.3 * np.sin(2 * np.pi * freq * t) * 32767).astype("<i2")
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data.tobytes())
    return path


def empty_wav(path: Path) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"")
    return path


def long_wav_header(path: Path, seconds: float, rate: int = 16000) -> Path:
    """A WAV whose header declares ``seconds`` of audio, stored as a sparse file."""
    n_bytes = int(seconds * rate) * 2
    header = b"RIFF" + struct.pack("<I", 36 + n_bytes) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
    header += b"data" + struct.pack("<I", n_bytes)
    with open(path, "wb") as fh:
        fh.write(header)
        fh.truncate(len(header) + n_bytes)
    return path


def bomb_png(path: Path, width: int = 20000, height: int = 20000) -> Path:
    """A valid 1-bit PNG of width x height: ~50 KB on disk, 400 M pixels decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path
