"""CLAP audio+text encoder from a Hugging Face ``transformers`` checkpoint.

Audio is resampled to the feature extractor's rate (48 kHz for the LAION checkpoints) and turned
into log-mel features by the checkpoint's own ``ClapFeatureExtractor``. That extractor draws
random crops for clips longer than its window and, in "fusion" mode, randomly flags one clip of
a batch as long; so each clip is featurised on its own under a fixed seed, which makes a clip's
vector independent of its batch and the same on every run.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from xmodal.encoders.base import Encoder
from xmodal.encoders.hf_common import LoadedModel, call_features, jsonable, load_pretrained, text_max_length
from xmodal.errors import InvalidQueryError, MediaError
from xmodal.types import Modality

CROP_SEED = 0
_AUDIO_SETTINGS = (
    "sampling_rate",
    "feature_size",
    "hop_length",
    "fft_window_size",
    "max_length_s",
    "frequency_min",
    "frequency_max",
    "top_db",
    "truncation",
    "padding",
)


@contextmanager
def _seeded_numpy(seed: int) -> Iterator[None]:
    """Seed numpy's global RNG (which the feature extractor uses) and restore it afterwards."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


class CLAPEncoder(Encoder):
    name = "clap"
    modalities = frozenset({Modality.TEXT, Modality.AUDIO})
    batch_size = 8
    default_ref = "laion/clap-htsat-unfused"

    def __init__(self, ref: str | None = None) -> None:
        loaded: LoadedModel = load_pretrained(ref or self.default_ref, self.name, frozenset({"clap"}))
        self._model = loaded.model
        self._tokenizer = loaded.processor.tokenizer
        self._features = loaded.processor.feature_extractor
        self.sample_rate = int(self._features.sampling_rate)
        self.ref = loaded.ref
        self.model_type = loaded.model_type
        self._processor_fingerprint = loaded.processor_fingerprint
        self.dim = int(loaded.model.config.projection_dim)
        self.space = f"{self.name}:{loaded.weights_fingerprint}"
        self.version = f"clap-{loaded.weights_fingerprint};transformers=={loaded.transformers_version}"
        text_config = loaded.model.config.text_config
        # RoBERTa positions start after the padding index, so two positions are never usable.
        offset = int(getattr(text_config, "pad_token_id", None) or 0) + 1
        self.max_length = text_max_length(loaded.processor, text_config, position_offset=offset)

    def settings(self) -> dict[str, Any]:
        fe = self._features
        audio = {k: jsonable(getattr(fe, k)) for k in _AUDIO_SETTINGS if hasattr(fe, k)}
        return {
            "text_padding": "longest",
            "text_max_length": self.max_length,
            "audio": audio,
            "crop_seed": CROP_SEED,
            "processor_files": self._processor_fingerprint,
        }

    def encode_batch(self, modality: Modality, inputs: Sequence[Any]) -> np.ndarray:
        if modality is Modality.TEXT:
            return self._encode_text(list(inputs))
        if modality is Modality.AUDIO:
            return self._encode_audio(list(inputs))
        raise InvalidQueryError(f"encoder {self.name!r} cannot encode {modality.value}")

    def _encode_text(self, texts: list[str]) -> np.ndarray:
        tokens = self._tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        return call_features(self._model.get_text_features, tokens)

    def audio_features(self, clip: Any) -> dict[str, Any]:
        """The extractor's features for one clip, after resampling to its rate (numpy arrays)."""
        if clip.samples.size == 0:
            raise MediaError("audio clip has no samples")
        resampled = clip.resampled(self.sample_rate)
        with _seeded_numpy(CROP_SEED):
            features = self._features(
                np.asarray(resampled.samples, dtype=np.float32),
                sampling_rate=self.sample_rate,
                return_tensors="np",
            )
        return dict(features)

    def _encode_audio(self, clips: list[Any]) -> np.ndarray:
        import torch

        parts = [self.audio_features(clip) for clip in clips]
        batch = {key: torch.from_numpy(np.concatenate([np.asarray(p[key]) for p in parts], axis=0)) for key in parts[0]}
        if "input_features" in batch:
            batch["input_features"] = batch["input_features"].to(torch.float32)
        return call_features(self._model.get_audio_features, batch)
