"""Audio decoding to mono float32, with the duration checked from the header before reading."""

from __future__ import annotations

import io
import re
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xmodal.errors import MediaError, MediaTooLargeError, UnsupportedMediaError
from xmodal.media.detect import container_mime
from xmodal.media.limits import MediaLimits


@dataclass(frozen=True)
class AudioClip:
    samples: np.ndarray  # mono float32 in [-1, 1]
    sample_rate: int

    @property
    def duration(self) -> float:
        return float(self.samples.shape[0]) / float(self.sample_rate)

    def resampled(self, rate: int) -> AudioClip:
        if rate == self.sample_rate:
            return self
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(rate, self.sample_rate)
        out = resample_poly(self.samples, rate // g, self.sample_rate // g).astype(np.float32)
        return AudioClip(np.clip(out, -1.0, 1.0), rate)

    def to_pcm16(self) -> bytes:
        return (np.clip(self.samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


MAX_SAMPLE_RATE = 192_000
MAX_CHANNELS = 16
BLOCK_FRAMES = 1 << 18


def _check_duration(frames: int, rate: int, limits: MediaLimits, channels: int = 1) -> None:
    """Refuse from the header alone, before decoding: a small compressed file can claim hours of
    many-channel, high-rate audio (an audio decompression bomb)."""
    if rate <= 0:
        raise MediaError("invalid audio header (sample rate 0)")
    if rate > MAX_SAMPLE_RATE:
        raise MediaTooLargeError(f"audio sample rate {rate} Hz is above the limit of {MAX_SAMPLE_RATE} Hz")
    if not 1 <= channels <= MAX_CHANNELS:
        raise MediaTooLargeError(f"audio has {channels} channels; the limit is {MAX_CHANNELS}")
    if frames <= 0:
        raise MediaError("audio has no samples")
    seconds = frames / rate
    if seconds > limits.max_audio_seconds:
        raise MediaTooLargeError(
            f"audio is {duration_text(seconds)} long; the limit is {duration_text(limits.max_audio_seconds)}"
        )


def _read_wav(src: Path | io.BytesIO, limits: MediaLimits) -> AudioClip:
    with wave.open(str(src) if isinstance(src, Path) else src, "rb") as w:
        rate, channels, width, frames = w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()
        _check_duration(frames, rate, limits, channels)
        raw = w.readframes(frames)
    if width == 2:
        data = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    elif width == 1:
        data = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 4:
        data = np.frombuffer(raw, dtype="<i4").astype(np.float32) / 2147483648.0
    elif width == 3:
        b = np.frombuffer(raw[: len(raw) - len(raw) % 3], dtype=np.uint8).reshape(-1, 3)
        ints = b[:, 0].astype(np.int32) | (b[:, 1].astype(np.int32) << 8) | (b[:, 2].astype(np.int32) << 16)
        ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
        data = ints.astype(np.float32) / float(1 << 23)
    else:
        raise MediaError(f"unsupported WAV sample width {width}")
    usable = data.shape[0] - data.shape[0] % channels
    if usable <= 0:
        raise MediaError("audio has no samples (truncated file)")
    data = data[:usable].reshape(-1, channels).mean(axis=1)
    return AudioClip(np.ascontiguousarray(data, dtype=np.float32), rate)


def _read_soundfile(src: Path | io.BytesIO, limits: MediaLimits) -> AudioClip:
    try:
        import soundfile as sf
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise MediaError("decoding this audio format needs the soundfile package") from exc
    try:
        with sf.SoundFile(src if isinstance(src, io.BytesIO) else str(src)) as f:
            _check_duration(f.frames, f.samplerate, limits, f.channels)
            rate = f.samplerate
            # read in blocks and downmix as we go: memory stays at one mono copy
            parts = [block.mean(axis=1) for block in f.blocks(BLOCK_FRAMES, dtype="float32", always_2d=True)]
    except (RuntimeError, sf.LibsndfileError) as exc:  # type: ignore[attr-defined]
        # libsndfile names its source ("Error opening <_io.BytesIO object at 0x...>: ..."): the
        # reason is what a user needs, and a server must not echo its paths
        reason = re.sub(r"^Error opening .*?: ", "", str(exc).splitlines()[0])
        if "does not exist or is not a regular file" in reason:
            # libsndfile's words for data none of its decoders takes (a corrupt MP3, say): the
            # file is there, load_audio has just read its first bytes
            reason = "not audio data libsndfile can read (corrupt, or an unsupported format)"
        raise MediaError(f"cannot decode audio: {reason}") from exc
    data = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
    if data.shape[0] == 0:
        raise MediaError("audio has no samples")
    return AudioClip(np.ascontiguousarray(data, dtype=np.float32), int(rate))


def _read_av(src: Path | io.BytesIO, limits: MediaLimits) -> AudioClip:
    """Decode the first audio stream of a container to mono float32 at its own rate. The
    duration the header claims is checked before decoding, and the samples decoded are counted
    as they come (a header can lie). A file with pictures in motion is a video: not audio."""
    try:
        import av
    except ImportError as exc:  # pragma: no cover - faster-whisper depends on it
        raise MediaError("decoding this audio format needs PyAV: pip install av") from exc
    try:
        with av.open(src if isinstance(src, io.BytesIO) else str(src), mode="r", metadata_errors="ignore") as container:
            if any(_moving(v) for v in container.streams.video):
                raise UnsupportedMediaError("a video file (video is not indexed yet)")
            if not container.streams.audio:
                raise MediaError("no audio stream in this file")
            stream = container.streams.audio[0]
            rate = int(stream.rate or stream.codec_context.sample_rate or 0)
            claimed = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
            if claimed is None and container.duration:
                claimed = container.duration / 1_000_000
            _check_duration(int((claimed or 1.0) * rate) or 1, rate, limits, stream.channels or 1)
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            parts: list[np.ndarray] = []
            count, cap = 0, int(limits.max_audio_seconds * rate) + rate
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    block = out.to_ndarray().reshape(-1)
                    count += block.shape[0]
                    if count > cap:
                        raise MediaTooLargeError(
                            f"audio is longer than its header said, past the limit of "
                            f"{duration_text(limits.max_audio_seconds)}"
                        )
                    parts.append(block.astype(np.float32, copy=False))
    except MediaError:
        raise
    except (av.error.FFmpegError, ValueError, OSError, EOFError) as exc:  # type: ignore[attr-defined]
        raise MediaError(f"cannot decode audio: {_av_reason(exc)}") from exc
    if not parts:
        raise MediaError("audio has no samples")
    return AudioClip(np.ascontiguousarray(np.clip(np.concatenate(parts), -1.0, 1.0)), rate)


def _moving(stream: Any) -> bool:
    """A video stream, not the cover picture of a song or voice memo."""
    from av.stream import Disposition

    return not (stream.disposition & Disposition.attached_pic) and stream.codec_context.name not in ("mjpeg", "png")


def _av_reason(exc: BaseException) -> str:
    """FFmpeg's reason without the path it names (a server must not echo its paths)."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return re.sub(r":\s*'[^']*'$", "", re.sub(r"^\[Errno -?\d+\]\s*", "", text))


def load_audio(src: Path | bytes, limits: MediaLimits | None = None) -> AudioClip:
    """Decode WAV (stdlib), FLAC/OGG/MP3 (libsndfile) or MP4/M4A, WebM/Matroska, AAC and AMR
    (FFmpeg via PyAV) into a mono clip."""
    limits = limits or MediaLimits()
    source: Path | io.BytesIO = src if isinstance(src, Path) else io.BytesIO(src)
    try:
        if isinstance(source, Path):
            with open(source, "rb") as fh:
                head = fh.read(12)
        else:
            head = source.getvalue()[:12]
        if container_mime(head) is not None:  # formats libsndfile does not read
            return _read_av(source, limits)
        if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
            try:
                return _read_wav(source, limits)
            except wave.Error:
                if isinstance(source, io.BytesIO):
                    source.seek(0)
                return _read_soundfile(source, limits)  # e.g. float or extensible WAV
            except EOFError as exc:
                raise MediaError("truncated WAV file") from exc
        return _read_soundfile(source, limits)
    except MediaError:
        raise
    except PermissionError as exc:
        raise MediaError("permission denied") from exc
    except (OSError, ValueError, EOFError) as exc:
        raise MediaError(f"cannot decode audio: {exc}") from exc


def duration_text(seconds: float) -> str:
    """``45 s``, ``2 min 30 s``, ``3 h 5 min``: exact enough that a length over a limit never
    reads as equal to it."""
    total = int(seconds) + (seconds % 1 > 0)  # rounded up
    if total < 60:
        return f"{total} s"
    if total < 3600:
        minutes, rest = divmod(total, 60)
        return f"{minutes} min" + (f" {rest} s" if rest else "")
    hours, rest = divmod(total, 3600)
    minutes = -(-rest // 60)
    return f"{hours} h" + (f" {minutes} min" if minutes else "")


def split_points(samples: np.ndarray, rate: int, target: float = 30.0, slack: float = 5.0) -> list[tuple[int, int]]:
    """Cut long audio into ~``target``-second utterances at the quietest moment near each cut,
    so a word is rarely split and memory stays bounded for hour-long recordings."""
    n = samples.shape[0]
    if n <= int((target + slack) * rate):
        return [(0, n)]
    frame = rate // 20  # 50 ms
    cuts, start = [], 0
    while n - start > int((target + slack) * rate):
        lo, hi = start + int((target - slack) * rate), start + int((target + slack) * rate)
        window = samples[lo:hi]
        usable = window[: window.shape[0] // frame * frame].reshape(-1, frame)
        quietest = int(np.argmin((usable.astype(np.float64) ** 2).mean(axis=1)))
        cut = lo + quietest * frame + frame // 2
        cuts.append((start, cut))
        start = cut
    cuts.append((start, n))
    return cuts


def loudest_frame_rms(samples: np.ndarray, rate: int) -> float:
    """RMS of the loudest 50 ms frame (samples in [-1, 1])."""
    frame = rate // 20
    if samples.shape[0] < frame:
        return float(np.sqrt((samples.astype(np.float64) ** 2).mean())) if samples.shape[0] else 0.0
    usable = samples[: samples.shape[0] // frame * frame].reshape(-1, frame).astype(np.float64)
    return float(np.sqrt((usable**2).mean(axis=1).max()))
