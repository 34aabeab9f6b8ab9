"""HTTP plumbing: the one place errors become responses, the request-size limit, and request
metrics."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from xmodal.api.metrics import Metrics
from xmodal.errors import XmodalError

log = logging.getLogger("xmodal.api")


def error_body(status: int, kind: str, message: str) -> dict[str, Any]:
    return {"error": {"status": status, "type": kind, "message": message}}


def _endpoint(request: Request) -> str:
    route = request.scope.get("route")
    return str(getattr(route, "path", "unmatched"))


def install_error_handlers(app: FastAPI, metrics: Metrics) -> None:
    """Every error is JSON ``{"error": {status, type, message}}``. A user's mistake is a 4xx from
    its class's ``http_status``; anything else is a logged 500 (a bug, never user input)."""

    def respond(
        request: Request, status: int, kind: str, message: str, extra: dict[str, str] | None = None
    ) -> JSONResponse:
        metrics.errors.labels(_endpoint(request), kind).inc()
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
        return JSONResponse(error_body(status, kind, message), status_code=status, headers={**headers, **(extra or {})})

    @app.exception_handler(XmodalError)
    async def xmodal_error(request: Request, exc: XmodalError) -> JSONResponse:
        return respond(request, exc.http_status, type(exc).__name__, str(exc), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors()[:5]:
            where = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        return respond(request, 400, "InvalidArgumentError", "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path[:200]}"
        return respond(request, exc.status_code, "HTTPError", message)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return respond(request, 500, "InternalError", "internal server error (this is a bug; see the server log)")


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` before they are parsed, whether the client
    announces the length or streams chunks."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_bytes
            except ValueError:
                await self._reject(send, 400, "invalid Content-Length header")
                return
            if too_big:
                await self._reject(send, 413, self._message(int(length)))
                return
            await self.app(scope, receive, send)
            return
        # No length announced: buffer up to the limit, then replay.
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.max_bytes:
                await self._reject(send, 413, self._message(total, at_least=True))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _message(self, size: int, at_least: bool = False) -> str:
        mib = 2**20
        got = f"{'over ' if at_least else ''}{size / mib:.1f} MiB"
        return f"request body is {got}; the limit is {self.max_bytes / mib:.1f} MiB"

    @staticmethod
    async def _reject(send: Send, status: int, message: str) -> None:
        kind = "MediaTooLargeError" if status == 413 else "InvalidArgumentError"
        body = json.dumps(error_body(status, kind, message)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


def install_request_metrics(app: FastAPI, metrics: Metrics) -> None:
    @app.middleware("http")
    async def observe(request: Request, call_next: Any) -> Any:
        started = time.perf_counter()
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        endpoint = _endpoint(request)
        metrics.requests.labels(endpoint, request.method).observe(time.perf_counter() - started)
        metrics.responses.labels(endpoint, request.method, str(response.status_code)).inc()
        return response
