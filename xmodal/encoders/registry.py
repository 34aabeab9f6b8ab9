"""Find encoders by spec: ``name`` or ``name:ref`` (ref = a local directory or hub id), or a path.

Built-in encoders register through the same door as plugins: the ``xmodal.encoders`` entry-point
group. Loaded encoders are cached per registry, so a process loads each model once; a model
directory rewritten since (a retrain into the same ``--out``) is loaded again by
:meth:`EncoderRegistry.reload_changed`, which a collection calls when its stored vectors no
longer match the cached model.
"""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Callable, Iterable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from xmodal.encoders.base import Encoder
from xmodal.errors import ModelError

EncoderFactory = Callable[[str | None], Encoder]

# name -> "module:attr"; the same table pyproject's entry points hold, so an editable checkout
# without installed metadata still finds them.
_BUILTINS: dict[str, str] = {
    "minilm": "xmodal.encoders.minilm:MiniLMEncoder",
    "clip": "xmodal.encoders.hf_clip:CLIPEncoder",
    "siglip": "xmodal.encoders.hf_clip:SigLIPEncoder",
    "clap": "xmodal.encoders.hf_clap:CLAPEncoder",
    "pictogram": "xmodal.encoders.pictogram:PictogramEncoder",
    "photo": "xmodal.encoders.photo:PhotoEncoder",
}

# transformers' config.json model_type -> encoder name
_HF_MODEL_TYPES = {"clip": "clip", "siglip": "siglip", "siglip2": "siglip", "clap": "clap"}

MODEL_CARD_FILE = "xmodal_encoder.json"


def _import(target: str) -> Any:
    module, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ModelError(f"encoder {target!r} could not be imported: {exc}") from exc


def split_spec(spec: str) -> tuple[str, str | None]:
    """``"clip:/models/clip"`` -> ("clip", "/models/clip"); a bare directory is inspected."""
    spec = spec.strip()
    if not spec:
        raise ModelError("empty encoder spec")
    path = Path(spec).expanduser()
    if path.is_dir():
        return _name_for_directory(path), str(path.resolve())
    name, sep, ref = spec.partition(":")
    return name.lower(), (ref if sep else None)


def _name_for_directory(path: Path) -> str:
    card = path / MODEL_CARD_FILE
    if card.is_file():
        try:
            return str(json.loads(card.read_text(encoding="utf-8"))["encoder"])
        except (ValueError, KeyError, OSError) as exc:
            raise ModelError(f"{card}: not a valid xmodal encoder card ({exc})") from exc
    config = path / "config.json"
    if config.is_file():
        try:
            model_type = str(json.loads(config.read_text(encoding="utf-8")).get("model_type", ""))
        except (ValueError, OSError) as exc:
            raise ModelError(f"{config}: unreadable ({exc})") from exc
        if model_type in _HF_MODEL_TYPES:
            return _HF_MODEL_TYPES[model_type]
        raise ModelError(f"{path}: model_type {model_type!r} is not one xmodal can load")
    raise ModelError(f"{path}: no {MODEL_CARD_FILE} or config.json; not a model directory")


class EncoderRegistry:
    def __init__(self) -> None:
        self._factories: dict[str, EncoderFactory] = {}
        self._cache: dict[tuple[str, str | None], Encoder] = {}
        self._stamps: dict[tuple[str, str | None], Stamp] = {}
        self._lock = threading.RLock()  # re-entrant: a factory may load the hub it is placed with
        self._entry_points_loaded = False

    def register(self, name: str, factory: EncoderFactory) -> None:
        self._factories[name.lower()] = factory

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(set(self._factories) | set(_BUILTINS))

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in entry_points(group="xmodal.encoders"):
            if ep.name not in self._factories and ep.name not in _BUILTINS:
                self._factories[ep.name] = _lazy(ep.value)

    def factory(self, name: str) -> EncoderFactory:
        if name in self._factories:
            return self._factories[name]
        if name in _BUILTINS:
            return _lazy(_BUILTINS[name])
        self._load_entry_points()
        if name in self._factories:
            return self._factories[name]
        raise ModelError(f"unknown encoder {name!r}; known: {', '.join(self.names())}")

    def modalities_of(self, spec: str) -> frozenset[Any]:
        """The modalities an encoder class declares, without loading its weights."""
        name, _ = split_spec(spec)
        target = _BUILTINS.get(name)
        if target is None and name not in self._factories:
            self._load_entry_points()
            for ep in entry_points(group="xmodal.encoders"):
                if ep.name == name:
                    target = ep.value
        if target is not None:
            return frozenset(_import(target).modalities)
        return frozenset(self.load(spec).modalities)

    def load(self, spec: str) -> Encoder:
        name, ref = split_spec(spec)
        key = (name, ref)
        with self._lock:
            if key not in self._cache:
                stamp = directory_stamp(ref)
                encoder = self.factory(name)(ref)
                if not isinstance(encoder, Encoder):
                    raise ModelError(f"encoder factory {name!r} did not return an Encoder")
                self._cache[key], self._stamps[key] = encoder, stamp
            return self._cache[key]

    def reload_changed(self, specs: Iterable[str]) -> bool:
        """Forget each cached encoder whose model directory's files changed since it loaded (the
        next :meth:`load` reads them again); True if any did. Never-loaded specs and models
        without a directory (the bundled ones, hub ids) are left alone."""
        changed = False
        for spec in specs:
            key = split_spec(spec)
            with self._lock:
                if key in self._cache and directory_stamp(key[1]) != self._stamps.get(key):
                    del self._cache[key], self._stamps[key]
                    changed = True
        return changed


Stamp = tuple[tuple[str, int, int, int], ...] | None


def directory_stamp(ref: str | None) -> Stamp:
    """Name, size, modification time and inode of each file in a model directory (not
    recursive; a retrain or a copy rewrites the top-level weights and config, the trainer by
    atomic rename: a new inode even within one mtime tick); None when ``ref`` is not one."""
    if ref is None:
        return None
    path = Path(ref)
    try:
        if not path.is_dir():
            return None
        stats = [(entry.name, entry.stat()) for entry in path.iterdir() if entry.is_file()]
    except OSError:
        return None
    return tuple(sorted((name, st.st_size, st.st_mtime_ns, st.st_ino) for name, st in stats))


def _lazy(target: str) -> EncoderFactory:
    def factory(ref: str | None) -> Encoder:
        cls = _import(target)
        return cls(ref) if ref is not None else cls()

    return factory


_default: EncoderRegistry | None = None


def default_registry() -> EncoderRegistry:
    """The process-wide registry (created on first use, never at import)."""
    global _default
    if _default is None:
        _default = EncoderRegistry()
    return _default
