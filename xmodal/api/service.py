"""What the server does, without HTTP: search with access control and caches, item reads,
ingest and delete, audit. The FastAPI routes are thin wrappers around this."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xmodal.access.audit import AuditLog
from xmodal.access.principal import Principal
from xmodal.access.retention import apply_retention, remove_items
from xmodal.access.store import AccessStore
from xmodal.api.cache import LRUCache
from xmodal.api.jobs import Job, JobQueue
from xmodal.api.metrics import Metrics
from xmodal.api.previews import PREVIEWS_DIR, PreviewSigner
from xmodal.api.settings import ServeSettings
from xmodal.catalog import check_metadata
from xmodal.collection import Collection
from xmodal.duplicates import DEFAULT_THRESHOLD
from xmodal.errors import (
    AuthError,
    CollectionBusyError,
    ForbiddenError,
    InvalidArgumentError,
    InvalidQueryError,
    NotFoundError,
)
from xmodal.ingest import IngestReport, NullProgress, Progress
from xmodal.search import MAX_QUERY_CHARS, Query, SearchPipeline, keyword_match, normalise_where, validate_k
from xmodal.types import Hit, Item, Modality, SearchMode

ITEM_ID = re.compile(r"^[0-9a-f]{16}$")
MAX_CACHED_K = 100
JOB_STOP_WAIT_S = 900.0  # at shutdown, for a job to reach the end of the file in hand
JOB_LOCK_POLL_S = 0.5  # how often a job waiting for another writer tries again


def check_item_id(item_id: str) -> str:
    if not isinstance(item_id, str) or not ITEM_ID.match(item_id):
        raise InvalidArgumentError("item ids are 16 lowercase hex characters")
    return item_id


@dataclass(frozen=True)
class Visibility:
    """What one principal may see at one index/ACL version: item ids (None: everything) and the
    metadata fields of those items (so an unknown-field error reveals nothing about others)."""

    ids: frozenset[str] | None
    fields: frozenset[str]
    # Changes when, and only when, an item this principal may see is added, changed, removed,
    # granted or withdrawn. Result-cache keys use it instead of the global index generation, so
    # a write to items someone cannot see does not even change whether their query is cached.
    digest: str = ""


@dataclass(frozen=True)
class SearchRequest:
    query: Query
    k: Any = 10
    modality: str | None = None
    where: dict[str, Any] | None = None
    mode: Any = None  # dense (default), keyword or hybrid


class Service:
    def __init__(self, settings: ServeSettings, coll: Collection) -> None:
        self.settings = settings
        self.coll = coll
        self.store = AccessStore(coll.path)
        self.audit = AuditLog(coll.path)
        self.signer = PreviewSigner(self.store.secret("previews"), settings.preview_ttl_s)
        self.embeddings = LRUCache(settings.embedding_cache_size)
        self.results = LRUCache(settings.result_cache_size)
        self.visibility_cache = LRUCache(256)
        # One catalog connection and one index: reads and writes of the collection take turns.
        self.lock = threading.RLock()
        # Tokenizers, OCR and ASR decoders are not safe to call from several threads at once:
        # every call into them (query encoding, ingest) holds this. Order: lock, then encode_lock.
        self.encode_lock = threading.Lock()
        self.metrics = Metrics(self.gauges)
        self.jobs = JobQueue()
        self.previews_dir = coll.path / PREVIEWS_DIR

    def warm_up(self) -> None:
        """Load the models once, at start, rather than in the first user's request."""
        with self.lock, self.encode_lock:
            self.coll.search(Query.text("warm up"), k=1)

    def gauges(self) -> dict[str, float]:
        with self.lock:
            stats = {"index_items": float(len(self.coll)), "index_vectors": float(len(self.coll.index))}
        stats["embedding_cache_hit_ratio"] = self.embeddings.hit_rate
        stats["result_cache_hit_ratio"] = self.results.hit_rate
        stats["result_cache_entries"] = float(len(self.results))
        return stats

    # ---- access -----------------------------------------------------------------------------
    def authenticate(self, token: str | None) -> Principal:
        return self.store.authenticate(token)

    @staticmethod
    def require_admin(principal: Principal, action: str = "change the index") -> None:
        if not principal.admin:
            raise ForbiddenError(f"principal {principal.name!r} is not an admin; only admins may {action}")

    def _versions(self) -> tuple[int, int, bool]:
        return self.coll.catalog.generation, self.store.acl_version, self.store.default_public

    def visibility(self, principal: Principal, versions: tuple[int, int, bool]) -> Visibility:
        """Call with ``self.lock`` held."""
        key = (principal.cache_key, versions)
        found = self.visibility_cache.get(key)
        if found is not None:
            return found  # type: ignore[no-any-return]
        acls = self.store.all_acls()
        ids: set[str] = set()
        fields: set[str] = set()
        digest = hashlib.blake2b(digest_size=16)
        for item in self.coll.items():  # ordered by uri
            if principal.admin or self.store.may_see(principal, acls.get(item.id)):
                ids.add(item.id)
                fields.update(item.metadata)
                digest.update(f"{item.id}:{item.content_hash}:{item.updated_at!r};".encode())
        vis = Visibility(None if principal.admin else frozenset(ids), frozenset(fields), digest.hexdigest())
        self.visibility_cache.put(key, vis)
        return vis

    def visible_item(self, principal: Principal, item_id: str) -> Item:
        """The item, or the same NotFoundError whether it is absent or hidden from this principal."""
        check_item_id(item_id)
        with self.lock:
            try:
                item = self.coll.get(item_id)
            except NotFoundError:
                item = None
            if item is None or not self.store.may_see(principal, self.store.acl(item_id)):
                raise NotFoundError(f"no item with id {item_id!r}")
        return item

    # ---- search -----------------------------------------------------------------------------
    def search(self, principal: Principal, req: SearchRequest) -> dict[str, Any]:
        k = validate_k(req.k)
        modality = Modality.parse(req.modality) if req.modality not in (None, "", "any") else None
        mode = SearchMode.parse(req.mode if req.mode != "" else None)
        if mode is not SearchMode.DENSE:
            keyword_match(req.query, mode)  # a bad query is refused before any work
        where = normalise_where(req.where)
        qkey = _query_key(req.query)
        filters = json.dumps(where, sort_keys=True)
        with self.lock:
            versions = self._versions()
            vis = self.visibility(principal, versions)
        unknown = sorted(set(where) - vis.fields)
        if unknown:
            known = ", ".join(sorted(vis.fields)) or "none"
            raise InvalidArgumentError(f"unknown filter field {unknown[0]!r}; fields you can filter on: {known}")
        rkey = (qkey, k, modality, filters, mode, principal.cache_key, vis.digest)
        cached = self.results.get(rkey)
        self.metrics.cache_lookup("results", cached is not None)
        dense = mode is not SearchMode.KEYWORD  # keywords match stored text: no model, nothing to encode
        if cached is None:
            with self.lock:
                # after a re-embed by another process, followed by any request (a delete, the
                # retention pass, an earlier search), the models here must make the stored
                # vectors (409 if they do not); a no-op once checked. The model key and the
                # pipeline that encodes for it are read together.
                if dense:
                    self.coll.verify_encoders()
                model, pipeline = self.coll.model_key, self.coll.pipeline
            vector = self._embed(principal, req.query, qkey, model, pipeline) if dense else None
            with self.lock, self.metrics.stage("search"):
                self.coll.refresh()  # writes by another process (`xmodal index`) become visible
                if dense and self.coll.model_key != model:  # it re-embedded with another model: encode again
                    self.coll.verify_encoders()
                    vector = self._embed(principal, req.query, qkey, self.coll.model_key, self.coll.pipeline)
                if self._versions() != versions:  # the index changed meanwhile: use the new view
                    versions = self._versions()
                    vis = self.visibility(principal, versions)
                    rkey = (qkey, k, modality, filters, mode, principal.cache_key, vis.digest)
                hits = self.coll.pipeline.search_vector(
                    vector, k, modality, where, allow_items=_as_set(vis.ids), query=req.query, mode=mode
                )
            cached = tuple(hits)
            if k <= MAX_CACHED_K:  # bounded memory: very long result lists are not kept
                self.results.put(rkey, cached)
        with self.metrics.stage("fetch"):
            out = [self._hit_dict(principal, h, vis) for h in cached]
        self.audit.record(
            "search",
            principal.name,
            key_id=principal.key_id,
            query=_describe(req.query),
            k=k,
            modality=modality.value if modality else None,
            where=where or None,
            mode=mode.value,
            ids=[h["id"] for h in out],
        )
        return {"query": _describe(req.query), "k": k, "mode": mode.value, "hits": out}

    def _embed(self, principal: Principal, query: Query, qkey: str, model: str, pipeline: SearchPipeline) -> Any:
        # Keyed by principal too: a shared cache would let one user time another's queries;
        # and by the model, which another process may change (a re-embed).
        ekey = (principal.cache_key, qkey, model)
        vector = self.embeddings.get(ekey)
        self.metrics.cache_lookup("embeddings", vector is not None)
        if vector is None:
            with self.encode_lock, self.metrics.stage("encode"):
                vector = pipeline.encode(query)
            self.embeddings.put(ekey, vector)
        return vector

    def _hit_dict(self, principal: Principal, hit: Hit, vis: Visibility) -> dict[str, Any]:
        if vis.ids is not None and hit.id not in vis.ids:  # defence in depth; the ANN filter did this
            raise RuntimeError("access filter let a hidden item through")
        out = hit.to_dict()
        out["preview_url"] = self.signer.url(hit.id, principal.key_id)
        return out

    # ---- near-duplicates ----------------------------------------------------------------------
    def duplicates(self, principal: Principal, threshold: float | None) -> dict[str, Any]:
        """Groups of near-identical pictures among the items this principal may see (the
        threshold is checked by :meth:`Collection.duplicates`)."""
        with self.lock:
            self.coll.refresh()
            vis = self.visibility(principal, self._versions())
            groups = self.coll.duplicates(threshold, allow_items=_as_set(vis.ids))
            items = self.coll.catalog.items_by_id([i for g in groups for i in g.items])
        out = []
        for g in groups:
            entries = []
            for entry in g.to_dict()["items"]:
                item = items.get(entry["id"])
                if item is None:  # deleted meanwhile
                    continue
                entries.append({**entry, "uri": item.uri, "preview_url": self.signer.url(item.id, principal.key_id)})
            if len(entries) > 1:
                out.append({"items": entries})
        self.audit.record("duplicates", principal.name, key_id=principal.key_id, groups=len(out))
        return {"groups": out, "threshold": threshold if threshold is not None else DEFAULT_THRESHOLD}

    # ---- items ------------------------------------------------------------------------------
    def item_dict(self, principal: Principal, item_id: str) -> dict[str, Any]:
        item = self.visible_item(principal, item_id)
        out = item.to_dict()
        out["preview_url"] = self.signer.url(item.id, principal.key_id)
        if principal.admin:
            out["access"] = self.store.acl(item.id)
        self.audit.record("item.get", principal.name, key_id=principal.key_id, ids=[item.id])
        return out

    def preview_principal(self, item_id: str, key_id: str, exp: str, sig: str) -> Principal:
        """The principal a signed preview URL was made for, if its key is still valid."""
        check_item_id(item_id)
        self.signer.check(item_id, key_id, exp, sig)
        info = self.store.key_info(key_id)
        if info.revoked_at is not None:
            raise AuthError("this API key has been revoked")
        return Principal(info.principal, info.groups, info.admin, info.key_id)

    def add_files(
        self,
        principal: Principal,
        paths: list[Path],
        metadata: dict[str, Any] | None,
        access: list[str] | None,
        progress: Progress | None = None,
        refused: Sequence[tuple[str, str]] = (),
    ) -> dict[str, Any]:
        """Index files already checked to be allowed; the access list is set before the items
        exist, so there is no moment when a restricted item is visible to others. ``progress``
        (a job) is told of every file and may stop the run between files. ``refused``: files
        found but not allowed (a link out of the index root), reported as failures."""
        from xmodal.ingest import item_id_for

        self.require_admin(principal)
        meta = check_metadata(metadata)
        ids = [item_id_for(str(p.absolute())) for p in paths]
        with self.lock, self.coll.writing():  # busy: fails here, before any access list changes
            before = self.store.acl_snapshot(ids) if access is not None else {}
            if access is not None:
                self.store.set_acl(ids, access)
            started = time.time()
            try:
                with self.encode_lock:  # ingest runs the same tokenizer/OCR/ASR as query encoding
                    let_in = _LetOthersIn(self.lock, self.encode_lock, progress)
                    report = self.coll.add(paths, metadata=meta, progress=let_in)
            except BaseException:
                # items this run wrote keep the access list asked for (they are in the index);
                # every other one gets back the list it had
                written = {i for i, item in self.coll.catalog.items_by_id(ids).items() if item.updated_at >= started}
                self.store.restore_acls({i: acl for i, acl in before.items() if i not in written})
                raise
            # the files the run went through (written or unchanged; never a failed one)
            handled = {str(Path(u).absolute()) for u in report.handled}
            items = [
                {"id": i, "uri": str(p.absolute()), "name": p.name}
                for i, p in zip(ids, paths, strict=True)
                if str(p.absolute()) in handled
            ]
            # files that were not indexed (failed, or not reached before a stop) keep the
            # access lists they had
            indexed = {x["id"] for x in items}
            self.store.restore_acls({i: acl for i, acl in before.items() if i not in indexed})
        report.failures.extend(refused)
        # No cache flush: result keys carry each principal's view digest, which this write
        # changed only for the principals who may see these items.
        if not items and report.failures:
            from xmodal.errors import MediaError

            path, reason = report.failures[0]
            raise MediaError(f"nothing was indexed: {Path(path).name}: {reason}")
        self.audit.record(
            "items.add", principal.name, key_id=principal.key_id, ids=[x["id"] for x in items], access=access,
            metadata=meta or None, failures=len(report.failures),
        )  # fmt: skip
        return {"items": items, "report": report.to_dict()}

    def submit_index(
        self,
        principal: Principal,
        paths: list[Path],
        metadata: dict[str, Any] | None,
        access: list[str] | None,
        refused: Sequence[tuple[str, str]] = (),
    ) -> Job:
        """Index in the background (see :mod:`xmodal.api.jobs`); bad input fails now, not in the job."""
        self.require_admin(principal)
        meta = check_metadata(metadata)

        def work(job: Job) -> dict[str, Any]:
            while True:  # wait for another writer (an `xmodal index`, a request) to finish
                try:
                    result = self.add_files(principal, paths, meta, access, progress=job, refused=refused)
                    job.waiting = False
                    return result
                except CollectionBusyError:
                    job.waiting = True
                    if job.cancel.wait(JOB_LOCK_POLL_S):
                        job.waiting = False
                        return {"items": [], "report": IngestReport(interrupted=True).to_dict()}

        job = self.jobs.submit(principal.name, work)
        self.audit.record("jobs.submit", principal.name, key_id=principal.key_id, job=job.id, files=len(paths))
        return job

    def job(self, principal: Principal, job_id: str, cancel: bool = False) -> dict[str, Any]:
        self.require_admin(principal, "see or stop index jobs")
        if cancel:
            job = self.jobs.cancel(job_id)
            self.audit.record("jobs.cancel", principal.name, key_id=principal.key_id, job=job.id)
            return job.to_dict()
        return self.jobs.get(job_id).to_dict()

    def job_list(self, principal: Principal) -> dict[str, Any]:
        self.require_admin(principal, "see or stop index jobs")
        return {"jobs": [job.to_dict(summary=True) for job in self.jobs.list()]}

    def delete_item(self, principal: Principal, item_id: str) -> dict[str, Any]:
        self.require_admin(principal)
        check_item_id(item_id)
        with self.lock:
            self.coll.get(item_id)
            n = remove_items(self.coll, self.store, [item_id], self.settings.upload_root)
        self._purge_cached({item_id})
        self.audit.record("items.delete", principal.name, key_id=principal.key_id, ids=[item_id])
        return {"deleted": n, "id": item_id}

    def retention(self) -> dict[str, Any]:
        if self.settings.retention_days is None:
            return {}
        with self.lock:
            report = apply_retention(
                self.coll, self.store, self.audit, self.settings.retention_days, self.settings.upload_root
            )
        if report.items:
            self._purge_cached(set(report.ids))
        return report.to_dict()

    def _purge_cached(self, ids: set[str]) -> None:
        """Drop cached results that list deleted items (their keys could no longer be reached
        anyway; this frees them at once)."""
        self.results.discard_if(lambda hits: any(h.id in ids for h in hits))

    def close(self) -> bool:
        """Waits for work that holds the lock (a retention pass in its worker thread, which task
        cancellation does not stop) so the store is never closed under it; index jobs stop
        between files first. False (nothing closed) if a job would not stop in time."""
        if not self.jobs.close(timeout=JOB_STOP_WAIT_S):
            return False
        with self.lock:
            self.store.close()
        return True


class _LetOthersIn:
    """Progress of an API index run that hands both locks over between files, so searches
    (and reads) run while a large folder is indexed instead of waiting for all of it. Between
    two files the collection is consistent: files read but not yet flushed are in neither the
    catalog nor the index, and no model is in use. Other writes still get 409 (another writer):
    the run holds the collection's write lock throughout; jobs wait for it instead."""

    def __init__(self, lock: threading.RLock, encode_lock: threading.Lock, inner: Progress | None = None) -> None:
        self.lock, self.encode_lock, self.inner = lock, encode_lock, inner or NullProgress()

    def start(self, total: int) -> None:
        self.inner.start(total)

    def advance(self, failed: int) -> None:
        self.encode_lock.release()
        self.lock.release()
        try:
            time.sleep(0.002)  # a waiting request takes the lock now (locks are not fair)
        finally:
            self.lock.acquire()
            self.encode_lock.acquire()
        self.inner.advance(failed)  # with both locks held again: a job may stop the run here

    def close(self) -> None:
        self.inner.close()


def _as_set(ids: frozenset[str] | None) -> set[str] | None:
    return None if ids is None else set(ids)


def _query_key(query: Query) -> str:
    if query.modality is Modality.TEXT:
        text = query.content or ""
        if len(text) > MAX_QUERY_CHARS:
            raise InvalidQueryError(f"the query is {len(text):,} characters; the limit is {MAX_QUERY_CHARS:,}")
        return "text:" + text.strip()
    data = query.data if query.data is not None else b""
    return f"{query.modality.value}:" + hashlib.sha256(data).hexdigest()


def _describe(query: Query) -> str:
    if query.modality is Modality.TEXT:
        return (query.content or "").strip()[:500]
    data = query.data or b""
    return f"{query.modality.value}:sha256:{hashlib.sha256(data).hexdigest()[:16]} ({len(data)} bytes)"
