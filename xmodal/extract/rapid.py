"""OCR with RapidOCR (PP-OCR ONNX models shipped inside the ``rapidocr`` wheel)."""

from __future__ import annotations

import logging
import threading
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from xmodal.errors import MissingDependencyError
from xmodal.extract.base import OcrEngine
from xmodal.types import Segment

MIN_SCORE = 0.5
# Text detection at the picture's own size, huge pictures brought down to 960 px on their long
# side. RapidOCR's default (short side brought UP to 736 px) ran detection on a 128-px icon at
# 736 x 736 and on a 1004 x 268 scan at 2757 x 736: measured on the demo's 16 scans, word
# recall 1.000 both ways, 10x the pictures per second (BENCHMARKS.md, "OCR detection size").
DETECTION = {"Det.limit_type": "max", "Det.limit_side_len": 960}
QUICK_SIDE = 320  # a photo is read only when detection at this size finds a text-shaped box
QUICK_ASPECT, QUICK_SCORE = 1.5, 0.6


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
        self._engine = RapidOCR(params=DETECTION)
        self._lock = threading.Lock()
        logging.getLogger("RapidOCR").setLevel(logging.WARNING)
        try:
            self.version = f"rapidocr=={version('rapidocr')}:det-max-960"
        except PackageNotFoundError:
            self.version = "rapidocr:det-max-960"

    def may_have_text(self, image: Any) -> bool:
        """Text detection alone on the picture brought down to ``QUICK_SIDE`` px (about a
        tenth of the full read's time on a photo): a read only when it finds a box shaped like
        a line of text (at least 1.5 times as wide as high, score >= 0.6). On 78 real photos
        (bench_photos' set at 1024 px) 10 pass; a sign of one word passes."""
        small = image.convert("RGB")
        small.thumbnail((QUICK_SIDE, QUICK_SIDE))
        arr = np.ascontiguousarray(np.asarray(small)[:, :, ::-1])
        with self._lock:  # RapidOCR keeps the stages asked for until the next call says otherwise
            result = self._engine(arr, use_det=True, use_cls=False, use_rec=False)
        boxes = getattr(result, "boxes", None)
        if boxes is None:
            return False
        for quad, score in zip(boxes, getattr(result, "scores", None) or [], strict=False):
            width = float(np.linalg.norm(quad[1] - quad[0]))
            height = float(np.linalg.norm(quad[3] - quad[0]))
            if score >= QUICK_SCORE and width >= QUICK_ASPECT * max(height, 1.0):
                return True
        return False

    def read(self, image: Any) -> list[Segment]:
        arr = np.asarray(image.convert("RGB"))[:, :, ::-1]  # RapidOCR expects BGR like OpenCV
        with self._lock:
            result = self._engine(np.ascontiguousarray(arr), use_det=True, use_cls=True, use_rec=True)
        texts = getattr(result, "txts", None) or ()
        scores = getattr(result, "scores", None) or ()
        return [
            Segment(t.strip())
            for t, s in zip(texts, scores, strict=False)
            if s >= MIN_SCORE and is_plausible_text(t.strip())
        ]
