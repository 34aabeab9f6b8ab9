"""The encoder contract.

A backend implements one method, :meth:`Encoder.encode_batch`, and declares what it can do
(``modalities``, ``dim``, ``space``). Batching, normalisation and checks live here, once.

Inputs per modality:

* ``Modality.TEXT``: ``str``
* ``Modality.IMAGE``: ``PIL.Image.Image`` in RGB
* ``Modality.AUDIO``: :class:`xmodal.media.audio.AudioClip` (mono float32)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np

from xmodal.errors import InvalidQueryError, ModelError
from xmodal.types import Modality


@dataclass(frozen=True)
class EncoderInfo:
    """What made a set of vectors. Saved in the collection manifest."""

    name: str
    ref: str
    version: str
    dim: int
    space: str
    modalities: tuple[str, ...]
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EncoderInfo:
        return cls(
            name=str(data["name"]),
            ref=str(data.get("ref", "")),
            version=str(data["version"]),
            dim=int(data["dim"]),
            space=str(data["space"]),
            modalities=tuple(data.get("modalities", ())),
            settings=dict(data.get("settings", {})),
        )

    def same_vectors(self, other: EncoderInfo) -> bool:
        """True when both would produce the same vectors for the same input."""
        return (self.name, self.version, self.dim, self.space, self.settings) == (
            other.name,
            other.version,
            other.dim,
            other.space,
            other.settings,
        )


class Encoder(ABC):
    """Maps inputs of the declared modalities to unit vectors in one space.

    Subclasses set ``name`` (the registry name), ``modalities``; and in ``__init__`` the
    instance attributes ``dim``, ``space`` (an identifier shared by every tower trained to
    the same text hub: vectors from encoders with equal ``space`` can be compared) and
    ``version``.
    """

    name: ClassVar[str] = "encoder"
    modalities: ClassVar[frozenset[Modality]] = frozenset()
    batch_size: int = 32

    dim: int
    space: str
    version: str
    ref: str = ""

    @abstractmethod
    def encode_batch(self, modality: Modality, inputs: Sequence[Any]) -> np.ndarray:
        """Encode one batch of inputs of one modality: returns float array (len(inputs), dim)."""

    def settings(self) -> dict[str, Any]:
        """Settings that change the vectors (saved in the manifest)."""
        return {}

    # ---- derived -------------------------------------------------------------------------
    def supports(self, modality: Modality) -> bool:
        return modality in self.modalities

    def info(self) -> EncoderInfo:
        return EncoderInfo(
            name=self.name,
            ref=self.ref,
            version=self.version,
            dim=int(self.dim),
            space=self.space,
            modalities=tuple(sorted(m.value for m in self.modalities)),
            settings=self.settings(),
        )

    def encode(self, modality: Modality, inputs: Sequence[Any]) -> np.ndarray:
        """Encode any number of inputs in batches; returns L2-normalised float32 (n, dim)."""
        return self._encode_batches(modality, inputs, self.encode_batch)

    def _encode_batches(
        self, modality: Modality, inputs: Sequence[Any], encode_batch: Callable[[Modality, Sequence[Any]], np.ndarray]
    ) -> np.ndarray:
        """Checks, batching and normalisation around ``encode_batch`` (shared by ``encode`` and
        the ``encode_query`` of asymmetric encoders)."""
        if not self.supports(modality):
            raise InvalidQueryError(f"encoder {self.name!r} cannot encode {modality.value}")
        n = len(inputs)
        if n == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = []
        for start in range(0, n, max(1, self.batch_size)):
            batch = inputs[start : start + self.batch_size]
            out = np.asarray(encode_batch(modality, batch), dtype=np.float32)
            if out.shape != (len(batch), self.dim):
                raise ModelError(f"encoder {self.name!r} returned shape {out.shape}, expected {(len(batch), self.dim)}")
            parts.append(out)
        return l2_normalize(np.concatenate(parts, axis=0))

    def encode_query(self, modality: Modality, inputs: Sequence[Any]) -> np.ndarray:
        """Vectors for search queries. By default a query is encoded like an indexed item;
        asymmetric encoders (cf. sentence-transformers' ``encode_query``/``encode_document``)
        override this."""
        return self.encode(modality, inputs)

    def text_query_for_images(self, text_vectors: np.ndarray) -> np.ndarray | None:
        """An image tower's own vectors for text queries (rows of the text tower's unit vectors),
        used only to score this tower's picture vectors; None (the default): score pictures
        with the text vectors themselves."""
        return None

    def has_content(self, image: Any) -> bool:
        """False when a picture holds nothing this tower can tell apart (the pictogram tower: a
        single colour, no drawing). Such a picture gets no look vector -- it would be a hub
        that every query reaches -- and as a query it matches by its words only. True (the
        default) for every picture."""
        return True

    def looks(self, images: Sequence[Any]) -> np.ndarray | None:
        """Pictures' looks: unit appearance features of the tower's own size, for similar
        pictures and near-duplicates (kept out of the shared index); None (the default) from
        a tower that has none."""
        return None

    def encode_pictures(self, images: Sequence[Any]) -> tuple[np.ndarray, np.ndarray | None]:
        """Shared-space vectors and looks together (a tower that has both makes them in one
        pass)."""
        return self.encode_images(images), self.looks(images)

    def encode_query_pictures(self, images: Sequence[Any]) -> tuple[np.ndarray, np.ndarray | None]:
        """Query pictures' vectors (:meth:`encode_query`) and looks; a symmetric tower with
        looks makes both in one pass (it overrides this)."""
        return self.encode_query(Modality.IMAGE, list(images)), self.looks(images)

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode(Modality.TEXT, list(texts))

    def encode_images(self, images: Sequence[Any]) -> np.ndarray:
        return self.encode(Modality.IMAGE, list(images))

    def encode_audio(self, clips: Sequence[Any]) -> np.ndarray:
        return self.encode(Modality.AUDIO, list(clips))


def l2_normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if not np.all(np.isfinite(x)):
        raise ModelError("encoder produced non-finite values")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(x / norms, dtype=np.float32)
