"""Every bad input answers a 4xx JSON error that says what was wrong, and the server keeps
serving afterwards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_support import ApiEnv, bomb_png, make_env, png_bytes

from xmodal.access.store import AccessStore


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ApiEnv]:
    yield from make_env(tmp_path, max_upload_bytes=256 * 1024)


def assert_error(resp: Any, status: int, *words: str) -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    err = resp.json()["error"]
    assert err["status"] == status
    for word in words:
        assert word.lower() in err["message"].lower(), err["message"]


@pytest.fixture(autouse=True)
def still_serving(api: ApiEnv) -> Iterator[None]:
    r = api.upload("admin", {"doc.txt": b"a calm lake at dawn"}, access="public")
    assert r.status_code == 201, r.text
    yield
    r = api.client.post("/search", headers=api.h("alice"), json={"text": "lake", "k": 1})
    assert r.status_code == 200 and r.json()["hits"][0]["metadata"]["name"] == "doc.txt"


def test_no_key(api: ApiEnv) -> None:
    assert_error(api.client.post("/search", json={"text": "lake"}), 401, "api key is required")
    assert api.client.post("/search", json={"text": "lake"}).headers["www-authenticate"] == "Bearer"


def test_wrong_and_malformed_key(api: ApiEnv) -> None:
    good = api.keys["alice"]
    wrong = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    assert_error(api.client.post("/search", headers={"X-API-Key": wrong}, json={"text": "x"}), 401, "invalid")
    assert_error(api.client.post("/search", headers={"X-API-Key": "letmein"}, json={"text": "x"}), 401, "malformed")
    unknown = "xmk_000000000000_" + "a" * 43
    assert_error(api.client.post("/search", headers={"X-API-Key": unknown}, json={"text": "x"}), 401, "invalid")


def test_revoked_key(api: ApiEnv) -> None:
    store = AccessStore(api.coll.path)
    token, info = store.create_key("dave")
    headers = {"Authorization": f"Bearer {token}"}
    assert api.client.post("/search", headers=headers, json={"text": "lake"}).status_code == 200
    store.revoke(info.key_id)
    assert_error(api.client.post("/search", headers=headers, json={"text": "lake"}), 401, "revoked")
    store.close()


def test_upload_over_size_limit(api: ApiEnv) -> None:
    big = b"x" * (300 * 1024)
    assert_error(api.upload("admin", {"big.txt": big}), 413, "limit")

    def chunks() -> Iterator[bytes]:  # no Content-Length: streamed, still refused
        for _ in range(40):
            yield b"y" * 10_000

    r = api.client.post("/search", headers={**api.h("alice"), "Content-Type": "application/json"}, content=chunks())
    assert_error(r, 413, "limit")


def test_wrong_content_type(api: ApiEnv) -> None:
    r = api.client.post("/search", headers={**api.h("alice"), "Content-Type": "text/xml"}, content=b"<q>lake</q>")
    assert_error(r, 415, "content-type")
    r = api.upload("admin", {"archive.zip": b"PK\x03\x04" + b"\x00" * 200})
    assert_error(r, 415, "archive.zip")
    broken_png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 20
    r = api.upload("admin", {"a.zip": b"PK\x03\x04" + b"\x00" * 200, "ok.txt": b"fine words", "b.png": broken_png})
    assert_error(r, 415, "2 of 3 files are not usable", "a.zip", "b.png")  # every bad file named
    r = api.client.post(
        "/search", headers=api.h("alice"), files={"image": ("q.png", b"this is not a png", "image/png")}
    )
    assert_error(r, 400, "not usable")
    r = api.client.post("/search", headers=api.h("alice"), files=[("text", (None, "lake")), ("text", (None, "sea"))])
    assert_error(r, 400, "'text' is given more than once")
    r = api.client.post("/index", headers={**api.h("admin"), "Content-Type": "text/plain"}, content=b"docs")
    assert_error(r, 415, "content-type")


def test_decompression_bomb(api: ApiEnv) -> None:
    bomb = bomb_png()
    assert len(bomb) < 256 * 1024
    r = api.upload("admin", {"bomb.png": bomb})
    assert_error(r, 413, "bomb.png", "pixels")
    assert not list((api.settings.upload_root).glob("*/bomb.png"))  # nothing kept
    r = api.client.post("/search", headers=api.h("alice"), files={"image": ("q.png", bomb, "image/png")})
    assert_error(r, 400, "pixels")


def test_malformed_json_and_multipart(api: ApiEnv) -> None:
    hdr = {**api.h("alice"), "Content-Type": "application/json"}
    assert_error(api.client.post("/search", headers=hdr, content=b'{"text": "lake", '), 400, "malformed json")
    assert_error(api.client.post("/search", headers=hdr, content=b'["lake"]'), 400, "object")
    assert_error(api.client.post("/search", headers=hdr, content=json.dumps({"text": 5})), 400, "string")
    bad = {**api.h("admin"), "Content-Type": "multipart/form-data; boundary=XYZ"}
    r = api.client.post("/items", headers=bad, content=b"--XYZ\r\nContent-Disposition: form-data\r\n\r\nbroken")
    assert 400 <= r.status_code < 500 and "error" in r.json()
    r = api.client.post("/items", headers={**api.h("admin"), "Content-Type": "multipart/form-data"}, content=b"x")
    assert 400 <= r.status_code < 500 and "error" in r.json()
    r = api.upload("admin", {"ok.txt": b"fine text"}, access="public")
    assert r.status_code == 201
    r = api.client.post(
        "/items", headers=api.h("admin"), files=[("files", ("a.txt", b"text", "text/plain"))], data={"metadata": "{x"}
    )
    assert_error(r, 400, "metadata", "json")
    r = api.client.post("/search", headers=api.h("alice"), data={"text": "lake", "where": "[1"})
    assert_error(r, 400, "where")


def test_deeply_nested_json(api: ApiEnv) -> None:
    """json.loads raises RecursionError (not ValueError) on deep nesting: still a 400."""
    deep = "[" * 20_000  # Python gives up at ~1,000 levels
    hdr = {**api.h("alice"), "Content-Type": "application/json"}
    assert_error(api.client.post("/search", headers=hdr, content=deep), 400, "too deeply nested")
    nested = '{"text": "lake", "where": {"a": ' + deep + "}"
    assert_error(api.client.post("/search", headers=hdr, content=nested), 400, "too deeply nested")
    # 3,000 levels still fit in a request line a server accepts (and exceed Python's limit).
    r = api.client.get("/search", headers=api.h("alice"), params={"q": "lake", "where": "[" * 3000})
    assert_error(r, 400, "where", "too deeply nested")
    r = api.client.post("/search", headers=api.h("alice"), data={"text": "lake", "where": deep})
    assert_error(r, 400, "where", "too deeply nested")
    r = api.client.post(
        "/items", headers=api.h("admin"), files=[("files", ("a.txt", b"text", "text/plain"))], data={"metadata": deep}
    )
    assert_error(r, 400, "metadata", "too deeply nested")
    admin = {**api.h("admin"), "Content-Type": "application/json"}
    assert_error(api.client.post("/index", headers=admin, content=deep), 400, "too deeply nested")


@pytest.mark.parametrize(
    "body",
    [
        b'{"text": "lake \\ud800"}',  # a lone surrogate: no file, database or tokenizer takes it
        b'{"text": "lake", "where": {"name": "\\udc00x"}}',
        b'{"text": "lake", "where": {"name": NaN}}',  # no JSON response could carry NaN back
        b'{"text": "lake", "where": {"name": 1e999}}',
        b'{"text": "lake", "k": -Infinity}',
    ],
)
def test_json_that_python_accepts_but_nothing_downstream_can(api: ApiEnv, body: bytes) -> None:
    hdr = {**api.h("alice"), "Content-Type": "application/json"}
    assert_error(api.client.post("/search", headers=hdr, content=body), 400, "request body")


def test_strict_json_in_uploads_and_index_requests(api: ApiEnv) -> None:
    files = [("files", ("a.txt", b"some text", "text/plain"))]
    r = api.client.post("/items", headers=api.h("admin"), files=files, data={"metadata": '{"score": NaN}'})
    assert_error(r, 400, "metadata", "nan")
    r = api.client.post("/items", headers=api.h("admin"), files=files, data={"metadata": '{"who": "\\ud83d"}'})
    assert_error(r, 400, "metadata", "surrogate")
    (api.root / "f.txt").write_text("shared text")
    admin = {**api.h("admin"), "Content-Type": "application/json"}
    for body in (b'{"paths": ["\\ud800"]}', b'{"paths": ["f.txt"], "metadata": {"a": "\\udfff"}}'):
        assert_error(api.client.post("/index", headers=admin, content=body), 400, "surrogate")
    paired = '{"paths": ["f.txt"], "metadata": {"mood": "\\ud83d\\ude00"}}'  # a valid pair is fine
    r = api.client.post("/index", headers=admin, content=paired)
    assert r.status_code == 201, r.text
    item = api.client.get(f"/items/{r.json()['items'][0]['id']}", headers=api.h("admin")).json()
    assert item["metadata"]["mood"] == "\U0001f600"


def test_bad_index_access_and_paths(api: ApiEnv) -> None:
    (api.root / "f.txt").write_text("shared text")
    for access in (5, True, {"group:eng": 1}, [["public"]]):
        r = api.client.post("/index", headers=api.h("admin"), json={"paths": ["f.txt"], "access": access})
        assert_error(r, 400, "access")
    r = api.client.post("/index", headers=api.h("admin"), json={"paths": ["a" * 300]})  # name too long
    assert_error(r, 400, "cannot be used")


@pytest.mark.parametrize("k", [0, -1, 10**9, "ten", 2.5, True])
def test_bad_k(api: ApiEnv, k: Any) -> None:
    r = api.client.post("/search", headers=api.h("alice"), json={"text": "lake", "k": k})
    assert_error(r, 400, "k must")


def test_bad_k_in_query_string_and_form(api: ApiEnv) -> None:
    assert_error(api.client.get("/search", headers=api.h("alice"), params={"q": "lake", "k": "0"}), 400, "k must")
    assert_error(api.client.get("/search", headers=api.h("alice"), params={"q": "lake", "k": "x"}), 400, "k")
    r = api.client.post("/search", headers=api.h("alice"), data={"text": "lake", "k": "1000000000"})
    assert_error(r, 400, "k must")


def test_unknown_filter_fields_and_bad_modality(api: ApiEnv) -> None:
    r = api.client.post("/search", headers=api.h("alice"), json={"text": "lake", "where": {"colour": "red"}})
    assert_error(r, 400, "unknown filter field 'colour'")
    r = api.client.post("/search", headers=api.h("alice"), json={"text": "lake", "where": {"a;drop": "x"}})
    assert_error(r, 400, "invalid metadata key")
    r = api.client.post("/search", headers=api.h("alice"), json={"text": "lake", "where": {"name": {"$ne": 1}}})
    assert_error(r, 400, "filter")
    r = api.client.post("/search", headers=api.h("alice"), json={"text": "lake", "unknown": 1})
    assert_error(r, 400, "unknown field")
    r = api.client.post("/search", headers=api.h("alice"), json={"text": "lake", "modality": "video"})
    assert_error(r, 400, "modality")


def test_bad_search_modes(api: ApiEnv) -> None:
    r = api.client.post("/search", headers=api.h("alice"), json={"text": "lake", "mode": "fuzzy"})
    assert_error(r, 400, "unknown search mode 'fuzzy'")
    r = api.client.post("/search", headers=api.h("alice"), json={"text": "lake", "mode": 3})
    assert_error(r, 400, "search mode")
    r = api.client.get("/search", headers=api.h("alice"), params={"q": "?!", "mode": "keyword"})
    assert_error(r, 400, "no words to match")
    files = {"image": ("q.png", png_bytes((1, 2, 3)), "image/png")}
    r = api.client.post("/search", headers=api.h("alice"), data={"mode": "keyword"}, files=files)
    assert_error(r, 400, "text query")
    r = api.client.post("/search", headers=api.h("alice"), data={"text": " ", "mode": "hybrid"})
    assert_error(r, 400, "query")
    r = api.client.post("/search", headers=api.h("alice"), data={"text": "lake", "mode": ["a", "b"]})
    assert_error(r, 400, "more than once")


def test_path_traversal_in_index_paths(api: ApiEnv, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("the secret password")
    (api.root / "link").symlink_to(tmp_path)
    hdr = api.h("admin")
    for path in ["../secret.txt", str(secret), "link/secret.txt", "../../../../etc/passwd", "a\x00b"]:
        r = api.client.post("/index", headers=hdr, json={"paths": [path]})
        assert 400 <= r.status_code < 500, (path, r.text)
        assert "error" in r.json()
    assert_error(api.client.post("/index", headers=hdr, json={"paths": ["../secret.txt"]}), 403, "outside")
    assert_error(api.client.post("/index", headers=hdr, json={"paths": ["nope"]}), 404, "no such")
    assert_error(api.client.post("/index", headers=hdr, json={"paths": "docs"}), 400, "paths")
    (api.root / "inner").mkdir()
    (api.root / "inner" / "escape").symlink_to(tmp_path)  # a link inside a folder: not indexed, reported
    (api.root / "inner" / "gone").symlink_to(api.root / "inner" / "nowhere")  # a broken link
    (api.root / "inner" / "ok.txt").write_text("a fine file")
    r = api.client.post("/index", headers=hdr, json={"paths": ["inner"]})
    assert r.status_code == 201
    assert [x["name"] for x in r.json()["items"]] == ["ok.txt"]
    failures = {Path(f["path"]).name: f["reason"] for f in r.json()["report"]["failures"]}
    assert set(failures) == {"escape", "gone"} and "outside the index root" in failures["escape"]
    assert "broken" in failures["gone"] or "no such" in failures["gone"]
    r = api.client.post("/search", headers=hdr, json={"text": "secret password", "k": 10})
    assert all("secret" not in h["uri"] for h in r.json()["hits"])


@pytest.mark.parametrize("item_id", ["..%2F..%2Fetc%2Fpasswd", "../../etc/passwd", "ABCDEF0123456789", "12", "%00"])
def test_path_traversal_in_item_ids(api: ApiEnv, item_id: str) -> None:
    for url in (f"/items/{item_id}", f"/items/{item_id}/preview"):
        r = api.client.get(url, headers=api.h("admin"))
        assert 400 <= r.status_code < 500, (url, r.status_code)
        assert "error" in r.json()
    r = api.client.get("/items/ABCDEF0123456789", headers=api.h("admin"))
    assert_error(r, 400, "16 lowercase hex")


def test_one_megabyte_query(api: ApiEnv) -> None:
    huge = "lake " * 200_000  # 1 MB: over this server's body limit
    assert_error(api.client.post("/search", headers=api.h("alice"), json={"text": huge}), 413, "limit")
    long = "lake " * 4000  # under the body limit, over the query limit
    assert_error(api.client.post("/search", headers=api.h("alice"), json={"text": long}), 400, "limit")
    r = api.client.post("/search", headers=api.h("alice"), data={"text": huge})
    assert 400 <= r.status_code < 500 and "error" in r.json()
    assert_error(api.client.get("/search", headers=api.h("alice"), params={"q": long[:12_000]}), 400, "limit")


def test_empty_and_double_queries(api: ApiEnv) -> None:
    assert_error(api.client.post("/search", headers=api.h("alice"), json={"text": "   "}), 400, "empty")
    r = api.client.post(
        "/search", headers=api.h("alice"), data={"text": "lake"}, files={"image": ("q.png", png_bytes((1, 2, 3)))}
    )
    assert_error(r, 400, "exactly one")


def test_non_admin_cannot_ingest(api: ApiEnv) -> None:
    assert_error(api.upload("alice", {"x.txt": b"text"}), 403, "not an admin")


def test_bad_access_lists(api: ApiEnv) -> None:
    assert_error(api.upload("admin", {"x.txt": b"text"}, access="role:boss"), 400, "access entry")
    assert_error(api.upload("admin", {"x.txt": b"text"}, access="user:../../x"), 400, "invalid user name")


def test_bad_preview_signatures(api: ApiEnv) -> None:
    hit = api.client.post("/search", headers=api.h("alice"), json={"text": "lake"}).json()["hits"][0]
    url = hit["preview_url"]
    assert api.client.get(url).status_code == 200
    assert_error(api.client.get(url[:-1] + ("1" if url.endswith("0") else "0")), 401, "signature")
    assert_error(api.client.get(url.replace("exp=", "exp=1")), 401, "signature")
    assert_error(api.client.get(url.replace("exp=", "exp=x")), 401, "malformed")
    assert_error(api.client.get(url[:-1] + "é"), 401, "malformed")  # compare_digest: ASCII only
    other = api.client.post("/search", headers=api.h("bob"), json={"text": "lake"}).json()["hits"][0]["preview_url"]
    assert api.client.get(other).status_code == 200


def test_unknown_endpoint_is_json(api: ApiEnv) -> None:
    assert_error(api.client.get("/nope"), 404, "no such endpoint")
    assert_error(api.client.put("/search", headers=api.h("alice")), 405, "method")


def test_odd_upload_names_keep_their_letters_and_extension(api: ApiEnv) -> None:
    long_name = "квартальный отчёт " * 30 + ".txt"
    r = api.upload(
        "admin",
        {"фото отпуска.png": png_bytes((240, 20, 20)), long_name: b"quarterly revenue", "../../evil.txt": b"x y"},
        access="public",
    )
    assert r.status_code == 201, r.text
    names = sorted(x["name"] for x in r.json()["items"])
    assert names[0] == "evil.txt" and names[2] == "фото_отпуска.png"
    assert names[1].endswith(".txt") and names[1].startswith("квартальный_отчёт_") and len(names[1].encode()) <= 150
    root = api.client.app.state.service.settings.upload_root  # type: ignore[attr-defined]
    modality = {}
    for item in r.json()["items"]:
        got = api.client.get(f"/items/{item['id']}", headers=api.h("admin")).json()
        assert Path(got["uri"]).parent.parent == root  # nothing escaped the upload folder
        modality[item["name"]] = got["modality"]
    assert modality["фото_отпуска.png"] == "image" and modality[names[1]] == "text"


@pytest.mark.parametrize(
    ("given", "stored"),
    [(None, "upload"), ("", "upload"), ("C:\\photos\\cat.JPG", "cat.JPG"), (".bashrc", "bashrc"),
     ("a b\x00c.txt", "a_b_c.txt"), ("x.", "x"), ("日本" * 100 + ".wav", "日本" * 24 + ".wav"),
     ("हिन्दी.txt", "हिन्दी.txt"), ("cafe\u0301.png", "caf\u00e9.png"), ("_.png", "upload.png")],
)  # fmt: skip
def test_safe_upload_name(given: str | None, stored: str) -> None:
    from xmodal.api.routes import safe_upload_name

    assert safe_upload_name(given) == stored
