"""Contracts for text extractors. One method each; a new engine is one file + one registry line."""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from xmodal.errors import ModelError
from xmodal.media.audio import AudioClip
from xmodal.types import Segment


@dataclass(frozen=True)
class Word:
    text: str
    start: float
    end: float


class OcrEngine(ABC):
    name: ClassVar[str] = "ocr"
    version: str = ""

    @abstractmethod
    def read(self, image: Any) -> list[Segment]:
        """Return the text lines found in an RGB PIL image, in reading order."""

    def may_have_text(self, image: Any) -> bool:
        """A cheap first look: False when the picture surely holds no text worth reading (a
        photo is then not read at all). True (the default): always read."""
        return True


SILENCE_RMS = 10 ** (-60 / 20)  # -60 dBFS: quieter than any speech recording's loudest 50 ms
SecondsDone = Callable[[float, float], None]  # (seconds transcribed, seconds in the recording)


@dataclass(frozen=True)
class Transcript:
    words: list[Word]
    language: str | None = None  # ISO 639-1, where the engine detects it or was told it


class SpeechRecognizer(ABC):
    name: ClassVar[str] = "asr"
    version: str = ""

    @abstractmethod
    def transcribe(self, clip: AudioClip) -> list[Word]:
        """Return recognised words with start/end times in seconds."""

    def recognise(self, clip: AudioClip, progress: SecondsDone | None = None) -> Transcript:
        """The words and the language spoken; engines that work through a long recording in
        windows tell ``progress`` how far they are."""
        return Transcript(self.transcribe(clip))

    def describe(self) -> dict[str, Any]:
        """What makes the transcripts (engine, model, version, settings): saved in the manifest,
        so a collection knows when the installed recogniser would hear its recordings otherwise."""
        return {"engine": self.name, "version": self.version}


_OCR = {"rapidocr": "xmodal.extract.rapid:RapidOcrEngine"}
# speech engines: name -> factory(language); ``whisper:DIR`` -> factory(folder, language)
_ASR = {
    "whisper-tiny.en": "xmodal.extract.whisper:tiny_en",
    "whisper-base": "xmodal.extract.whisper:base",
    "pocketsphinx": "xmodal.extract.sphinx:english_only",
    "whisper:DIR": "xmodal.extract.whisper:from_folder",  # any local CTranslate2 Whisper folder
}


def _target(table: dict[str, str], name: str, what: str) -> Any:
    target = table.get(name)
    if target is None:
        raise ModelError(f"unknown {what} engine {name!r}; known: {', '.join(sorted(table))}")
    module, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except ImportError as exc:
        raise ModelError(f"{what} engine {name!r} is not installed: {exc}") from exc


def load_ocr(name: str) -> OcrEngine:
    engine: OcrEngine = _target(_OCR, name, "OCR")()
    return engine


def asr_names() -> list[str]:
    return list(_ASR)


def _whisper_folder(name: str) -> str | None:
    """The folder of a ``whisper:DIR`` name, else None."""
    return name[len("whisper:") :] if name.startswith("whisper:") and len(name) > len("whisper:") else None


def is_asr_name(name: str) -> bool:
    return name in _ASR or _whisper_folder(name) is not None


def load_asr(name: str, language: str | None = None) -> SpeechRecognizer:
    """A speech engine by name (see ``asr_names``); ``language`` (ISO 639-1) fixes the language
    spoken instead of detecting it."""
    folder = _whisper_folder(name)
    engine: SpeechRecognizer
    if folder is not None:
        engine = _target(_ASR, "whisper:DIR", "speech")(folder, language)
    else:
        engine = _target(_ASR, name, "speech")(language)
    return engine


def group_words(
    words: list[Word], max_seconds: float = 10.0, max_gap: float = 0.5, min_words: int = 4
) -> list[Segment]:
    """Group timed words into segments, breaking at pauses longer than ``max_gap`` or after
    ``max_seconds``. A group shorter than ``min_words`` joins its neighbour: one or two words
    alone carry too little meaning to embed."""
    groups: list[list[Word]] = []
    current: list[Word] = []
    for word in words:
        if current and (word.start - current[-1].end > max_gap or word.end - current[0].start > max_seconds):
            groups.append(current)
            current = []
        current.append(word)
    if current:
        groups.append(current)
    merged: list[list[Word]] = []
    for group in groups:
        short = merged and (len(group) < min_words or len(merged[-1]) < min_words)
        if short and group[-1].end - merged[-1][0].start <= max_seconds * 1.5:
            merged[-1] = merged[-1] + group
            continue
        merged.append(group)
    return [_segment(g) for g in merged]


def _segment(words: list[Word]) -> Segment:
    return Segment(" ".join(w.text for w in words), round(words[0].start, 2), round(words[-1].end, 2))
