"""Media detection and safe decoding, including the bad inputs of issue 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.media_makers import bomb_png, empty_wav, long_wav_header, png, wav
from xmodal.errors import MediaError, MediaTooLargeError, UnsupportedMediaError
from xmodal.media.audio import load_audio
from xmodal.media.detect import detect_file, sniff
from xmodal.media.image import load_image
from xmodal.media.limits import MediaLimits
from xmodal.media.text import chunk_words, decode_text
from xmodal.types import Modality


def test_detects_by_content_not_extension(tmp_path: Path) -> None:
    liar = png(tmp_path / "song.wav")
    assert detect_file(liar).modality is Modality.IMAGE
    sound = wav(tmp_path / "photo.jpg")
    assert detect_file(sound).modality is Modality.AUDIO
    (tmp_path / "notes.bin").write_text("plain words here", encoding="utf-8")
    assert detect_file(tmp_path / "notes.bin").modality is Modality.TEXT


def test_sniff_rejects_binary() -> None:
    assert sniff(bytes(range(256)) * 4) is None
    assert sniff(b"\x00\x01\x02garbage") is None


def test_utf16_text_is_not_taken_for_mpeg_audio() -> None:
    # a UTF-16 byte-order mark is also an MPEG audio frame sync (0xFFFx / 0xFFEx)
    for codec in ("utf-16", "utf-16-be", "utf-16-le"):
        bom = {"utf-16-be": b"\xfe\xff", "utf-16-le": b"\xff\xfe"}.get(codec, b"")
        found = sniff(bom + "budget approved, 会议 ключ\n".encode(codec))
        assert found is not None and found.modality is Modality.TEXT, codec
    random = np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes()
    found = sniff(b"\xff\xfe" + random)  # frame sync followed by data, not text
    assert found is not None and found.modality is Modality.AUDIO


def test_undecodable_audio_says_why_without_naming_a_buffer(tmp_path: Path) -> None:
    data = png(tmp_path / "x.png").read_bytes()
    for src in (data, tmp_path / "x.png"):
        with pytest.raises(MediaError) as err:
            load_audio(src)
        assert str(err.value).startswith("cannot decode audio: ")
        assert "BytesIO" not in str(err.value) and "Error opening" not in str(err.value)
    # an MP3 whose frames are garbage: libsndfile says the file "does not exist", which it does
    (tmp_path / "bad.mp3").write_bytes(b"ID3" + bytes(50) + b"garbage" * 100)
    for src in ((tmp_path / "bad.mp3").read_bytes(), tmp_path / "bad.mp3"):
        with pytest.raises(MediaError, match=r"^cannot decode audio: ") as err:
            load_audio(src)
        assert "does not exist" not in str(err.value)


def test_zero_byte_file(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(UnsupportedMediaError, match="empty"):
        detect_file(tmp_path / "empty.png")


def test_truncated_and_corrupt_images(tmp_path: Path) -> None:
    data = png(tmp_path / "ok.png", size=(300, 300)).read_bytes()
    (tmp_path / "trunc.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError):
        load_image(tmp_path / "trunc.png")
    (tmp_path / "corrupt.png").write_bytes(data[:16] + b"\xff" * 200)
    with pytest.raises(MediaError):
        load_image(tmp_path / "corrupt.png")
    with pytest.raises(MediaError):
        load_image(b"not an image at all")


def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    bomb = bomb_png(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 1_000_000
    with pytest.raises(MediaTooLargeError, match="over the limit of 64,000,000 pixels"):
        load_image(bomb)  # the limit given is ours, not Pillow's own bomb threshold


def test_durations_over_a_limit_never_read_as_equal_to_it() -> None:
    from xmodal.media.audio import duration_text

    assert [duration_text(s) for s in (0.2, 45, 120, 120.5, 150, 3600, 3661, 7200)] == [
        "1 s", "45 s", "2 min", "2 min 1 s", "2 min 30 s", "1 h", "1 h 2 min", "2 h",
    ]  # fmt: skip


def test_image_alpha_becomes_white(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGBA", (4, 4), (255, 0, 0, 0)).save(tmp_path / "clear.png")
    img = load_image(tmp_path / "clear.png")
    assert img.mode == "RGB" and img.getpixel((0, 0)) == (255, 255, 255)


def test_wav_zero_samples_and_two_hours(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="no samples"):
        load_audio(empty_wav(tmp_path / "empty.wav"))
    long = long_wav_header(tmp_path / "long.wav", seconds=2 * 3600)
    with pytest.raises(MediaTooLargeError, match="audio is 2 h long; the limit is 1 h"):
        load_audio(long)
    with pytest.raises(MediaError):
        load_audio(b"RIFF\x10\x00\x00\x00WAVEfmt ")


def test_wav_decodes_and_resamples(tmp_path: Path) -> None:
    clip = load_audio(wav(tmp_path / "a.wav", seconds=1.0, rate=22050))
    assert clip.sample_rate == 22050 and abs(clip.duration - 1.0) < 1e-3
    down = clip.resampled(16000)
    assert down.sample_rate == 16000 and abs(down.duration - 1.0) < 1e-2
    assert load_audio(wav(tmp_path / "b.wav"), MediaLimits(max_audio_seconds=10)).duration == pytest.approx(0.5)


def test_non_utf8_text_is_decoded() -> None:
    text, enc = decode_text("Café naïve — 10 €".encode("cp1252"))
    assert enc == "cp1252" and text == "Café naïve — 10 €"
    assert decode_text("ünïcode".encode())[1] == "utf-8"
    assert decode_text("\ufeffhi".encode("utf-16"))[0].strip("\ufeff") == "hi"


def test_chunking_overlaps() -> None:
    words = " ".join(f"w{i}" for i in range(300))
    chunks = chunk_words(words, max_words=100, overlap=20)
    assert chunks[0].split()[0] == "w0" and chunks[1].split()[0] == "w80"
    assert chunks[-1].split()[-1] == "w299"
    assert chunk_words("   \n ") == []


def test_audio_bombs_are_refused_from_the_header(tmp_path: Path) -> None:
    """A small compressed file may claim hours of many-channel, high-rate audio."""
    import numpy as np
    import soundfile as sf

    from xmodal.media.audio import MAX_SAMPLE_RATE

    path = tmp_path / "wide.flac"
    sf.write(path, np.zeros((1000, 2), dtype=np.float32), 16000)
    assert load_audio(path).duration == pytest.approx(1000 / 16000)
    with pytest.raises(MediaTooLargeError, match="sample rate"):
        load_audio(wav(tmp_path / "fast.wav", seconds=0.01, rate=MAX_SAMPLE_RATE * 2))
    many = tmp_path / "many.wav"
    sf.write(many, np.zeros((100, 32), dtype=np.float32), 8000, subtype="PCM_16")
    with pytest.raises(MediaTooLargeError, match="channels"):
        load_audio(many)


def test_only_plain_image_formats_are_decoded(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "pic.ico")  # a format Pillow reads but we do not
    with pytest.raises(MediaError):
        load_image(tmp_path / "pic.ico")
    assert load_image(png(tmp_path / "ok.png")).size == (64, 48)
