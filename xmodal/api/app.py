"""The app factory: one app per call, for one collection. No module-global app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from xmodal import __version__
from xmodal.api.http import BodyLimitMiddleware, install_error_handlers, install_request_metrics
from xmodal.api.routes import HeaderValue, install_routes, principal_of
from xmodal.api.service import Service
from xmodal.api.settings import ServeSettings
from xmodal.collection import Collection

log = logging.getLogger("xmodal.api")

# The page loads nothing from elsewhere; say so to the browser.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _static_dir() -> Path:
    return Path(str(resources.files("xmodal.api").joinpath("static")))


def _swagger_dir() -> Path | None:
    """Swagger UI's files from the ``swagger-ui-py`` package (found, not imported), so /docs
    works offline; it bundles Swagger UI 5, which reads FastAPI's OpenAPI 3.1."""
    import importlib.util

    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or spec.origin is None:
        return None
    static = Path(spec.origin).parent / "static"
    return static if (static / "swagger-ui-bundle.js").is_file() else None


def build_app(settings: ServeSettings, collection: Collection | None = None) -> FastAPI:
    owned = collection is None
    coll = collection if collection is not None else Collection.open(settings.collection)
    service = Service(settings, coll)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(service.warm_up)
        task = None
        if settings.retention_days:
            # the first pass ends before the first request, so nothing that expired while the
            # server was down is served; an `xmodal index` holding the write lock delays it
            done = False
            for _ in range(RETENTION_STARTUP_TRIES):
                if done := await _retention_pass(service):
                    break
                await asyncio.sleep(1.0)
            task = asyncio.create_task(_retention_loop(service, done))
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
            if service.close() and owned:  # not under a job that would not stop
                coll.close()

    app = FastAPI(
        title="xmodal",
        version=__version__,
        description="Cross-modal search: text, images and audio in one vector space.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.service = service
    install_error_handlers(app, service.metrics)
    install_request_metrics(app, service.metrics)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes)
    install_routes(app)
    _install_pages(app, service)
    return app


def _install_pages(app: FastAPI, service: Service) -> None:
    static = _static_dir()
    app.mount("/static", StaticFiles(directory=static), name="static")
    swagger = _swagger_dir()
    if swagger is not None:
        app.mount("/docs-assets", StaticFiles(directory=swagger), name="docs-assets")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(static / "index.html", media_type="text/html", headers=PAGE_HEADERS)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        if swagger is None:  # the bundle is in the 'serve' extra; without it, FastAPI's CDN page
            return get_swagger_ui_html(openapi_url="/openapi.json", title="xmodal API")
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="xmodal API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )

    @app.get("/healthz", summary="Liveness: the process serves requests")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    @app.get("/metrics", summary="Prometheus metrics (admin key unless the server makes them public)")
    async def metrics(
        request: Request,
        authorization: HeaderValue = None,
        x_api_key: HeaderValue = None,
    ) -> Response:
        if not service.settings.metrics_public:
            service.require_admin(principal_of(request, authorization, x_api_key), "read the metrics")
        body, ctype = await asyncio.to_thread(service.metrics.render)
        return Response(body, media_type=ctype)


RETENTION_STARTUP_TRIES = 30  # one a second
RETENTION_RETRY_S = 60.0


async def _retention_pass(service: Service) -> bool:
    try:
        done = await asyncio.to_thread(service.retention)
    except Exception as exc:
        log.error("retention pass failed (will retry): %s", exc)
        return False
    if done.get("items_deleted") or done.get("audit_entries_deleted"):
        log.info("retention: %s", done)
    return True


async def _retention_loop(service: Service, last_ok: bool) -> None:
    """Later passes: every ``retention_interval_s`` after one that worked, within a minute after
    one that failed (the first ran at startup)."""
    interval = service.settings.retention_interval_s
    while True:
        await asyncio.sleep(interval if last_ok else min(interval, RETENTION_RETRY_S))
        last_ok = await _retention_pass(service)
