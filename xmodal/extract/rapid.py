"""OCR with RapidOCR (PP-OCR ONNX models shipped inside the ``rapidocr`` wheel)."""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from xmodal.errors import MissingDependencyError
from xmodal.extract.base import OcrEngine
from xmodal.types import Segment

MIN_SCORE = 0.5


def is_plausible_text(text: str) -> bool:
    """OCR reads shapes in drawings as text: a lone "O" in a clock, "SSS" in steam, a CJK
    glyph in a wifi icon. Such lines would give every icon a text vector that short queries
    match, so a line needs two or more letters/digits that are not all the same character."""
    chars = [c for c in text if c.isalnum()]
    return len(chars) >= 2 and len(set(c.lower() for c in chars)) >= 2


class RapidOcrEngine(OcrEngine):
    name = "rapidocr"

    def __init__(self) -> None:
        try:
            from rapidocr import RapidOCR
        except ImportError as exc:
            raise MissingDependencyError("OCR needs rapidocr and onnxruntime: pip install xmodal") from exc
        logging.getLogger("RapidOCR").setLevel(logging.WARNING)
        self._engine = RapidOCR()
        logging.getLogger("RapidOCR").setLevel(logging.WARNING)
        try:
            self.version = f"rapidocr=={version('rapidocr')}"
        except PackageNotFoundError:
            self.version = "rapidocr"

    def read(self, image: Any) -> list[Segment]:
        arr = np.asarray(image.convert("RGB"))[:, :, ::-1]  # RapidOCR expects BGR like OpenCV
        result = self._engine(np.ascontiguousarray(arr))
        texts = getattr(result, "txts", None) or ()
        scores = getattr(result, "scores", None) or ()
        return [
            Segment(t.strip())
            for t, s in zip(texts, scores, strict=False)
            if s >= MIN_SCORE and is_plausible_text(t.strip())
        ]
