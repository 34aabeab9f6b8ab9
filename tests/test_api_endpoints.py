"""The REST API's endpoints on a collection with a tiny deterministic encoder."""

from __future__ import annotations

from pathlib import Path

from api_support import ApiEnv, api, png_bytes, wav_bytes

from xmodal.access.audit import AuditFilter, AuditLog

__all__ = ["api"]


def _names(resp) -> list[str]:  # type: ignore[no-untyped-def]
    assert resp.status_code == 200, resp.text
    return [Path(h["uri"]).name for h in resp.json()["hits"]]


def _seed(api: ApiEnv) -> dict[str, str]:
    r = api.upload(
        "admin",
        {
            "red.png": png_bytes((240, 20, 20)),
            "blue.png": png_bytes((20, 20, 240)),
            "report.txt": b"quarterly sales report for the european market",
            "recipe.txt": b"a recipe for tomato soup with basil",
            "tone.wav": wav_bytes(440),
        },
        access="public",
        team="demo",
    )
    assert r.status_code == 201, r.text
    return {x["name"]: x["id"] for x in r.json()["items"]}


def test_text_search_returns_cli_hit_shape_with_preview_url(api: ApiEnv) -> None:
    _seed(api)
    r = api.client.post("/search", headers=api.h("alice"), json={"text": "tomato soup", "k": 2})
    assert _names(r)[0] == "recipe.txt"
    hit = r.json()["hits"][0]
    cli_shape = {"id", "uri", "modality", "score", "metadata", "start", "end", "page", "matched", "snippet"}
    assert set(hit) == cli_shape | {"preview_url"}
    assert hit["metadata"]["team"] == "demo"
    assert len(r.json()["hits"]) == 2
    preview = api.client.get(hit["preview_url"])
    assert preview.status_code == 200
    assert "tomato" in preview.text


def test_get_search_and_filters(api: ApiEnv) -> None:
    _seed(api)
    r = api.client.get("/search", headers=api.h("bob"), params={"q": "sales report", "k": 10, "modality": "text"})
    names = _names(r)
    assert names[0] == "report.txt"
    assert set(names) == {"report.txt", "recipe.txt"}
    r = api.client.post(
        "/search", headers=api.h("bob"), json={"text": "sales", "k": 10, "where": {"name": ["red.png", "tone.wav"]}}
    )
    assert set(_names(r)) == {"red.png", "tone.wav"}


def test_keyword_and_hybrid_search_in_every_request_form(api: ApiEnv) -> None:
    _seed(api)
    r = api.client.post("/search", headers=api.h("alice"), json={"text": "european", "mode": "keyword"})
    assert _names(r) == ["report.txt"] and r.json()["mode"] == "keyword"
    assert r.json()["hits"][0]["snippet"] == "quarterly sales report for the european market"
    r = api.client.get("/search", headers=api.h("bob"), params={"q": "basil soup", "mode": "keyword"})
    assert _names(r) == ["recipe.txt"]
    r = api.client.post("/search", headers=api.h("bob"), data={"text": "tomato", "mode": "hybrid", "k": "3"})
    assert _names(r)[0] == "recipe.txt" and r.json()["mode"] == "hybrid"
    assert r.json()["hits"][0]["score"] == round(2 / 61, 6)  # first by its words and by meaning
    r = api.client.post("/search", headers=api.h("alice"), json={"text": "tomato", "mode": "dense"})
    assert r.json()["mode"] == "dense" and _names(r)[0] == "recipe.txt"
    # the same words in another mode are another result list, not a cached one
    r = api.client.post("/search", headers=api.h("alice"), json={"text": "tomato", "mode": "keyword"})
    assert _names(r) == ["recipe.txt"] and r.json()["mode"] == "keyword"
    searches = AuditLog(api.coll.path).entries(AuditFilter(principal="alice"))
    assert [e["mode"] for e in searches if e["action"] == "search"][-2:] == ["dense", "keyword"]


def test_image_query_finds_similar_images_and_thumbnail(api: ApiEnv) -> None:
    _seed(api)
    r = api.client.post(
        "/search", headers=api.h("alice"), files={"image": ("q.png", png_bytes((200, 40, 30)), "image/png")},
        data={"k": "5", "modality": "image"},
    )  # fmt: skip
    assert _names(r) == ["red.png", "blue.png"]
    thumb = api.client.get(r.json()["hits"][0]["preview_url"])
    assert thumb.status_code == 200
    assert thumb.headers["content-type"] == "image/jpeg"
    assert thumb.content[:3] == b"\xff\xd8\xff"


def test_audio_query_and_audio_preview_supports_ranges(api: ApiEnv) -> None:
    _seed(api)
    r = api.client.post(
        "/search", headers=api.h("alice"), files={"audio": ("q.wav", wav_bytes(440, 0.3), "audio/wav")}, data={"k": "1"}
    )
    assert _names(r) == ["tone.wav"]
    hit = r.json()["hits"][0]
    assert hit["start"] == 0.0
    full = api.client.get(hit["preview_url"])
    assert full.status_code == 200 and full.content[:4] == b"RIFF"
    part = api.client.get(hit["preview_url"], headers={"Range": "bytes=0-99"})
    assert part.status_code == 206
    assert part.content == full.content[:100]
    tail = api.client.get(hit["preview_url"], headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == full.content[-10:]
    size = len(full.content)
    # bad ranges get the API's JSON errors, not plain text or an empty body
    cases = [
        ("bytes=5-2", 400),
        ("pages=0-1", 400),
        ("bytes=x-", 400),
        (f"bytes=0-1,{size}-", 416),
        (f"bytes={size}-", 416),
    ]
    for header, status in cases:
        bad = api.client.get(hit["preview_url"], headers={"Range": header})
        assert bad.status_code == status and bad.json()["error"]["status"] == status, header
    assert bad.headers["content-range"] == f"bytes */{size}"


def test_get_item_and_delete_purges_everything(api: ApiEnv) -> None:
    ids = _seed(api)
    red = ids["red.png"]
    item = api.client.get(f"/items/{red}", headers=api.h("alice"))
    assert item.status_code == 200 and item.json()["modality"] == "image"
    assert "access" not in item.json()  # only admins see access lists
    assert api.client.get(f"/items/{red}", headers=api.h("admin")).json()["access"] == ["public"]
    before = api.client.post("/search", headers=api.h("alice"), json={"text": "x", "k": 10, "modality": "image"})
    assert "red.png" in _names(before)
    preview_url = before.json()["hits"][0]["preview_url"]
    assert api.client.get(preview_url).status_code == 200
    thumbs = list((api.coll.path / "previews").glob(f"{red}-*.jpg"))
    assert thumbs
    uri = Path(item.json()["uri"])
    assert uri.is_file()

    assert api.client.delete(f"/items/{red}", headers=api.h("alice")).status_code == 403
    svc = api.client.app.state.service  # type: ignore[attr-defined]
    assert any(h.id == red for hits in svc.results._data.values() for h in hits)
    r = api.client.delete(f"/items/{red}", headers=api.h("admin"))
    assert r.status_code == 200 and r.json()["deleted"] == 1
    assert not any(h.id == red for hits in svc.results._data.values() for h in hits)  # purged from the cache
    after = api.client.post("/search", headers=api.h("alice"), json={"text": "x", "k": 10, "modality": "image"})
    assert "red.png" not in _names(after)  # same query: the cached result was not served
    assert api.client.get(f"/items/{red}", headers=api.h("admin")).status_code == 404
    assert not any(thumbs[0].parent.glob(f"{red}-*.jpg"))
    assert not uri.exists()
    assert api.client.delete(f"/items/{red}", headers=api.h("admin")).status_code == 404


def test_index_server_side_paths(api: ApiEnv) -> None:
    folder = api.root / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("penguins live in antarctica")
    (folder / "b.txt").write_text("camels live in the desert")
    r = api.client.post("/index", headers=api.h("admin"), json={"paths": ["docs"], "access": ["group:eng"]})
    assert r.status_code == 201, r.text
    assert r.json()["report"]["added"] == 2
    assert _names(api.client.post("/search", headers=api.h("alice"), json={"text": "penguins"}))[0] == "a.txt"
    assert _names(api.client.post("/search", headers=api.h("bob"), json={"text": "penguins"})) == []
    r = api.client.post("/index", headers=api.h("alice"), json={"paths": ["docs"]})
    assert r.status_code == 403


def test_healthz_me_docs_and_page(api: ApiEnv) -> None:
    assert api.client.get("/healthz").json()["status"] == "ok"
    assert api.client.get("/me", headers=api.h("carol")).json()["groups"] == ["eng", "sales"]
    docs = api.client.get("/docs")
    assert docs.status_code == 200
    assert "cdn" not in docs.text.lower()
    assert api.client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    spec = api.client.get("/openapi.json").json()
    paths = {"/search", "/items", "/index", "/items/{item_id}", "/items/{item_id}/preview", "/healthz", "/metrics"}
    assert paths <= set(spec["paths"])
    page = api.client.get("/")
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert "http://" not in page.text and "https://" not in page.text  # nothing from a CDN
    for asset in ("/static/app.js", "/static/style.css"):
        body = api.client.get(asset)
        assert body.status_code == 200
        assert "https://" not in body.text


def test_metrics_report_latency_stages_cache_and_errors(api: ApiEnv) -> None:
    _seed(api)
    for _ in range(3):
        api.client.post("/search", headers=api.h("alice"), json={"text": "tomato soup"})
    api.client.post("/search", headers=api.h("alice"), json={"text": "tomato soup", "k": 0})
    r = api.client.get("/metrics", headers=api.h("alice"))
    assert r.status_code == 403 and "only admins may read the metrics" in r.text
    text = api.client.get("/metrics", headers=api.h("admin")).text
    assert 'xmodal_request_seconds_count{endpoint="/search",method="POST"} 4.0' in text
    for stage in ("encode", "search", "fetch"):
        assert f'xmodal_stage_seconds_count{{stage="{stage}"}}' in text
    assert 'xmodal_cache_requests_total{cache="results",result="hit"} 2.0' in text
    assert 'xmodal_cache_requests_total{cache="results",result="miss"} 1.0' in text
    assert "xmodal_index_items 5.0" in text
    assert 'xmodal_errors_total{endpoint="/search",type="InvalidArgumentError"} 1.0' in text
    assert 'xmodal_responses_total{endpoint="/search",method="POST",status="400"} 1.0' in text


def test_models_load_once_per_process(tmp_path: Path) -> None:
    from api_support import FakeEncoder, make_env

    for env in make_env(tmp_path):
        made = FakeEncoder.made
        _seed(env)
        for i in range(5):
            env.client.post("/search", headers=env.h("alice"), json={"text": f"query {i}"})
        env.client.post("/search", headers=env.h("bob"), files={"image": ("q.png", png_bytes((1, 2, 3)), "image/png")})
        assert FakeEncoder.made == made


def test_items_indexed_by_another_process_appear_without_restart(api: ApiEnv) -> None:
    """`xmodal index` in a second process while the server runs: the server picks it up."""
    from xmodal.collection import Collection

    _seed(api)
    folder = api.root / "later"
    folder.mkdir()
    (folder / "lighthouse.txt").write_text("the lighthouse keeper logbook", encoding="utf-8")
    other = Collection.open(api.coll.path, registry=api.coll.registry)
    other.add([folder])
    other.close()
    r = api.client.post("/search", headers=api.h("admin"), json={"text": "lighthouse keeper", "k": 1})
    assert _names(r) == ["lighthouse.txt"]


def test_search_follows_a_reembed_by_another_process(tmp_path: Path) -> None:
    """`xmodal index --reembed --model ...` while the server runs: queries (and the query-vector
    cache) move to the new model with the stored vectors, instead of mixing the two."""
    from api_support import FAKE_MODEL, FakeEncoder, fake_registry, make_env

    from xmodal.collection import Collection

    class Reversed(FakeEncoder):
        """Another model: every word spelled backwards before hashing."""

        def __init__(self) -> None:
            super().__init__()
            self.space = "fake-reversed"

        def encode_batch(self, modality, inputs):  # type: ignore[no-untyped-def]
            if modality.value == "text":
                inputs = [" ".join(w[::-1] for w in str(t).lower().split()) for t in inputs]
            return super().encode_batch(modality, inputs)

    reg = fake_registry()
    reg.register("reversed", lambda ref: Reversed())
    for env in make_env(tmp_path, registry=reg):
        _seed(env)
        ask = {"text": "tomato soup"}
        assert _names(env.client.post("/search", headers=env.h("alice"), json=ask))[0] == "recipe.txt"
        other = FAKE_MODEL.__class__(
            text="reversed", photo=None, image="reversed", audio="reversed", ocr=None, asr=None
        )
        Collection.open(env.coll.path, registry=reg, model=other, reembed=True).close()
        for text, first in (("tomato soup", "recipe.txt"), ("quarterly sales report", "report.txt")):
            hits = _names(env.client.post("/search", headers=env.h("alice"), json={"text": text}))
            assert hits[0] == first, hits
        assert env.coll.config.model.text == "reversed"

        # a re-embed by another install whose "reversed" model is another version: the server's
        # own copy cannot make those vectors, which is a 409 naming the change, not wrong hits
        class ReversedV2(Reversed):
            def __init__(self) -> None:
                super().__init__()
                self.version = "2"

        newer = fake_registry()
        newer.register("reversed", lambda ref: ReversedV2())
        Collection.open(env.coll.path, registry=newer, reembed=True).close()
        r = env.client.post("/search", headers=env.h("alice"), json={"text": "basil soup"})
        assert r.status_code == 409 and "encoder changed: fake 2 -> fake 1" in r.json()["error"]["message"], r.text
