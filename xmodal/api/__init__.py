"""The REST API and web page (``xmodal serve``). Importing this package does nothing; the app is
built by :func:`create_app`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from xmodal.api.settings import ServeSettings


def create_app(settings: ServeSettings, collection: Any = None) -> Any:
    """Build the FastAPI app for one collection (``collection`` reuses an open one)."""
    try:
        import fastapi  # noqa: F401
        import prometheus_client  # noqa: F401
        import python_multipart  # noqa: F401
    except ImportError as exc:
        from xmodal.errors import MissingDependencyError

        raise MissingDependencyError(f"serving needs the 'serve' extra: pip install 'xmodal[serve]' ({exc})") from exc
    from xmodal.api.app import build_app

    return build_app(settings, collection)
