from __future__ import annotations

import itertools
from pathlib import Path

from xmodal.extract.base import Word, group_words


def words(spec: list[tuple[str, float, float]]) -> list[Word]:
    return [Word(t, s, e) for t, s, e in spec]


def test_group_words_breaks_at_pauses_and_keeps_times() -> None:
    w = words([("one", 0, 0.3), ("two", 0.35, 0.6), ("three", 0.65, 0.9), ("four", 0.95, 1.2),
               ("five", 3.0, 3.3), ("six", 3.35, 3.6), ("seven", 3.65, 3.9), ("eight", 3.95, 4.2)])  # fmt: skip
    segs = group_words(w, max_seconds=10, max_gap=0.5, min_words=2)
    assert [s.text for s in segs] == ["one two three four", "five six seven eight"]
    assert (segs[1].start, segs[1].end) == (3.0, 4.2)


def test_short_fragments_join_a_neighbour() -> None:
    w = words([("the", 0, 0.2), ("cat", 1.0, 1.3), ("sat", 1.35, 1.6), ("down", 1.65, 1.9), ("here", 1.95, 2.2)])
    segs = group_words(w, max_seconds=10, max_gap=0.5, min_words=3)
    assert [s.text for s in segs] == ["the cat sat down here"]
    assert (segs[0].start, segs[0].end) == (0, 2.2)


def test_long_speech_is_split_by_duration() -> None:
    w = [Word(f"w{i}", i * 0.4, i * 0.4 + 0.3) for i in range(100)]
    segs = group_words(w, max_seconds=10, max_gap=0.5)
    assert len(segs) >= 4 and all(s.end - s.start <= 10.01 for s in segs)
    assert group_words([]) == []


def test_split_points_cut_long_audio_at_quiet_moments() -> None:
    import numpy as np

    from xmodal.media.audio import split_points

    rate = 16000
    loud = np.random.default_rng(0).uniform(-0.5, 0.5, rate * 100).astype(np.float32)
    loud[rate * 28 : rate * 28 + rate // 10] = 0.0  # a pause near the first cut
    cuts = split_points(loud, rate)
    assert cuts[0][0] == 0 and cuts[-1][1] == loud.shape[0]
    assert all(a[1] == b[0] for a, b in itertools.pairwise(cuts))
    assert rate * 28 <= cuts[0][1] <= rate * 28 + rate // 10
    assert all(25 * rate <= e - s <= 35 * rate for s, e in cuts[:-1])
    assert split_points(loud[: rate * 10], rate) == [(0, rate * 10)]


def test_ocr_noise_in_drawings_is_not_text() -> None:
    from xmodal.extract.rapid import is_plausible_text

    for noise in ("O", "8", "☆", "人", "SSS", "1111", " a ", ""):
        assert not is_plausible_text(noise), noise
    for text in ("OK", "100", "Invoice overdue", "A1", "日本"):
        assert is_plausible_text(text), text


def test_ocr_reads_no_text_in_icons_but_reads_words(tmp_path: Path) -> None:
    from importlib import resources

    from PIL import Image

    from tests.media_makers import text_image
    from xmodal.extract.rapid import RapidOcrEngine

    ocr = RapidOcrEngine()
    icons = resources.files("xmodal").joinpath("data/demo/pictograms/corpus")
    for name in ("bi-clock.png", "bi-gear.png", "bi-cup-hot.png", "fluent-emoji-flat-pizza.png"):
        with Image.open(icons.joinpath(name)) as img:  # type: ignore[arg-type]
            assert ocr.read(img.convert("RGB")) == [], name
    with Image.open(text_image(tmp_path / "t.png", "Garden party on Saturday")) as img:
        assert "garden" in " ".join(s.text for s in ocr.read(img)).lower()
