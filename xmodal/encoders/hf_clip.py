"""CLIP and SigLIP image+text encoders from Hugging Face ``transformers`` checkpoints.

A ref is a local model directory (``save_pretrained`` output) or a hub id; hub ids work offline
only when already cached. Preprocessing is the checkpoint's own processor, loaded from the same
place: its tokenizer (CLIP pads to the longest text, SigLIP to ``max_length`` as it was trained)
and its image processor (resize, crop, normalise).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from xmodal.encoders.base import Encoder
from xmodal.encoders.hf_common import (
    LoadedModel,
    call_features,
    jsonable,
    load_pretrained,
    processor_defaults,
    text_max_length,
)
from xmodal.errors import InvalidQueryError
from xmodal.types import Modality

_IMAGE_SETTINGS = (
    "do_resize",
    "size",
    "resample",
    "do_center_crop",
    "crop_size",
    "do_rescale",
    "rescale_factor",
    "do_normalize",
    "image_mean",
    "image_std",
    "do_convert_rgb",
)


class _ImageTextEncoder(Encoder):
    """Image and text towers of one contrastive checkpoint, sharing one space."""

    modalities = frozenset({Modality.TEXT, Modality.IMAGE})
    batch_size = 32
    default_ref: ClassVar[str] = ""
    model_types: ClassVar[frozenset[str]] = frozenset()
    # "longest" pads each batch to its longest text; "max_length" pads to a fixed length.
    default_text_padding: ClassVar[str] = "longest"

    def __init__(self, ref: str | None = None) -> None:
        loaded: LoadedModel = load_pretrained(ref or self.default_ref, self.name, self.model_types)
        self._model = loaded.model
        # Always call the processor itself, not its parts: processor classes carry their own
        # call defaults (Siglip2Processor: patch size, patch budget) on top of the saved configs.
        self._processor = loaded.processor
        self._image_processor = loaded.processor.image_processor
        self.ref = loaded.ref
        self.model_type = loaded.model_type
        self._processor_fingerprint = loaded.processor_fingerprint
        self.dim = self._projection_dim(loaded.model.config)
        self.space = f"{self.name}:{loaded.weights_fingerprint}"
        self.version = f"{loaded.model_type}-{loaded.weights_fingerprint};transformers=={loaded.transformers_version}"
        self.max_length = text_max_length(loaded.processor, loaded.model.config.text_config)
        defaults = processor_defaults(loaded.processor, "text_kwargs")
        self.text_padding = str(defaults.get("padding") or self.default_text_padding)
        self._image_defaults = processor_defaults(loaded.processor, "images_kwargs")

    @staticmethod
    def _projection_dim(config: Any) -> int:
        return int(config.projection_dim)

    def settings(self) -> dict[str, Any]:
        ip = self._image_processor
        image = {k: jsonable(getattr(ip, k)) for k in _IMAGE_SETTINGS if hasattr(ip, k)}
        return {
            "text_padding": self.text_padding,
            "text_max_length": self.max_length,
            "image": image,
            "image_call_defaults": jsonable(self._image_defaults),
            "processor_files": self._processor_fingerprint,
        }

    def encode_batch(self, modality: Modality, inputs: Sequence[Any]) -> np.ndarray:
        if modality is Modality.TEXT:
            return self._encode_text(list(inputs))
        if modality is Modality.IMAGE:
            return self._encode_images(list(inputs))
        raise InvalidQueryError(f"encoder {self.name!r} cannot encode {modality.value}")

    def _encode_text(self, texts: list[str]) -> np.ndarray:
        tokens = self._processor(
            text=texts,
            padding=self.text_padding,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        return call_features(self._model.get_text_features, tokens)

    def _encode_images(self, images: list[Any]) -> np.ndarray:
        pixels = self._processor(images=[im.convert("RGB") for im in images], return_tensors="pt")
        return call_features(self._model.get_image_features, pixels)


class CLIPEncoder(_ImageTextEncoder):
    name = "clip"
    default_ref = "openai/clip-vit-base-patch32"
    model_types = frozenset({"clip"})
    default_text_padding = "longest"


class SigLIPEncoder(_ImageTextEncoder):
    name = "siglip"
    default_ref = "google/siglip-base-patch16-224"
    model_types = frozenset({"siglip", "siglip2"})
    # SigLIP pools the last position, so it must see the fixed-length padding it was trained on.
    default_text_padding = "max_length"

    @staticmethod
    def _projection_dim(config: Any) -> int:
        text = config.text_config
        return int(getattr(text, "projection_size", None) or text.hidden_size)
