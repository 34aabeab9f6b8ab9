"""Background index jobs: ``POST /index`` with ``"wait": false`` answers at once with a job that
``GET /jobs/{id}`` reports on (files done of total) and ``DELETE /jobs/{id}`` stops after the
file in hand. Jobs run one at a time, in order, on one worker thread; they live in the server's
memory (the last :data:`KEEP` finished ones, fewer when their results list over
:data:`KEEP_ITEMS` files), so a restart forgets them — the files a
job had indexed stay indexed, and re-sending the request indexes the rest."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from xmodal.errors import CollectionError, NotFoundError, UnavailableError, XmodalError
from xmodal.ingest import StopIngest

log = logging.getLogger("xmodal.api")

KEEP = 100
KEEP_ITEMS = 200_000  # finished jobs' listed files, at most (besides the newest job)
MAX_QUEUED = 1000
STATES = ("queued", "running", "done", "cancelled", "failed")


@dataclass
class Job:
    id: str
    principal: str
    status: str = "queued"
    total: int | None = None  # files found, once the folders were walked
    done: int = 0
    failed: int = 0
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    waiting: bool = False  # for another writer (an `xmodal index`, a request) to finish
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    def to_dict(self, summary: bool = False) -> dict[str, Any]:
        """``summary``: the result's report without its list of items (for listings)."""
        result = self.result
        if summary and result is not None:
            result = {key: value for key, value in result.items() if key != "items"}
        return {
            "id": self.id,
            "status": self.status,
            "principal": self.principal,
            "total": self.total,
            "done": self.done,
            "failed": self.failed,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "waiting": self.waiting,
            "result": result,
            "error": self.error,
            "status_url": f"/jobs/{self.id}",
        }

    # Progress (xmodal.ingest.Progress) of the run, told by the service between files
    def start(self, total: int) -> None:
        self.total = total

    def advance(self, failed: int) -> None:
        self.done += 1
        self.failed = failed
        if self.cancel.is_set():
            raise StopIngest

    def close(self) -> None:
        pass


Work = Callable[[Job], dict[str, Any]]


class JobFinishedError(CollectionError):
    """A finished job cannot be stopped (409)."""


class JobQueue:
    def __init__(self) -> None:
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._work: dict[str, Work] = {}
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._closed = False
        self._thread: threading.Thread | None = None

    def submit(self, principal: str, work: Work) -> Job:
        job = Job(id=secrets.token_hex(8), principal=principal)
        with self._lock:
            if self._closed:
                raise UnavailableError("the server is shutting down; send the request again after it restarts")
            if len(self._work) >= MAX_QUEUED:
                raise UnavailableError(f"{MAX_QUEUED} index jobs are already waiting; send this one later")
            self._jobs[job.id] = job
            self._work[job.id] = work
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="xmodal-jobs", daemon=True)
                self._thread.start()
            self._wake.notify()
        return job

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            shown = job_id if len(job_id) <= 40 else job_id[:40] + "..."
            raise NotFoundError(f"no job {shown!r} (jobs are kept in memory until the server restarts)")
        return job

    def list(self) -> list[Job]:
        with self._lock:
            return list(reversed(self._jobs.values()))

    def cancel(self, job_id: str) -> Job:
        """A queued job never starts; a running one stops after the file in hand. A finished
        one is a :class:`JobFinishedError`."""
        job = self.get(job_id)
        with self._lock:
            if job.finished_at is not None:
                raise JobFinishedError(f"job {job.id} has already finished ({job.status})")
            job.cancel.set()
            if job.status == "queued":
                self._work.pop(job.id, None)
                self._finish(job, "cancelled")
        return job

    def close(self, timeout: float | None = None) -> bool:
        """Cancel every job and wait for the running one to stop between files (one file can
        take minutes: a long recording). False if it is still running after ``timeout``."""
        with self._lock:
            self._closed = True
            for job in self._jobs.values():
                job.cancel.set()
            self._wake.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("an index job is still running after %s s; the collection is left open", timeout)
                return False
        return True

    def _next(self) -> tuple[Job, Work] | None:
        with self._lock:
            while True:
                for job_id, work in list(self._work.items()):
                    job = self._jobs[job_id]
                    del self._work[job_id]
                    if job.cancel.is_set():
                        self._finish(job, "cancelled")
                        continue
                    job.status, job.started_at = "running", time.time()
                    return job, work
                if self._closed:
                    return None
                self._wake.wait()

    def _run(self) -> None:
        while (task := self._next()) is not None:
            job, work = task
            try:
                result = work(job)
            except XmodalError as exc:
                with self._lock:
                    job.error = str(exc)
                    self._finish(job, "failed")
            except Exception:  # a bug: logged with its traceback, the worker goes on
                log.exception("index job %s failed", job.id)
                with self._lock:
                    job.error = "internal error (see the server log)"
                    self._finish(job, "failed")
            else:
                with self._lock:
                    job.result = result
                    interrupted = bool(result.get("report", {}).get("interrupted"))
                    self._finish(job, "cancelled" if interrupted and job.cancel.is_set() else "done")

    def _finish(self, job: Job, status: str) -> None:
        """With ``self._lock`` held."""
        job.status, job.finished_at = status, time.time()
        # the oldest finished go first; never the one finishing now (jobs finish out of order:
        # a queued job cancelled while another runs)
        finished = sorted((j for j in self._jobs.values() if j.finished_at is not None and j is not job),
                          key=lambda j: j.finished_at or 0.0)  # fmt: skip
        drop = max(0, len(finished) + 1 - KEEP)
        # results list every file: large ones push older jobs out sooner (memory stays bounded)
        held = _n_items(job) + sum(_n_items(j) for j in finished)
        for i, old in enumerate(finished):
            if i >= drop and held <= KEEP_ITEMS:
                break
            held -= _n_items(old)
            del self._jobs[old.id]


def _n_items(job: Job) -> int:
    return len((job.result or {}).get("items") or [])
