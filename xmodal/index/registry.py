"""Index backends by kind. A new backend is one module plus one line here (or an entry point
in the ``xmodal.indexes`` group)."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from pathlib import Path

from xmodal.errors import InvalidArgumentError, MissingDependencyError
from xmodal.index.base import IndexConfig, VectorIndex

_BUILTINS = {
    "flat": "xmodal.index.faiss_index:FaissFlatIndex",
    "hnsw": "xmodal.index.faiss_index:FaissHNSWIndex",
    "milvus": "xmodal.index.milvus_index:MilvusIndex",
}


def index_kinds() -> list[str]:
    extra = {ep.name for ep in entry_points(group="xmodal.indexes")}
    return sorted(set(_BUILTINS) | extra)


def index_class(kind: str) -> type[VectorIndex]:
    target = _BUILTINS.get(kind)
    if target is None:
        for ep in entry_points(group="xmodal.indexes"):
            if ep.name == kind:
                target = ep.value
                break
    if target is None:
        raise InvalidArgumentError(f"unknown index kind {kind!r}; known: {', '.join(index_kinds())}")
    module, _, attr = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except ImportError as exc:
        raise MissingDependencyError(f"index {kind!r} needs a library that is missing: {exc}") from exc
    return cls  # type: ignore[no-any-return]


def create_index(config: IndexConfig, dim: int, location: Path | None = None) -> VectorIndex:
    """A new, empty index. ``location`` is the directory it will be saved in; engines that
    store data in place (Milvus) keep it there from the start."""
    return index_class(config.kind)(dim, location=location, **config.params)


def load_index(config: IndexConfig, path: Path, dim: int) -> VectorIndex:
    return index_class(config.kind).load(path, dim, **config.params)
