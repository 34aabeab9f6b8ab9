"""Vector indexes: one contract (:class:`VectorIndex`), several engines behind it."""

from xmodal.index.base import IndexConfig, VectorIndex
from xmodal.index.registry import create_index, index_kinds, load_index

__all__ = ["IndexConfig", "VectorIndex", "create_index", "index_kinds", "load_index"]
