"""Plain data types shared by every layer: modalities, items, hits."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar


class Modality(StrEnum):
    """What an item or a query is. Always explicit, never guessed from a Python type."""

    TEXT = "text"
    IMAGE = "image"
    AUDIO = "audio"

    @classmethod
    def parse(cls, value: str | Modality) -> Modality:
        return _parse_choice(cls, value, "modality")


class SearchMode(StrEnum):
    """How a query is matched: by meaning (vectors), by its words (BM25 over the text kept with
    the items), or both, their rankings fused."""

    DENSE = "dense"
    KEYWORD = "keyword"
    HYBRID = "hybrid"

    @classmethod
    def parse(cls, value: str | SearchMode | None) -> SearchMode:
        return cls.DENSE if value is None else _parse_choice(cls, value, "search mode")


_E = TypeVar("_E", bound=StrEnum)


def _parse_choice(cls: type[_E], value: Any, what: str) -> _E:
    """A member of ``cls`` from itself or its name in any case and spacing; else one clear
    :class:`InvalidArgumentError` listing the choices."""
    from xmodal.errors import InvalidArgumentError

    if isinstance(value, cls):
        return value
    try:
        return cls(str(value).strip().lower())
    except ValueError:
        names = ", ".join(m.value for m in cls)
        raise InvalidArgumentError(f"unknown {what} {value!r}; expected one of: {names}") from None


class VectorKind(StrEnum):
    """Where a vector came from. An item may carry several (its pixels, its OCR text, ...)."""

    TEXT = "text"  # a chunk of a text document
    OCR = "ocr"  # text recognised inside an image
    TRANSCRIPT = "transcript"  # a timed segment of speech
    IMAGE = "image"  # the image itself, from an image tower (drawings and icons: the pictogram tower)
    PHOTO = "photo"  # a photo, from the photo tower (ImageNet classes placed in the text space)
    AUDIO = "audio"  # the sound itself, from an audio tower
    # a picture's appearance (the photo backbone's features), for similar pictures and
    # near-duplicates: not in the shared space, so kept apart from the ANN index
    LOOK = "look"


@dataclass(frozen=True)
class Segment:
    """A piece of extracted text (or a picture's place), with its time span in seconds for
    audio and its page (from 1) for a PDF."""

    text: str
    start: float | None = None
    end: float | None = None
    page: int | None = None


@dataclass(frozen=True)
class Item:
    id: str
    uri: str
    modality: Modality
    content_hash: str
    size: int
    metadata: dict[str, Any]
    text: str
    created_at: float
    updated_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "uri": self.uri,
            "modality": self.modality.value,
            "content_hash": self.content_hash,
            "size": self.size,
            "metadata": self.metadata,
            "text": self.text,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class Hit:
    """One search result: an item and the best-matching part of it."""

    id: str
    uri: str
    modality: Modality
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)
    start: float | None = None
    end: float | None = None
    kind: VectorKind | None = None
    snippet: str | None = None
    page: int | None = None  # the PDF page that matched, from 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "uri": self.uri,
            "modality": self.modality.value,
            "score": round(float(self.score), 6),
            "metadata": self.metadata,
            "start": self.start,
            "end": self.end,
            "page": self.page,
            "matched": self.kind.value if self.kind else None,
            "snippet": self.snippet,
        }
