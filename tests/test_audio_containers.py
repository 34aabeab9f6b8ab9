"""Phone and web audio (M4A/AAC voice memos, Opus, WebM, raw AAC, MP3 without ID3), decoded by
FFmpeg through PyAV, detected by content; videos and broken files are refused clearly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import write
from tests.media_makers import encode_audio, encode_video
from xmodal.errors import MediaError, MediaTooLargeError, UnsupportedMediaError
from xmodal.media.audio import load_audio
from xmodal.media.detect import detect_file
from xmodal.media.limits import MediaLimits
from xmodal.types import Modality

RATE = 16_000


def tone(seconds: float = 2.0, freq: float = 440.0, rate: int = RATE) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


FORMATS = [
    ("memo.m4a", "aac", "ipod", {}, "audio/mp4"),
    ("memo.mp4", "aac", "mp4", {}, "audio/mp4"),  # audio-only MP4 is audio
    ("note.opus", "libopus", "ogg", {}, "audio/ogg"),
    ("clip.webm", "libopus", "webm", {}, "audio/webm"),
    ("raw.aac", "aac", "adts", {}, "audio/aac"),
    ("bare.mp3", "mp3", "mp3", {"id3v2_version": "0", "write_xing": "0"}, "audio/mpeg"),
]


@pytest.mark.parametrize(("name", "codec", "fmt", "options", "mime"), FORMATS)
def test_containers_decode_to_the_same_sound(
    tmp_path: Path, name: str, codec: str, fmt: str, options: dict[str, str], mime: str
) -> None:
    rate = 48_000 if codec == "libopus" else RATE
    path = encode_audio(tmp_path / name, tone(2.0, rate=rate), rate, codec, fmt, **options)
    assert detect_file(path).modality is Modality.AUDIO and detect_file(path).mime == mime
    clip = load_audio(path)
    assert clip.sample_rate == rate
    assert abs(clip.duration - 2.0) < 0.15, clip.duration
    spectrum = np.abs(np.fft.rfft(clip.samples[rate // 4 : rate // 4 + rate]))
    assert abs(int(np.argmax(spectrum)) - 440) <= 2  # the tone, at 1 Hz per bin
    assert clip.samples.dtype == np.float32 and np.abs(clip.samples).max() <= 1.0


def test_a_lying_extension_is_read_by_content(tmp_path: Path) -> None:
    path = encode_audio(tmp_path / "memo.m4a", tone(), RATE, "aac", "ipod")
    lying = path.rename(tmp_path / "memo.wav")
    assert abs(load_audio(lying).duration - 2.0) < 0.15


def test_videos_are_not_audio(tmp_path: Path) -> None:
    video = encode_video(tmp_path / "v.mp4")
    with pytest.raises(UnsupportedMediaError, match="video"):
        load_audio(video)
    silent = encode_video(tmp_path / "silent.mp4", with_audio=False)
    with pytest.raises(UnsupportedMediaError, match="video"):
        load_audio(silent)


def test_broken_and_oversized_containers(tmp_path: Path) -> None:
    path = encode_audio(tmp_path / "memo.m4a", tone(3.0), RATE, "aac", "ipod")
    with pytest.raises(MediaTooLargeError, match="limit"):
        load_audio(path, MediaLimits(max_audio_seconds=1.0))
    truncated = tmp_path / "cut.m4a"
    truncated.write_bytes(path.read_bytes()[:300])
    with pytest.raises(MediaError) as err:
        load_audio(truncated)
    assert str(tmp_path) not in str(err.value)  # FFmpeg's reason, not our paths
    garbage = tmp_path / "noise.m4a"
    garbage.write_bytes(b"\0\0\0\x20ftypM4A " + bytes(range(256)) * 20)
    with pytest.raises(MediaError):
        load_audio(garbage)


def test_an_audio_folder_of_phone_formats_is_indexed(tmp_path: Path) -> None:
    from tests.conftest import FAKE_MODEL, BagOfWordsEncoder
    from xmodal.collection import Collection
    from xmodal.encoders.registry import EncoderRegistry

    media = tmp_path / "media"
    for name, codec, fmt, options, _ in FORMATS:
        rate = 48_000 if codec == "libopus" else RATE
        encode_audio(media / name, tone(1.0, rate=rate), rate, codec, fmt, **options)
    encode_video(media / "holiday.mp4")  # a video among them: skipped, as any non-media file
    encode_video(media / "fake.m4a")  # a video named as audio: a failure that says so
    (media / "cut.m4a").write_bytes((media / "memo.m4a").read_bytes()[:200])
    write(media / "note.txt", "a note")
    reg = EncoderRegistry()
    reg.register("bow", BagOfWordsEncoder)
    with Collection.open(tmp_path / "c", create=True, registry=reg, model=FAKE_MODEL) as coll:
        report = coll.add([media])
        assert report.added == len(FORMATS) + 1 and report.skipped == 1, report
        failed = dict((Path(p).name, why) for p, why in report.failures)
        assert set(failed) == {"fake.m4a", "cut.m4a"} and "video" in failed["fake.m4a"]
        durations = {i.metadata["name"]: i.metadata["duration"] for i in coll.items() if i.modality is Modality.AUDIO}
        assert all(abs(d - 1.0) < 0.15 for d in durations.values()), durations


@pytest.mark.slow
def test_a_voice_memo_is_heard(tmp_path: Path) -> None:
    import shutil
    import subprocess

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    wav = tmp_path / "s.wav"
    said = "The quarterly revenue grew in the northern region."
    subprocess.run(["espeak-ng", "-v", "en-us+m3", "-s", "130", "-w", str(wav), said], check=True)
    speech = load_audio(wav)
    memo = encode_audio(tmp_path / "memo.m4a", speech.samples, speech.sample_rate, "aac", "ipod")
    from xmodal.extract.base import load_asr

    words = " ".join(w.text for w in load_asr("whisper-tiny.en").transcribe(load_audio(memo))).lower()
    assert "quarterly revenue" in words and "region" in words
