"""Makers of real (and deliberately broken) media files for tests."""

from __future__ import annotations

import struct
import wave
import zlib
from pathlib import Path
from typing import Any

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


def encode_audio(path: Path, samples: Any, rate: int, codec: str, fmt: str | None = None, **options: str) -> Path:
    from xmodal.media.audio_write import encode_audio as encode

    return encode(path, samples, rate, codec, fmt, **options)


def encode_video(path: Path, seconds: float = 1.0, fps: int = 10, with_audio: bool = True) -> Path:
    """A small H.264 MP4 (moving colours), with a tone as its audio track if asked."""
    import av
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w", format="mp4") as out:
        video = out.add_stream("h264", rate=fps)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = out.add_stream("aac", rate=16000, layout="mono") if with_audio else None
        for i in range(int(seconds * fps)):
            img = np.full((48, 64, 3), (i * 20) % 255, dtype=np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        if audio is not None:
            tone = (np.sin(np.arange(int(seconds * 16000)) / 16000 * 2 * np.pi * 440) * 8000).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(tone[None], format="s16", layout="mono")
            frame.sample_rate = 16000
            for packet in [*audio.encode(frame), *audio.encode(None)]:
                out.mux(packet)
    return path


def pdf_bytes(
    pages: list[list[str]], size: tuple[float, float] = (612, 792), javascript: bool = False, count: int | None = None
) -> bytes:
    from xmodal.media.pdf_write import text_pdf

    return text_pdf(pages, size, javascript=javascript, count=count)


def scanned_pdf(path: Path, texts: list[str]) -> Path:
    """An image-only PDF (no text layer): each text drawn on a page picture, as a scanner makes."""
    from PIL import Image, ImageDraw, ImageFont

    try:
        font: Any = ImageFont.truetype("DejaVuSans.ttf", 36)
    except OSError:
        font = ImageFont.load_default(36)
    pages = []
    for text in texts:
        page = Image.new("RGB", (1240, 1754), (252, 251, 247))
        ImageDraw.Draw(page).text((100, 200), text, fill=(20, 20, 20), font=font)
        pages.append(page)
    pages[0].save(path, "PDF", resolution=150, save_all=True, append_images=pages[1:])
    return path


W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
A_NS = "http://schemas.openxmlformats.org/drawingml/2006/main"
P_NS = "http://schemas.openxmlformats.org/presentationml/2006/main"


def docx(path: Path, paragraphs: list[str], pad: int = 0) -> Path:
    """A minimal Word file (the parts xmodal reads); ``pad`` spaces make a ZIP bomb of it."""
    import zipfile

    body = "".join(f"<w:p><w:r><w:t>{p}</w:t></w:r></w:p>" for p in paragraphs) + " " * pad
    xml = f'<?xml version="1.0"?><w:document xmlns:w="{W_NS}"><w:body>{body}</w:body></w:document>'
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", xml)
    return path


def pptx(path: Path, slides: list[list[str]]) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("ppt/presentation.xml", f'<p:presentation xmlns:p="{P_NS}"/>')
        for n, lines in enumerate(slides, 1):
            paras = "".join(f"<a:p><a:r><a:t>{line}</a:t></a:r></a:p>" for line in lines)
            z.writestr(
                f"ppt/slides/slide{n}.xml",
                f'<p:sld xmlns:p="{P_NS}" xmlns:a="{A_NS}"><p:cSld><p:spTree><p:sp><p:txBody>{paras}'
                "</p:txBody></p:sp></p:spTree></p:cSld></p:sld>",
            )
    return path


def odt(path: Path, heading: str, paragraphs: list[str]) -> Path:
    import zipfile

    ns = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
    office = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
    paras = "".join(f"<text:p>{p} <text:span>too</text:span>.</text:p>" for p in paragraphs)
    body = f"<text:h>{heading}</text:h>{paras}"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.text")  # stored first, as ODF requires
        z.writestr(
            "content.xml",
            f'<office:document-content xmlns:office="{office}" xmlns:text="{ns}"><office:body><office:text>'
            f"{body}</office:text></office:body></office:document-content>",
            compress_type=zipfile.ZIP_DEFLATED,
        )
    return path
