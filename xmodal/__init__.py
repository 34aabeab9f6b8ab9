"""xmodal: cross-modal retrieval. Importing this package loads no model and touches nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from xmodal.collection import Collection
    from xmodal.search import Query
    from xmodal.types import Hit, Item, Modality

__all__ = ["Collection", "Hit", "Item", "Modality", "Query", "__version__"]


def __getattr__(name: str) -> Any:  # lazy, so `import xmodal` stays cheap
    if name == "Collection":
        from xmodal.collection import Collection

        return Collection
    if name == "Query":
        from xmodal.search import Query

        return Query
    if name in ("Hit", "Item", "Modality"):
        from xmodal import types

        return getattr(types, name)
    raise AttributeError(name)
