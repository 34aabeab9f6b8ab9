"""Background index jobs: POST /index with "wait": false, GET /jobs/{id}, DELETE /jobs/{id}."""

from __future__ import annotations

import fcntl
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from api_support import ApiEnv, FakeEncoder, api, make_env_with

from xmodal.errors import NotFoundError
from xmodal.ingest import item_id_for
from xmodal.types import Modality

__all__ = ["api"]


class GatedEncoder(FakeEncoder):
    """Holds every batch of indexed files (more than one input) until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.gate = threading.Event()

    def encode_batch(self, modality: Modality, inputs: Sequence[Any]) -> np.ndarray:
        if len(inputs) > 1:
            self.entered.set()
            assert self.gate.wait(30), "the test never opened the gate"
        return super().encode_batch(modality, inputs)


@pytest.fixture
def gated(tmp_path: Path) -> Iterator[tuple[ApiEnv, GatedEncoder]]:
    encoder = GatedEncoder()
    made = make_env_with(tmp_path, encoder)
    env = next(made)
    yield env, encoder
    encoder.gate.set()  # never leave the worker waiting at shutdown
    made.close()


def _docs(env: ApiEnv, name: str, n: int) -> Path:
    folder = env.root / name
    folder.mkdir()
    for i in range(n):
        (folder / f"{name}{i}.txt").write_text(f"{name} note {i} about lakes")
    return folder


def _wait(env: ApiEnv, job_id: str, *states: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = env.client.get(f"/jobs/{job_id}", headers=env.h("admin")).json()
        if job["status"] in states:
            return job  # type: ignore[no-any-return]
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} never reached {states}: {job}")


def test_a_job_answers_at_once_reports_progress_and_its_result(gated: tuple[ApiEnv, GatedEncoder]) -> None:
    env, encoder = gated
    _docs(env, "lakes", 40)
    r = env.client.post("/index", headers=env.h("admin"), json={"paths": ["lakes"], "access": "public", "wait": False})
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["location"] == job["status_url"] == f"/jobs/{job['id']}"
    assert job["status"] in ("queued", "running") and job["result"] is None
    assert encoder.entered.wait(30)  # the first batch of 32 is being encoded
    running = _wait(env, job["id"], "running")
    assert running["total"] == 40 and running["done"] == 32 and running["result"] is None
    # (searches are answered between a job's files as between a waiting request's: see
    # test_api_concurrency; not while a batch is being encoded, as here)
    encoder.gate.set()
    done = _wait(env, job["id"], "done")
    assert done["done"] == 40 and done["failed"] == 0 and done["finished_at"] >= done["started_at"]
    assert len(done["result"]["items"]) == 40 and done["result"]["report"]["added"] == 40
    hits = env.client.post("/search", headers=env.h("alice"), json={"text": "lakes note", "k": 100}).json()["hits"]
    assert len(hits) == 40  # the access list was applied
    listed = env.client.get("/jobs", headers=env.h("admin")).json()["jobs"]
    assert [j["id"] for j in listed] == [job["id"]]


def test_cancel_stops_between_files_and_keeps_what_was_read(gated: tuple[ApiEnv, GatedEncoder]) -> None:
    env, encoder = gated
    _docs(env, "big", 100)
    _docs(env, "later", 3)
    first = env.client.post("/index", headers=env.h("admin"), json={"paths": ["big"], "wait": False}).json()
    second = env.client.post("/index", headers=env.h("admin"), json={"paths": ["later"], "wait": False}).json()
    assert encoder.entered.wait(30)
    assert _wait(env, second["id"], "queued")["started_at"] is None  # one job at a time, in order
    stopping = env.client.delete(f"/jobs/{first['id']}", headers=env.h("admin"))
    assert stopping.status_code == 200 and stopping.json()["status"] == "running"
    dropped = env.client.delete(f"/jobs/{second['id']}", headers=env.h("admin")).json()
    assert dropped["status"] == "cancelled" and dropped["started_at"] is None
    encoder.gate.set()
    first_job = _wait(env, first["id"], "cancelled")
    # the batch in hand was finished, then the run stopped after the next file
    assert first_job["done"] == 33 and first_job["result"]["report"]["interrupted"] is True
    assert len(first_job["result"]["items"]) == 33 and len(env.coll) == 33
    assert _wait(env, second["id"], "cancelled")["done"] == 0
    assert not any("later" in item.uri for item in env.coll.items())
    # sent again, the rest is indexed (the 33 are unchanged)
    again = env.client.post("/index", headers=env.h("admin"), json={"paths": ["big"], "wait": False}).json()
    report = _wait(env, again["id"], "done")["result"]["report"]
    assert (report["added"], report["unchanged"]) == (67, 33) and len(env.coll) == 100


def test_job_requests_with_bad_input_fail_at_once(api: ApiEnv) -> None:
    _docs(api, "notes", 2)
    admin = api.h("admin")
    cases: list[tuple[dict[str, Any], int]] = [
        ({"paths": ["notes"], "wait": "no"}, 400),
        ({"paths": ["notes"], "wait": False, "metadata": {"team": ["a"]}}, 400),
        ({"paths": ["../outside"], "wait": False}, 403),
        ({"paths": ["missing-folder"], "wait": False}, 404),
        ({"paths": ["notes"], "wait": False, "access": 5}, 400),
    ]
    for body, status in cases:
        r = api.client.post("/index", headers=admin, json=body)
        assert r.status_code == status, (body, r.status_code, r.text)
    assert api.client.get("/jobs", headers=admin).json() == {"jobs": []}
    user = api.client.post("/index", headers=api.h("alice"), json={"paths": ["notes"], "wait": False})
    assert user.status_code == 403
    assert api.client.get("/jobs", headers=api.h("alice")).status_code == 403
    assert api.client.get("/jobs/0123456789abcdef", headers=admin).status_code == 404
    assert api.client.get("/jobs/" + "x" * 5000, headers=admin).status_code == 404
    assert api.client.delete("/jobs/0123456789abcdef", headers=admin).status_code == 404
    job = api.client.post("/index", headers=admin, json={"paths": ["notes"], "wait": False}).json()
    assert api.client.get(f"/jobs/{job['id']}", headers=api.h("bob")).status_code == 403
    assert _wait(api, job["id"], "done")["result"]["report"]["added"] == 2
    # the default still answers when done
    r = api.client.post("/index", headers=admin, json={"paths": ["notes"]})
    assert r.status_code == 201 and r.json()["report"]["unchanged"] == 2


def test_shutdown_stops_a_running_job_between_files(tmp_path: Path) -> None:
    encoder = GatedEncoder()
    made = make_env_with(tmp_path, encoder)
    env = next(made)
    _docs(env, "big", 100)
    job = env.client.post("/index", headers=env.h("admin"), json={"paths": ["big"], "wait": False}).json()
    assert encoder.entered.wait(30)
    svc = env.client.app.state.service  # type: ignore[attr-defined]
    threading.Timer(0.3, encoder.gate.set).start()
    made.close()  # the app shuts down: the job is told to stop and waited for
    stopped = svc.jobs.get(job["id"])
    assert stopped.status == "cancelled" and stopped.done == 33


def test_job_queue_failures_pruning_and_closing() -> None:
    from xmodal.api import jobs as jobs_mod
    from xmodal.errors import MediaError, UnavailableError

    queue = jobs_mod.JobQueue()

    def fails(job: jobs_mod.Job) -> dict[str, Any]:
        raise MediaError("nothing was indexed: a.png: not an image")

    def crashes(job: jobs_mod.Job) -> dict[str, Any]:
        raise RuntimeError("bug")

    bad, broken = queue.submit("admin", fails), queue.submit("admin", crashes)
    ok = [queue.submit("admin", lambda job: {"report": {}}) for _ in range(jobs_mod.KEEP + 5)]
    deadline = time.monotonic() + 30
    while queue.get(ok[-1].id).status != "done" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ok[-1].status == "done"
    kept = queue.list()
    assert len(kept) == jobs_mod.KEEP and kept[0].id == ok[-1].id  # newest first, oldest dropped
    assert (bad.status, bad.error) == ("failed", "nothing was indexed: a.png: not an image")
    assert broken.status == "failed" and "internal error" in (broken.error or "")
    with pytest.raises(NotFoundError):
        queue.get(bad.id)  # pruned
    queue.close()
    with pytest.raises(UnavailableError):
        queue.submit("admin", lambda job: {})


def test_a_refused_index_request_leaves_access_lists_as_they_were(api: ApiEnv) -> None:
    """The access list is set before the files are read; a request that fails must undo it."""
    _docs(api, "memos", 1)
    admin = api.h("admin")
    first = api.client.post("/index", headers=admin, json={"paths": ["memos"], "access": ["user:alice"]}).json()
    item = first["items"][0]["id"]
    assert api.client.get(f"/items/{item}", headers=api.h("bob")).status_code == 404
    (api.root / "memos" / "memos0.txt").write_text("a changed memo")  # so the next request reads it
    with open(api.coll.path / "lock", "a+") as lock:  # an `xmodal index` is writing
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        r = api.client.post("/index", headers=admin, json={"paths": ["memos"], "access": ["public"]})
        assert r.status_code == 409 and "another writer" in r.json()["error"]["message"]
        assert api.client.get(f"/items/{item}", headers=api.h("bob")).status_code == 404
        # a job waits for the writer instead of failing
        job = api.client.post("/index", headers=admin, json={"paths": ["memos"], "wait": False}).json()
        waiting = _wait(api, job["id"], "running")
        deadline = time.monotonic() + 30
        while not waiting["waiting"] and time.monotonic() < deadline:
            waiting = api.client.get(f"/jobs/{job['id']}", headers=admin).json()
        assert waiting["waiting"] is True and waiting["status"] == "running"
        fcntl.flock(lock, fcntl.LOCK_UN)
    done = _wait(api, job["id"], "done")
    assert done["waiting"] is False and done["result"]["report"]["updated"] == 1
    assert api.client.get(f"/items/{item}", headers=api.h("bob")).status_code == 404  # still alice's only
    assert api.client.get(f"/items/{item}", headers=api.h("alice")).status_code == 200
    # a finished job cannot be stopped, and asking writes nothing to the audit log
    r = api.client.delete(f"/jobs/{job['id']}", headers=admin)
    assert r.status_code == 409 and "already finished" in r.json()["error"]["message"]
    assert "jobs.cancel" not in (api.coll.path / "audit.jsonl").read_text()


def test_metadata_sent_again_applies_to_unchanged_files_and_paths_count_once(api: ApiEnv) -> None:
    _docs(api, "notes", 2)
    admin = api.h("admin")
    first = api.client.post("/index", headers=admin, json={"paths": ["notes", "notes", "notes/notes0.txt"]}).json()
    assert first["report"]["added"] == 2 and len(first["items"]) == 2
    again = api.client.post("/index", headers=admin, json={"paths": ["notes"], "metadata": {"team": "zoo"}}).json()
    assert (again["report"]["unchanged"], again["report"]["metadata_updated"]) == (0, 2)
    hits = api.client.post("/search", headers=admin, json={"text": "lakes", "where": {"team": "zoo"}}).json()["hits"]
    assert len(hits) == 2 and {h["metadata"]["team"] for h in hits} == {"zoo"}
    same = api.client.post("/index", headers=admin, json={"paths": ["notes"], "metadata": {"team": "zoo"}}).json()
    assert (same["report"]["unchanged"], same["report"]["metadata_updated"]) == (2, 0)


def test_finished_jobs_hold_a_bounded_number_of_listed_files(monkeypatch: pytest.MonkeyPatch) -> None:
    from xmodal.api import jobs as jobs_mod

    monkeypatch.setattr(jobs_mod, "KEEP_ITEMS", 10)
    queue = jobs_mod.JobQueue()
    made = [queue.submit("admin", lambda job: {"items": [{"id": "x"}] * 4, "report": {}}) for _ in range(5)]
    deadline = time.monotonic() + 30
    while made[-1].status != "done" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [j.id for j in queue.list()] == [j.id for j in reversed(made[-2:])]  # 8 files kept, not 20
    big = queue.submit("admin", lambda job: {"items": [{"id": "x"}] * 50, "report": {}})
    while big.status != "done" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [j.id for j in queue.list()] == [big.id]  # the newest stays, whatever its size
    queue.close()


class FailsOnSecondBatch(FakeEncoder):
    batches = 0

    def encode_batch(self, modality: Modality, inputs: Sequence[Any]) -> np.ndarray:
        if len(inputs) > 1:
            FailsOnSecondBatch.batches += 1
            if FailsOnSecondBatch.batches == 2:
                raise RuntimeError("out of memory")
        return super().encode_batch(modality, inputs)


def test_access_lists_follow_what_a_run_wrote(tmp_path: Path) -> None:
    """A run that fails after writing a batch keeps the asked-for list on what it wrote (those
    items are searchable); a run stopped early leaves files it never reached as they were."""
    from xmodal.ingest import StopIngest

    made = make_env_with(tmp_path, FailsOnSecondBatch())
    env = next(made)
    svc = env.client.app.state.service  # type: ignore[attr-defined]
    admin, bob = svc.authenticate(env.keys["admin"]), env.h("bob")
    svc.store.set_default_access(True)
    folder = _docs(env, "eng", 40)
    paths = sorted(folder.iterdir())
    with pytest.raises(RuntimeError):
        svc.add_files(admin, paths, None, ["group:eng"])
    written = list(env.coll.items())
    assert len(written) == 32  # the first batch
    for item in written:  # not public by default: the list asked for stands
        assert env.client.get(f"/items/{item.id}", headers=bob).status_code == 404
    assert all(svc.store.acl(i) is None for i in (item_id_for(str(p)) for p in paths[32:]))

    class StopAtFirst:
        def start(self, total: int) -> None:
            pass

        def advance(self, failed: int) -> None:
            raise StopIngest

        def close(self) -> None:
            pass

    FailsOnSecondBatch.batches = -100  # no more failures
    before = {item.id: svc.store.acl(item.id) for item in written}
    result = svc.add_files(admin, paths[:5], None, ["public"], progress=StopAtFirst())
    assert [x["name"] for x in result["items"]] == [paths[0].name] and result["report"]["interrupted"]
    assert svc.store.acl(item_id_for(str(paths[0]))) == ["public"]
    assert all(svc.store.acl(item_id_for(str(p))) == before[item_id_for(str(p))] for p in paths[1:5])
    made.close()


def test_a_job_waiting_for_a_writer_leaves_access_lists_alone(api: ApiEnv) -> None:
    _docs(api, "memos", 3)
    svc = api.client.app.state.service  # type: ignore[attr-defined]
    version = svc.store.acl_version
    with open(api.coll.path / "lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        job = api.client.post(
            "/index", headers=api.h("admin"), json={"paths": ["memos"], "access": ["group:eng"], "wait": False}
        ).json()
        deadline = time.monotonic() + 30
        while not svc.jobs.get(job["id"]).waiting and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(1.2)  # two more tries
        assert svc.store.acl_version == version  # nothing set and put back while it waits
        fcntl.flock(lock, fcntl.LOCK_UN)
    assert _wait(api, job["id"], "done")["result"]["report"]["added"] == 3


def test_a_finished_job_outlives_older_ones_that_finished_later() -> None:
    from xmodal.api import jobs as jobs_mod

    queue = jobs_mod.JobQueue()
    gate = threading.Event()

    def slow(job: jobs_mod.Job) -> dict[str, Any]:
        gate.wait(30)
        return {"items": [], "report": {}}

    first = queue.submit("admin", slow)
    queued = [queue.submit("admin", lambda job: {}) for _ in range(jobs_mod.KEEP + 3)]
    for job in queued:
        queue.cancel(job.id)  # they finish (cancelled) before the first one
    gate.set()
    deadline = time.monotonic() + 30
    while first.status != "done" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert queue.get(first.id).status == "done"  # the newest finished is kept
    assert len(queue.list()) == jobs_mod.KEEP
    assert queue.close()
