"""The HTTP endpoints: thin wrappers that parse the request and call :class:`Service`."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import unicodedata
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Request, Security
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.security import APIKeyHeader
from starlette.datastructures import UploadFile

from xmodal.access.principal import Principal, parse_access
from xmodal.api.service import SearchRequest, Service, check_item_id
from xmodal.errors import (
    ForbiddenError,
    InvalidArgumentError,
    InvalidQueryError,
    MediaError,
    NotFoundError,
    RangeNotSatisfiableError,
    UnsupportedMediaError,
)
from xmodal.media.detect import PDF_MIME
from xmodal.search import Query
from xmodal.types import Modality

_JSON_BODY = {"type": "object", "properties": {
    "text": {"type": "string"}, "k": {"type": "integer", "default": 10},
    "modality": {"type": "string", "enum": ["text", "image", "audio"]},
    "where": {"type": "object", "additionalProperties": True},
    "mode": {"type": "string", "enum": ["dense", "keyword", "hybrid"], "default": "dense"},
}}  # fmt: skip
_FORM_BODY = {"type": "object", "properties": {
    "text": {"type": "string"}, "image": {"type": "string", "format": "binary"},
    "audio": {"type": "string", "format": "binary"}, "k": {"type": "integer"},
    "modality": {"type": "string"}, "where": {"type": "string", "description": "JSON object"},
    "mode": {"type": "string", "enum": ["dense", "keyword", "hybrid"]},
}}  # fmt: skip
SEARCH_DOC = {"requestBody": {"content": {
    "application/json": {"schema": _JSON_BODY}, "multipart/form-data": {"schema": _FORM_BODY},
}}}  # fmt: skip
UPLOAD_DOC = {"requestBody": {"content": {"multipart/form-data": {"schema": {"type": "object", "properties": {
    "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
    "metadata": {"type": "string", "description": "JSON object applied to every file"},
    "access": {"type": "string", "description": "comma-separated: NAME, user:NAME, group:NAME or public"},
}}}}}}  # fmt: skip
MAX_NAME_BYTES = 150


HeaderValue = Annotated[str | None, Header(include_in_schema=False)]
# Declared as a security scheme so /docs offers "Authorize"; 'Authorization: Bearer' works too.
API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="a key from `xmodal keys create`")
ApiKeyValue = Annotated[str | None, Security(API_KEY_HEADER)]


def service_of(request: Request) -> Service:
    return request.app.state.service  # type: ignore[no-any-return]


def principal_of(
    request: Request,
    authorization: HeaderValue = None,
    x_api_key: ApiKeyValue = None,
) -> Principal:
    token = x_api_key
    if token is None and authorization:
        scheme, _, value = authorization.partition(" ")
        token = value.strip() if scheme.lower() == "bearer" else authorization
    return service_of(request).authenticate(token)


Auth = Annotated[Principal, Depends(principal_of)]


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(raw: str | bytes, what: str) -> Any:
    """JSON from a user, strict: deep nesting (RecursionError, not ValueError), NaN/Infinity
    (which no JSON response could carry back) and lone UTF-16 surrogates (which no file,
    database or tokenizer accepts) are the user's mistake, a 400, never a 500 later on."""
    try:
        value = json.loads(raw, parse_float=_finite, parse_constant=_no_constant)
        text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
        if _SURROGATE_ESCAPE.search(text):  # paired surrogates are fine; lone ones fail here
            json.dumps(value, ensure_ascii=False).encode("utf-8")
    except RecursionError:
        raise InvalidArgumentError(f"{what} is too deeply nested") from None
    except UnicodeEncodeError:
        raise InvalidArgumentError(f"{what} has an invalid \\u escape (a lone UTF-16 surrogate)") from None
    except ValueError as exc:
        raise InvalidArgumentError(f"malformed JSON in {what}: {exc}") from None
    return value


def _json_field(raw: Any, what: str) -> Any:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise InvalidArgumentError(f"{what} must be a JSON text field")
    return parse_json(raw, what)


def _int_field(raw: Any, what: str) -> Any:
    if raw is None or isinstance(raw, int):
        return raw
    try:
        return int(str(raw).strip())
    except ValueError:
        raise InvalidArgumentError(f"{what} must be a whole number, got {str(raw)[:40]!r}") from None


async def _read_json(request: Request) -> Any:
    return parse_json(await request.body(), "the request body")


def _content_kind(request: Request, allowed: tuple[str, ...]) -> str:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in allowed:
        raise UnsupportedMediaError(f"unsupported Content-Type {ctype or '(none)'!r}; send {' or '.join(allowed)}")
    return ctype


async def parse_search(request: Request) -> SearchRequest:
    kind = _content_kind(request, ("application/json", "multipart/form-data", "application/x-www-form-urlencoded"))
    if kind == "application/json":
        body = await _read_json(request)
        if not isinstance(body, dict):
            raise InvalidArgumentError('the JSON body must be an object like {"text": "...", "k": 10}')
        unknown = set(body) - {"text", "k", "modality", "where", "mode"}
        if unknown:
            raise InvalidArgumentError(f"unknown field {sorted(unknown)[0]!r}; expected text, k, modality, where, mode")
        text = body.get("text")
        if not isinstance(text, str):
            raise InvalidQueryError('give the query as "text": a string (or upload an image or audio file)')
        return SearchRequest(
            Query.text(text), body.get("k", 10), body.get("modality"), body.get("where"), body.get("mode")
        )
    form = await request.form()
    repeated = sorted(key for key in set(form.keys()) if len(form.getlist(key)) > 1)
    if repeated:  # which one was meant? (JSON cannot repeat a field either)
        raise InvalidArgumentError(f"the field {repeated[0]!r} is given more than once; send it once")
    queries: list[Query] = []
    text = form.get("text")
    if isinstance(text, str) and text.strip():
        queries.append(Query.text(text))
    for field, mod in (("image", Modality.IMAGE), ("audio", Modality.AUDIO), ("file", None)):
        upload = form.get(field)
        if isinstance(upload, UploadFile):
            data = await upload.read()
            queries.append(Query(mod or _sniff_modality(data), data=data))
    if len(queries) != 1:
        raise InvalidQueryError("give exactly one query: a 'text' field, or an 'image' or 'audio' file")
    k = _int_field(form.get("k"), "k")
    modality = form.get("modality")
    where = _json_field(form.get("where"), "where")
    mode = form.get("mode")
    return SearchRequest(
        queries[0],
        10 if k is None else k,
        modality if isinstance(modality, str) else None,
        where,
        mode if isinstance(mode, str) else None,
    )


def _sniff_modality(data: bytes) -> Modality:
    from xmodal.media.detect import sniff

    found = sniff(data[:4096])
    if found is None or found.modality is Modality.TEXT:
        raise UnsupportedMediaError("the uploaded query file is not an image or audio file")
    return found.modality


def build_router() -> APIRouter:
    r = APIRouter()

    @r.post("/search", openapi_extra=SEARCH_DOC, summary="Search by text, image or audio")
    async def search(request: Request, principal: Auth) -> dict[str, Any]:
        req = await parse_search(request)
        return await asyncio.to_thread(service_of(request).search, principal, req)

    @r.get("/search", summary="Search by text (query string)")
    async def search_get(
        request: Request, principal: Auth, q: str, k: int = 10, modality: str | None = None,
        where: str | None = None, mode: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        req = SearchRequest(Query.text(q), k, modality, _json_field(where, "where"), mode)
        return await asyncio.to_thread(service_of(request).search, principal, req)

    @r.get("/duplicates", summary="Groups of near-identical pictures (resized, recompressed, cropped, recoloured)")
    async def duplicates(request: Request, principal: Auth, threshold: str | None = None) -> dict[str, Any]:
        value = None
        if threshold is not None:
            try:
                value = float(threshold)
            except ValueError:
                raise InvalidArgumentError(f"threshold must be a number, got {threshold[:40]!r}") from None
        return await asyncio.to_thread(service_of(request).duplicates, principal, value)

    @r.get("/items/{item_id}", summary="An item's record")
    async def get_item(item_id: str, request: Request, principal: Auth) -> dict[str, Any]:
        return await asyncio.to_thread(service_of(request).item_dict, principal, item_id)

    @r.get("/items/{item_id}/preview", summary="Thumbnail (image), the audio itself (ranges), or the text")
    async def preview(
        item_id: str, request: Request, key: str | None = None, exp: str | None = None, sig: str | None = None,
        authorization: HeaderValue = None, x_api_key: HeaderValue = None, page: int | None = None,
    ) -> Response:  # fmt: skip
        svc = service_of(request)
        check_item_id(item_id)
        if key is not None and exp is not None and sig is not None:
            principal = svc.preview_principal(item_id, key, exp, sig)
        else:
            principal = principal_of(request, authorization, x_api_key)
        return await asyncio.to_thread(_preview_response, svc, principal, item_id, request.headers.get("range"), page)

    @r.post("/items", status_code=201, openapi_extra=UPLOAD_DOC, summary="Upload files (admin)")
    async def upload(request: Request, principal: Auth) -> dict[str, Any]:
        svc = service_of(request)
        svc.require_admin(principal)
        _content_kind(request, ("multipart/form-data",))
        form = await request.form(max_files=svc.settings.max_files_per_upload)
        files = [f for f in form.getlist("files") + form.getlist("file") if isinstance(f, UploadFile)]
        if not files:
            raise InvalidArgumentError("no files: send one or more 'files' parts")
        metadata = _json_field(form.get("metadata"), "metadata")
        access_raw = form.get("access")
        access = parse_access(access_raw) if isinstance(access_raw, str) and access_raw.strip() else None
        paths = [await _save_upload(svc, f) for f in files]
        try:
            await asyncio.to_thread(_check_files, svc, paths)
            return await asyncio.to_thread(svc.add_files, principal, paths, metadata, access)
        except BaseException:
            for p in paths:
                _discard(svc, p)
            raise

    @r.post("/index", status_code=201, summary="Index server-side paths under the index root (admin)")
    async def index_paths(request: Request, principal: Auth) -> Any:
        svc = service_of(request)
        svc.require_admin(principal)
        _content_kind(request, ("application/json",))
        body = await _read_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("paths"), list) or not body["paths"]:
            raise InvalidArgumentError(
                'send {"paths": ["folder/or/file", ...], "metadata": {}, "access": [...], "wait": true}'
            )
        unknown = set(body) - {"paths", "metadata", "access", "wait"}
        if unknown:
            raise InvalidArgumentError(f"unknown field {sorted(unknown)[0]!r}; expected paths, metadata, access, wait")
        wait = body.get("wait", True)
        if not isinstance(wait, bool):
            raise InvalidArgumentError('"wait" must be true (answer when done) or false (answer with a job at once)')
        raw_access = body.get("access")
        strings = isinstance(raw_access, list) and all(isinstance(a, str) for a in raw_access)
        if raw_access is not None and not (isinstance(raw_access, str) or strings):
            raise InvalidArgumentError('"access" must be a list of strings like ["group:eng", "user:ann", "public"]')
        files, refused = await asyncio.to_thread(resolve_index_paths, svc, body["paths"])
        access = parse_access(raw_access) if raw_access is not None else None
        if not wait:
            job = await asyncio.to_thread(svc.submit_index, principal, files, body.get("metadata"), access, refused)
            return JSONResponse(job.to_dict(), status_code=202, headers={"Location": f"/jobs/{job.id}"})
        return await asyncio.to_thread(svc.add_files, principal, files, body.get("metadata"), access, None, refused)

    @r.get("/jobs", summary="Index jobs, newest first (admin)")
    async def jobs(request: Request, principal: Auth) -> dict[str, Any]:
        return service_of(request).job_list(principal)

    @r.get("/jobs/{job_id}", summary="An index job: status, files done of total, result (admin)")
    async def job(job_id: str, request: Request, principal: Auth) -> dict[str, Any]:
        return service_of(request).job(principal, job_id)

    @r.delete("/jobs/{job_id}", summary="Stop an index job after the file in hand (admin)")
    async def cancel_job(job_id: str, request: Request, principal: Auth) -> dict[str, Any]:
        return await asyncio.to_thread(service_of(request).job, principal, job_id, True)

    @r.delete("/items/{item_id}", summary="Delete an item, its vectors, preview and cached results (admin)")
    async def delete_item(item_id: str, request: Request, principal: Auth) -> Any:
        return await asyncio.to_thread(service_of(request).delete_item, principal, item_id)

    @r.get("/me", summary="Who this key belongs to")
    async def me(principal: Auth) -> dict[str, Any]:
        return principal.to_dict()

    return r


def _preview_response(
    svc: Service, principal: Principal, item_id: str, byte_range: str | None = None, page: int | None = None
) -> Response:
    from xmodal.api.previews import page_thumbnail, thumbnail

    item = svc.visible_item(principal, item_id)
    if page is not None and item.metadata.get("mime") == PDF_MIME:  # that page, as a picture
        pages = int(item.metadata.get("pages") or 1)
        if not 1 <= page <= pages:
            raise InvalidArgumentError(f"page must be between 1 and {pages}, got {page}")
        try:
            shot = page_thumbnail(
                Path(item.uri), svc.previews_dir, item.id, item.content_hash, page, svc.settings.thumbnail_px * 2
            )
        except (MediaError, OSError) as exc:
            raise NotFoundError(f"no preview of page {page} of item {item_id!r}: {exc}") from None
        return FileResponse(shot, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=600"})
    if page is not None:
        raise InvalidArgumentError("page is for PDF items")
    if item.modality is Modality.TEXT:
        return PlainTextResponse(item.text[:20000])
    path = Path(item.uri)
    if not path.is_file():
        raise NotFoundError(f"the file of item {item_id!r} is no longer there")
    headers = {"Cache-Control": "private, max-age=600"}
    if item.modality is Modality.IMAGE:
        try:
            thumb = thumbnail(
                path, svc.previews_dir, item.id, item.content_hash, svc.settings.thumbnail_px, svc.coll.config.limits
            )
        except MediaError as exc:
            raise NotFoundError(f"no preview for item {item_id!r}: {exc}") from None
        check_range(byte_range, thumb.stat().st_size)
        return FileResponse(thumb, media_type="image/jpeg", headers=headers)
    mime = str(item.metadata.get("mime") or "application/octet-stream")
    check_range(byte_range, path.stat().st_size)
    return FileResponse(path, media_type=mime, headers=headers)  # Starlette serves Range requests


_RANGE_SPEC = re.compile(r"^(\d*)-(\d*)$")


def check_range(header: str | None, size: int) -> None:
    """Refuse a malformed or unsatisfiable ``Range`` header with the API's JSON errors (400,
    416) before Starlette serves the ranges (its own answers are plain text or empty)."""
    if header is None:
        return
    unit, _, specs = header.partition("=")
    if unit.strip().lower() != "bytes" or not specs.strip():
        raise InvalidArgumentError("Range header must be bytes=START-END[,...]")
    satisfiable = size > 0  # Starlette answers 416 if any one range is past the end
    for spec in specs.split(","):
        m = _RANGE_SPEC.match(spec.strip())
        if m is None or not (m.group(1) or m.group(2)) or len(spec) > 40:
            raise InvalidArgumentError(f"Range header: {spec.strip()[:40]!r} is not START-END, START- or -LAST")
        start, end = m.group(1), m.group(2)
        if start and end and int(start) > int(end):
            raise InvalidArgumentError(f"Range header: start {start} is after end {end}")
        satisfiable &= int(start) < size if start else int(end) > 0
    if not satisfiable:
        raise RangeNotSatisfiableError(f"Range header: the file has {size:,} bytes", size)


def safe_upload_name(filename: str | None) -> str:
    """The file name an upload is stored under: no folders; letters, marks and digits of any
    script (NFC) and ``._-`` stay, other runs become ``_``; a long name is cut in its stem (to
    MAX_NAME_BYTES of UTF-8) so the extension, which tells ingest what the file may be, survives."""
    base = unicodedata.normalize("NFC", (filename or "").replace("\\", "/").rsplit("/", 1)[-1])
    stem, dot, ext = base.rpartition(".")
    if not dot or not stem.strip("."):  # no extension, or a dot-file such as ".bashrc"
        stem, ext = base, ""
    ext = _keep_name_chars(ext, "").replace(".", "")[:16]
    suffix = f".{ext}" if ext else ""
    stem = _keep_name_chars(stem, "_").strip("._")
    stem = stem.encode()[: MAX_NAME_BYTES - len(suffix.encode())].decode(errors="ignore").rstrip("._")
    return (stem or "upload") + suffix


def _keep_name_chars(text: str, replacement: str) -> str:
    out: list[str] = []
    for ch in text:
        if unicodedata.category(ch)[0] in "LMN" or ch in "._-":
            out.append(ch)
        elif not out or out[-1] != replacement:
            out.append(replacement)
    return "".join(out)


async def _save_upload(svc: Service, upload: UploadFile) -> Path:
    data = await upload.read()
    name = safe_upload_name(upload.filename)
    folder = svc.settings.upload_root / hashlib.blake2b(data, digest_size=8).hexdigest()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


def _discard(svc: Service, path: Path) -> None:
    from xmodal.ingest import item_id_for

    with svc.lock:
        try:
            svc.coll.get(item_id_for(str(path.absolute())))
            return  # indexed (an earlier upload of the same file): keep it
        except NotFoundError:
            pass
    path.unlink(missing_ok=True)
    if path.parent != svc.settings.upload_root and path.parent.is_dir() and not any(path.parent.iterdir()):
        path.parent.rmdir()


def _check_files(svc: Service, paths: list[Path]) -> None:
    """Decode every upload within the collection's limits first: a bad file refuses the
    request (the first bad file's status: 415, 413, 422), nothing is indexed, and the message
    names every bad file so one retry can fix them all."""
    from xmodal.ingest import decode_file

    bad: list[tuple[Path, MediaError]] = []
    for path in paths:
        try:
            decode_file(path, svc.coll.config.limits)
        except MediaError as exc:
            bad.append((path, exc))
    if bad:
        reasons = "; ".join(f"{path.name}: {exc}" for path, exc in bad[:10])
        more = f"; and {len(bad) - 10} more" if len(bad) > 10 else ""
        lead = f"{len(bad)} of {len(paths)} files are not usable, nothing was indexed: " if len(paths) > 1 else ""
        raise type(bad[0][1])(f"{lead}{reasons}{more}")


def resolve_index_paths(svc: Service, raw_paths: list[Any]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files to index for ``POST /index``: every path must resolve (symbolic links included)
    inside the configured index root. Also what was found but cannot be indexed (a link out of
    the root, an unreadable folder, a broken link), with the reason, for the report."""
    from xmodal.ingest import WalkError, walk

    root_setting = svc.settings.index_root
    if root_setting is None:
        raise ForbiddenError("indexing server-side paths is disabled; start the server with --index-root DIR")
    root = root_setting.resolve()
    files: list[Path] = []
    refused: list[tuple[str, str]] = []
    seen: set[Path] = set()  # a path given twice, or a file inside a folder also given, once
    for raw in raw_paths:
        if not isinstance(raw, str) or not raw or "\x00" in raw or len(raw) > 4096:
            raise InvalidArgumentError("each path must be a non-empty string")
        try:  # a name too long for the file system, a folder the server may not read, ...
            candidate = (root / raw).resolve()
            if candidate != root and root not in candidate.parents:
                raise ForbiddenError(f"path {raw[:200]!r} is outside the index root")
            exists = candidate.exists()
        except OSError as exc:
            raise InvalidArgumentError(f"path {raw[:200]!r} cannot be used: {exc.strerror or exc}") from None
        if not exists:
            raise NotFoundError(f"no such file or folder under the index root: {raw[:200]!r}")
        for found in walk([candidate], within=root):  # links out of the root: not followed
            if isinstance(found, WalkError):
                refused.append((found.path, found.reason))
            elif found.path not in seen:
                seen.add(found.path)
                files.append(found.path)
    if not files:
        first = f" ({refused[0][0]}: {refused[0][1]})" if refused else ""
        raise InvalidArgumentError(f"no files found under the given paths{first}")
    if len(files) > 100_000:
        raise InvalidArgumentError("too many files in one request (limit 100,000)")
    return files, refused


def install_routes(app: FastAPI) -> None:
    app.include_router(build_router())
