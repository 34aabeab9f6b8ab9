"""Encode sound with FFmpeg (PyAV): the demo's voice memo (AAC in M4A) and the tests' phone and
web audio."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def encode_audio(path: Path, samples: Any, rate: int, codec: str, fmt: str | None = None, **options: str) -> Path:
    """Encode mono float samples into ``path``'s container: ``m4a``/AAC (``fmt="ipod"``),
    ``opus``, ``webm``, ``adts``, ``mp3``..."""
    import av
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w", format=fmt, options=options) as out:
        stream: Any = out.add_stream(codec, rate=rate, layout="mono")  # an AudioStream
        pcm = (np.clip(np.asarray(samples, dtype=np.float32), -1, 1) * 32767).astype(np.int16)
        for start in range(0, pcm.shape[0], 4096):
            frame = av.AudioFrame.from_ndarray(pcm[None, start : start + 4096], format="s16", layout="mono")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path
