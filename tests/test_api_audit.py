"""Audit log, retention, and the ``xmodal keys`` / ``xmodal audit`` commands."""

from __future__ import annotations

import argparse
import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from api_support import ApiEnv, api, png_bytes

from xmodal.access.audit import AuditFilter, AuditLog
from xmodal.access.retention import apply_retention
from xmodal.access.store import AccessStore
from xmodal.api.settings import ServeSettings
from xmodal.cli import cmd_audit, cmd_keys, cmd_serve
from xmodal.errors import AuthError, InvalidArgumentError, NotFoundError

__all__ = ["api"]


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="xmodal")
    sub = parser.add_subparsers(dest="command")
    for module in (cmd_keys, cmd_audit, cmd_serve):
        module.register(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_audit_records_searches_adds_deletes_with_ids(api: ApiEnv) -> None:
    r = api.upload("admin", {"cat.png": png_bytes((200, 100, 50)), "n.txt": b"river notes"}, access="public")
    ids = [x["id"] for x in r.json()["items"]]
    hits = api.client.post("/search", headers=api.h("alice"), json={"text": "river", "k": 1}).json()["hits"]
    api.client.delete(f"/items/{ids[0]}", headers=api.h("admin"))
    log = AuditLog(api.coll.path)
    entries = log.entries()
    actions = [(e["principal"], e["action"]) for e in entries]
    assert actions == [("admin", "items.add"), ("alice", "search"), ("admin", "items.delete")]
    assert entries[0]["ids"] == ids and entries[0]["access"] == ["public"]
    assert entries[1]["query"] == "river" and entries[1]["ids"] == [h["id"] for h in hits]
    assert entries[2]["ids"] == [ids[0]]
    assert log.entries(AuditFilter(principal="alice"))[0]["action"] == "search"
    assert [e["action"] for e in log.entries(AuditFilter(item=ids[0]))] == ["items.add", "items.delete"]
    assert log.verify() == []


def test_audit_chain_detects_edits_and_removals(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    for i in range(5):
        log.record("search", "alice", query=f"q{i}")
    assert log.verify() == []
    lines = log.path.read_text().splitlines()
    log.path.write_text("\n".join([lines[0], lines[1].replace("q1", "qX"), *lines[2:]]) + "\n")
    assert any("changed or removed" in p for p in log.verify())
    log.path.write_text("\n".join([lines[0], *lines[2:]]) + "\n")
    assert log.verify()


def test_retention_purges_old_items_and_entries(api: ApiEnv) -> None:
    r = api.upload("admin", {"old.txt": b"ancient scroll", "new.txt": b"fresh news"}, access="public")
    old_id, new_id = (x["id"] for x in r.json()["items"])
    old_uri = Path(r.json()["items"][0]["uri"])
    # Age one item and the first audit entry by 40 days.
    api.coll.catalog._db.execute("UPDATE items SET created_at = ? WHERE id = ?", (time.time() - 40 * 86400, old_id))
    log = AuditLog(api.coll.path)
    lines = log.path.read_text().splitlines()
    first = json.loads(lines[0])
    first["ts"] -= 40 * 86400
    log.path.write_text(json.dumps(first, sort_keys=True) + "\n" + "\n".join(lines[1:]) + ("\n" if lines[1:] else ""))
    store = AccessStore(api.coll.path)
    report = apply_retention(api.coll, store, log, 30, api.settings.upload_root)
    store.close()
    assert report.items == 1 and report.audit_entries == 1
    assert [i.id for i in api.coll.items()] == [new_id]
    assert not old_uri.exists()
    assert [e["action"] for e in log.entries()][-2:] == ["retention.delete", "audit.purge"]
    hits = api.client.post("/search", headers=api.h("alice"), json={"text": "ancient scroll"}).json()["hits"]
    assert old_id not in [h["id"] for h in hits]
    with pytest.raises(InvalidArgumentError):
        apply_retention(api.coll, AccessStore(api.coll.path), log, 0)


def test_keys_cli_create_list_revoke_grant(api: ApiEnv, capsys: pytest.CaptureFixture[str]) -> None:
    c = str(api.coll.path)
    assert cli(["keys", "create", "erin", "-g", "eng", "--json", "-c", c]) == 0
    made = json.loads(capsys.readouterr().out)
    token = made["key"]
    assert made["principal"] == "erin" and made["groups"] == ["eng"] and not made["admin"]
    stored = (api.coll.path / "access.sqlite").read_bytes()
    secret = token.split("_", 2)[2]  # xmk_<12-hex id>_<secret>; the secret may itself contain "_"
    assert len(secret) >= 20
    assert token.encode() not in stored and secret.encode() not in stored  # only a hash is kept
    headers = {"X-API-Key": token}
    assert api.client.get("/me", headers=headers).json()["principal"] == "erin"

    r = api.upload("admin", {"memo.txt": b"budget memo"}, access="user:bob")
    item = r.json()["items"][0]["id"]
    assert api.client.get(f"/items/{item}", headers=headers).status_code == 404
    assert cli(["keys", "grant", item, "--to", "group:eng", "-c", c]) == 0
    assert api.client.get(f"/items/{item}", headers=headers).status_code == 200
    with pytest.raises(NotFoundError):
        cli(["keys", "grant", "0000000000000000", "--to", "public", "-c", c])

    assert cli(["keys", "list", "-c", c]) == 0
    listing = capsys.readouterr().out
    assert "erin" in listing and token not in listing
    assert cli(["keys", "revoke", made["key_id"], "-c", c]) == 0
    assert api.client.get("/me", headers=headers).status_code == 401
    with pytest.raises(NotFoundError):
        cli(["keys", "revoke", made["key_id"], "-c", c])
    with pytest.raises(InvalidArgumentError):
        cli(["keys", "create", "bad name!", "-c", c])

    assert cli(["keys", "default-access", "public", "-c", c]) == 0
    assert AccessStore(api.coll.path).default_public


def test_every_keys_and_audit_action_answers_json(api: ApiEnv, capsys: pytest.CaptureFixture[str]) -> None:
    c = str(api.coll.path)
    item = api.upload("admin", {"memo.txt": b"budget memo"}).json()["items"][0]["id"]
    capsys.readouterr()

    def out(argv: list[str], code: int = 0) -> Any:
        assert cli([*argv, "--json", "-c", c]) == code
        return json.loads(capsys.readouterr().out)

    made = out(["keys", "create", "erin"])
    with pytest.raises(InvalidArgumentError, match="reserved"):
        cli(["keys", "create", "public", "-c", c])  # "public" in an access list means everyone
    assert out(["keys", "grant", item, item, "--to", "group:eng"]) == {"ids": [item], "access": ["group:eng"]}
    assert out(["keys", "default-access", "private"]) == {"default_access": "private"}
    revoked = out(["keys", "revoke", made["key_id"]])
    assert revoked["revoked"] is True and revoked["key_id"] == made["key_id"] and revoked["revoked_at"]
    assert out(["audit", "--verify"]) == {"intact": True, "problems": []}
    # the key a keys.* entry is about is not the acting key (key_id in API entries): named apart
    assert cli(["audit", "--action", "keys.revoke", "-c", c]) == 0
    assert f"subject_key={made['key_id']}" in capsys.readouterr().out
    purged = out(["audit", "--purge-older-than", "30"])
    assert purged["older_than_days"] == 30 and purged["items_deleted"] == 0
    assert cli(["audit", "--json", "--principal", "nobody", "-c", c]) == 0
    assert capsys.readouterr().out == ""  # JSON lines: no entries, no lines
    with pytest.raises(InvalidArgumentError, match="--since"):
        cli(["audit", "--since", "-1", "-c", c])


def test_audit_cli_filters_and_verifies(api: ApiEnv, capsys: pytest.CaptureFixture[str]) -> None:
    api.upload("admin", {"a.txt": b"orchard apples"}, access="public")
    api.client.post("/search", headers=api.h("alice"), json={"text": "apples"})
    api.client.post("/search", headers=api.h("bob"), json={"text": "pears"})
    c = str(api.coll.path)
    capsys.readouterr()
    assert cli(["audit", "--principal", "bob", "--json", "-c", c]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(e["principal"], e["query"]) for e in lines] == [("bob", "pears")]
    assert cli(["audit", "--action", "search", "-n", "1", "-c", c]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and "pears" in out[0]
    assert cli(["audit", "--verify", "-c", c]) == 0
    assert cli(["audit", "--purge-older-than", "30", "-c", c]) == 0
    assert "0 item(s)" in capsys.readouterr().out


def test_serve_cli_rejects_bad_options(api: ApiEnv, tmp_path: Path) -> None:
    for port in ("-1", "65536"):
        with pytest.raises(InvalidArgumentError, match="--port must be 0-65535"):
            cli(["serve", "-c", str(api.coll.path), "--port", port])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        with pytest.raises(InvalidArgumentError, match=f"port {port} on 127.0.0.1 is in use"):
            cli(["serve", "-c", str(api.coll.path), "--port", port])
    with pytest.raises(InvalidArgumentError):
        cli(["serve", "-c", str(api.coll.path), "--index-root", str(tmp_path / "missing")])
    for days in ("-1", "0", "nan"):
        with pytest.raises(InvalidArgumentError, match="positive number of days"):
            cli(["serve", "-c", str(api.coll.path), "--retention-days", days])
    with pytest.raises(InvalidArgumentError, match="positive number of days"):
        ServeSettings(collection=api.coll.path, retention_days=-3)


def test_key_store_rejects_tampering(tmp_path: Path) -> None:
    store = AccessStore(tmp_path)
    token, info = store.create_key("zoe")
    assert store.authenticate(token).name == "zoe"
    for bad in (None, "", token + "x", token.replace(info.key_id, "f" * 12), "Bearer " + token):
        with pytest.raises(AuthError):
            store.authenticate(bad)
    store.close()


def test_server_retention_setting_purges_and_drops_cached_results(tmp_path: Path) -> None:
    from api_support import make_env

    for env in make_env(tmp_path, retention_days=30):
        r = env.upload("admin", {"old.txt": b"ancient scroll"}, access="public")
        old_id = r.json()["items"][0]["id"]
        ask = {"text": "ancient scroll"}
        assert [h["id"] for h in env.client.post("/search", headers=env.h("alice"), json=ask).json()["hits"]] == [
            old_id
        ]
        env.coll.catalog._db.execute("UPDATE items SET created_at = created_at - 31 * 86400 WHERE id = ?", (old_id,))
        svc = env.client.app.state.service  # type: ignore[attr-defined]
        # the server's first pass ran before it served anything; the next is an hour away
        assert svc.retention()["items_deleted"] == 1
        assert env.client.get(f"/items/{old_id}", headers=env.h("admin")).status_code == 404
        assert env.client.post("/search", headers=env.h("alice"), json=ask).json()["hits"] == []


def test_nothing_past_retention_is_served_after_a_restart(tmp_path: Path) -> None:
    """Items that expired while the server was down are gone before its first answer."""
    import fcntl
    import threading

    from api_support import make_env
    from fastapi.testclient import TestClient

    from xmodal.api import create_app
    from xmodal.collection import LOCK

    for env in make_env(tmp_path, retention_days=30):
        old_id = env.upload("admin", {"old.txt": b"ancient scroll"}, access="public").json()["items"][0]["id"]
        env.upload("admin", {"new.txt": b"fresh scroll"}, access="public")
        env.coll.catalog._db.execute("UPDATE items SET created_at = created_at - 31 * 86400 WHERE id = ?", (old_id,))
        # and an `xmodal index` holds the collection's write lock as the server starts
        lock = open(env.coll.path / LOCK, "a+")  # noqa: SIM115 - released by the timer
        fcntl.flock(lock, fcntl.LOCK_EX)
        threading.Timer(1.5, lock.close).start()
        with TestClient(create_app(env.settings, collection=env.coll)) as restarted:
            hits = restarted.post("/search", headers=env.h("alice"), json={"text": "ancient scroll"}).json()["hits"]
            assert old_id not in [h["id"] for h in hits] and [h["metadata"]["name"] for h in hits] == ["new.txt"]
            assert restarted.get(f"/items/{old_id}", headers=env.h("admin")).status_code == 404


def test_damaged_last_line_does_not_stop_the_log(api: ApiEnv) -> None:
    """A crash or a full disk mid-write leaves a partial last line: searches go on, the next
    entry starts on its own line, and verify reports the damage."""
    for text in ("lake", "river"):
        assert api.client.post("/search", headers=api.h("alice"), json={"text": text}).status_code == 200
    log = AuditLog(api.coll.path)
    assert log.verify() == []
    whole = json.dumps({"seq": 3, "action": "search", "query": "café"}, ensure_ascii=False).encode()
    with open(log.path, "ab") as fh:
        fh.write(whole[: whole.index("é".encode()) + 1])  # cut inside a two-byte character
    r = api.client.post("/search", headers=api.h("alice"), json={"text": "pond"})
    assert r.status_code == 200, r.text
    assert api.client.post("/search", headers=api.h("bob"), json={"text": "sea"}).status_code == 200
    lines = log.path.read_bytes().split(b"\n")
    assert lines[2].startswith(b'{"seq": 3') and not lines[2].endswith(b"}")  # the damaged line, alone
    entries = log.entries()
    assert [e.get("query") for e in entries] == ["lake", "river", "pond", "sea"]
    assert [e["seq"] for e in entries] == [1, 2, 3, 4]
    assert "chain_break" in entries[2] and "chain_break" not in entries[3]
    problems = log.verify()
    assert len(problems) == 2, problems
    assert problems[0].startswith("line 3: damaged") and problems[1].startswith("line 4 (seq 3): chain restarted")
    assert cli(["audit", "--verify", "-c", str(api.coll.path)]) != 0


def test_appends_wait_for_a_purge_in_another_process(tmp_path: Path) -> None:
    """A purge replaces the log file while holding audit.lock; a writer that waited for the
    lock must append to the new file, not to the replaced one."""
    import fcntl
    import os
    import threading

    log = AuditLog(tmp_path)
    log.record("search", "alice", query="old")
    with open(tmp_path / "audit.lock", "a") as other_process:  # another process's purge, mid-way
        fcntl.flock(other_process, fcntl.LOCK_EX)
        writer = threading.Thread(target=log.record, args=("search", "bob"), kwargs={"query": "new"})
        writer.start()
        writer.join(0.3)
        assert writer.is_alive()  # waiting for the purge
        replacement = tmp_path / "audit.jsonl.tmp"
        replacement.write_bytes(log.path.read_bytes())
        os.replace(replacement, log.path)
    writer.join(60)
    assert not writer.is_alive()
    assert [e["query"] for e in log.entries()] == ["old", "new"]
    assert log.verify() == []


def test_long_log_with_non_ascii_entries(tmp_path: Path) -> None:
    """The last line is found by reading back from the end; landing inside a multi-byte
    character there must not break the append."""
    log = AuditLog(tmp_path)
    for i in range(300):  # well past the 64 KiB first read, mostly two-byte characters
        log.record("search", "alice", query="é" * (i % 7 + 150))
    for shift in range(4):  # move the read-back boundary across a character
        log.record("search", "bob", query="x" * shift)
    assert len(log.entries()) == 304
    assert log.verify() == []


def test_shutdown_waits_for_a_running_retention_pass(tmp_path: Path) -> None:
    """Cancelling the retention task does not stop a pass already in its worker thread; closing
    the service must not pull the access store from under it."""
    import threading

    from api_support import make_env

    for env in make_env(tmp_path, retention_days=30):
        svc = env.client.app.state.service  # type: ignore[attr-defined]
        started, seen = threading.Event(), []

        def running_pass(svc: Any, started: threading.Event, seen: list[int]) -> None:
            with svc.lock:  # as Service.retention holds it
                started.set()
                time.sleep(0.3)
                seen.append(svc.store.acl_version)  # the store is still open

        worker = threading.Thread(target=running_pass, args=(svc, started, seen))
        worker.start()
        started.wait()
        svc.close()
        worker.join()
        assert len(seen) == 1
