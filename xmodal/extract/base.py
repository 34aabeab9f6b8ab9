"""Contracts for text extractors. One method each; a new engine is one file + one registry line."""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
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


class SpeechRecognizer(ABC):
    name: ClassVar[str] = "asr"
    version: str = ""

    @abstractmethod
    def transcribe(self, clip: AudioClip) -> list[Word]:
        """Return recognised words with start/end times in seconds."""


_OCR = {"rapidocr": "xmodal.extract.rapid:RapidOcrEngine"}
_ASR = {"pocketsphinx": "xmodal.extract.sphinx:PocketSphinxRecognizer"}


def _load(table: dict[str, str], name: str, what: str) -> Any:
    target = table.get(name)
    if target is None:
        raise ModelError(f"unknown {what} engine {name!r}; known: {', '.join(sorted(table))}")
    module, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)()
    except ImportError as exc:
        raise ModelError(f"{what} engine {name!r} is not installed: {exc}") from exc


def load_ocr(name: str) -> OcrEngine:
    engine: OcrEngine = _load(_OCR, name, "OCR")
    return engine


def load_asr(name: str) -> SpeechRecognizer:
    engine: SpeechRecognizer = _load(_ASR, name, "speech")
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
