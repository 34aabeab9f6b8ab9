"""Access control: several principals, randomised items and access lists, randomised queries.
Each principal gets exactly the top-k of the items it may see (worked out here independently),
and nothing about other items leaks: not in hits, item reads, previews, errors, or caches."""

from __future__ import annotations

import functools
import json
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from api_support import ApiEnv, api, png_bytes, wav_bytes

from xmodal.access.store import AccessStore

__all__ = ["api"]

WORDS = ["river", "mountain", "castle", "violin", "harbour", "desert", "orchard", "lantern", "glacier", "meadow"]
PRINCIPALS = {"alice": {"eng"}, "bob": {"sales"}, "carol": {"eng", "sales"}}
ENTRY_CHOICES = ["public", "user:alice", "user:bob", "user:carol", "group:eng", "group:sales", "user:zed"]


def _random_items(rng: random.Random, n: int) -> list[dict[str, Any]]:
    items = []
    for i in range(n):
        kind = rng.choice(["text", "text", "image", "audio"])
        if kind == "text":
            name, data = f"doc{i}.txt", " ".join(rng.choices(WORDS, k=rng.randint(2, 6))).encode()
        elif kind == "image":
            colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
            name, data = f"img{i}.png", png_bytes(colour, (8 + i % 5, 8))
        else:
            name, data = f"snd{i}.wav", wav_bytes(rng.choice([220, 440, 880, 1320]) + i, 0.2)
        roll = rng.random()
        # No list (None): the collection's default policy decides.
        access = None if roll < 0.2 else sorted(set(rng.sample(ENTRY_CHOICES, rng.randint(1, 2))))
        items.append({"name": name, "data": data, "access": access, "shade": rng.choice(["light", "dark"])})
    return items


def _may_see(who: str, access: list[str] | None, default_public: bool) -> bool:
    if who == "admin":
        return True
    if access is None:
        return default_public
    tokens = {"public", f"user:{who}"} | {f"group:{g}" for g in PRINCIPALS[who]}
    return bool(tokens & set(access))


def _ingest(api: ApiEnv, items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    by_id = {}
    for item in items:
        r = api.upload(
            "admin", {item["name"]: item["data"]},
            access=",".join(item["access"]) if item["access"] is not None else None, shade=item["shade"],
        )  # fmt: skip
        assert r.status_code == 201, r.text
        (made,) = r.json()["items"]
        item["id"] = made["id"]
        by_id[made["id"]] = item
    return by_id


def _random_query(rng: random.Random) -> tuple[dict[str, Any], dict[str, Any] | None]:
    k = rng.choice([1, 3, 5, 10, 40])
    fields: dict[str, Any] = {"k": str(k)}
    if rng.random() < 0.3:
        fields["modality"] = rng.choice(["text", "image", "audio"])
    if rng.random() < 0.3:
        fields["where"] = json.dumps({"shade": rng.choice(["light", "dark"])})
    roll = rng.random()
    if roll < 0.6:
        fields["text"] = " ".join(rng.sample(WORDS, 2))
        # keyword scores come from the statistics of what the principal may see (checked by
        # hand below); hybrid fuses the principal's own keyword and dense lists
        fields["mode"] = rng.choice(["dense", "dense", "keyword", "hybrid"])
        return fields, None
    if roll < 0.85:
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        return fields, {"image": ("q.png", png_bytes(colour), "image/png")}
    return fields, {"audio": ("q.wav", wav_bytes(rng.choice([220, 440, 880]), 0.2), "audio/wav")}


def _check_round(api: ApiEnv, rng: random.Random, by_id: dict[str, dict[str, Any]], default_public: bool) -> int:
    checked = 0
    filtered_nonempty = keyword_nonempty = 0
    for _ in range(25):
        fields, files = _random_query(rng)
        full = api.client.post("/search", headers=api.h("admin"), data={**fields, "k": "1000"}, files=files)
        assert full.status_code == 200, full.text
        ranking = [(h["id"], h["score"]) for h in full.json()["hits"]]
        k = int(fields["k"])
        for who in [*rng.sample(list(PRINCIPALS), len(PRINCIPALS)), "admin"]:
            r = api.client.post("/search", headers=api.h(who), data=fields, files=files)
            assert r.status_code == 200, r.text
            hits = r.json()["hits"]
            if fields.get("mode") == "keyword":
                sees = functools.partial(_sees, by_id, who, default_public)
                ranking = _bm25_ranking(by_id, fields, sees)
            allowed = [(i, s) for i, s in ranking if _may_see(who, by_id[i]["access"], default_public)]
            got = [h["id"] for h in hits]
            leaked = [i for i in got if not _may_see(who, by_id[i]["access"], default_public)]
            assert leaked == [], f"{who} saw {leaked}"
            checked += 1
            if fields.get("mode") == "hybrid":
                assert len(got) == min(k, len(allowed)), (who, fields)
                _check_fusion(api, who, fields, hits)
                continue
            expected = allowed[:k]
            assert len(got) == len(expected), (who, fields)  # the full top-k of what it may see
            # Same items, allowing ties at the cut-off score.
            cut = expected[-1][1] if expected else None
            sure = {i for i, s in expected if cut is None or s > cut + 1e-5}
            assert sure <= set(got), (who, fields)
            for h in hits:
                assert abs(dict(ranking)[h["id"]] - h["score"]) < 1e-5
            filtered_nonempty += bool(got) and "where" in fields
            keyword_nonempty += bool(got) and fields.get("mode") == "keyword" and who != "admin"
    assert filtered_nonempty > 0  # the metadata filters really select something
    assert keyword_nonempty > 0  # principals' keyword scores were checked by hand
    return checked


def _sees(by_id: dict[str, dict[str, Any]], who: str, default_public: bool, item_id: str) -> bool:
    return _may_see(who, by_id[item_id]["access"], default_public)


def _bm25_ranking(
    by_id: dict[str, dict[str, Any]], fields: dict[str, Any], visible: Callable[[str], bool]
) -> list[tuple[str, float]]:
    """Keyword ranking by hand: FTS5's BM25 with the statistics of the visible text items only
    (the words of these texts are their own stems), then the request's filters."""
    docs = {i: item["data"].decode().split() for i, item in by_id.items() if item["name"].endswith(".txt")}
    seen = {i: words for i, words in docs.items() if visible(i)}
    if not seen:
        return []
    avgdl = sum(len(w) for w in seen.values()) / len(seen)
    scores: dict[str, float] = {}
    for term in dict.fromkeys(fields["text"].split()):
        n = sum(term in words for words in seen.values())
        idf = max(math.log((len(seen) - n + 0.5) / (n + 0.5)), 1e-6)
        for i, words in seen.items():
            tf = words.count(term)
            if tf:
                scores[i] = scores.get(i, 0.0) + idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * len(words) / avgdl))
    shade = json.loads(fields["where"])["shade"] if "where" in fields else None
    keep = [
        (i, round(s, 6))
        for i, s in scores.items()
        if fields.get("modality") in (None, "text") and shade in (None, by_id[i]["shade"])
    ]
    return sorted(keep, key=lambda t: -t[1])


def _check_fusion(api: ApiEnv, who: str, fields: dict[str, Any], hits: list[dict[str, Any]]) -> None:
    """A hybrid list is the reciprocal-rank fusion of the principal's own keyword and dense lists."""
    fused: dict[str, float] = {}
    for mode in ("keyword", "dense"):
        r = api.client.post("/search", headers=api.h(who), data={**fields, "mode": mode, "k": "100"})
        assert r.status_code == 200, r.text
        for rank, h in enumerate(r.json()["hits"], 1):
            fused[h["id"]] = fused.get(h["id"], 0.0) + 1 / (60 + rank)
    for h in hits:
        assert abs(fused[h["id"]] - h["score"]) < 1e-5, (who, fields)
    expected = sorted(fused.values(), reverse=True)[: len(hits)]
    assert [h["score"] for h in hits] == pytest.approx(expected, abs=1e-5)


def test_randomised_principals_see_exactly_their_top_k(api: ApiEnv) -> None:
    rng = random.Random(20261123)
    by_id = _ingest(api, _random_items(rng, 48))
    checked = _check_round(api, rng, by_id, default_public=False)

    store = AccessStore(api.coll.path)
    store.set_default_access(True)  # items without a list become visible to every key holder
    checked += _check_round(api, rng, by_id, default_public=True)

    # change some access lists behind the caches' back (drawn by name: ids hash the tmp paths)
    changed = rng.sample(sorted(by_id, key=lambda i: by_id[i]["name"]), 10)
    for item_id in changed:
        by_id[item_id]["access"] = ["user:bob"]
    store.set_acl(changed, ["user:bob"])
    store.close()
    checked += _check_round(api, rng, by_id, default_public=True)
    assert checked == 3 * 25 * 4


def test_hidden_items_are_indistinguishable_from_missing_ones(api: ApiEnv) -> None:
    r = api.upload("admin", {"plan.txt": b"secret merger plan"}, access="user:bob", project="falcon")
    hidden = r.json()["items"][0]["id"]
    missing = "0123456789abcdef"
    for url in (f"/items/{hidden}", f"/items/{missing}"):
        resp = api.client.get(url, headers=api.h("alice"))
        assert resp.status_code == 404
    a = api.client.get(f"/items/{hidden}", headers=api.h("alice")).json()["error"]["message"]
    b = api.client.get(f"/items/{missing}", headers=api.h("alice")).json()["error"]["message"]
    assert a.replace(hidden, "ID") == b.replace(missing, "ID")
    assert api.client.get(f"/items/{hidden}/preview", headers=api.h("alice")).status_code == 404
    assert api.client.get(f"/items/{hidden}", headers=api.h("bob")).status_code == 200

    # A filter field that only hidden items carry is as unknown as one no item carries.
    e1 = api.client.post("/search", headers=api.h("alice"), json={"text": "plan", "where": {"project": "falcon"}})
    e2 = api.client.post("/search", headers=api.h("alice"), json={"text": "plan", "where": {"nothing": "falcon"}})
    assert e1.status_code == e2.status_code == 400
    assert "project" not in e1.json()["error"]["message"].split(";")[1]
    ok = api.client.post("/search", headers=api.h("bob"), json={"text": "plan", "where": {"project": "falcon"}})
    assert [h["id"] for h in ok.json()["hits"]] == [hidden]


def test_preview_link_of_a_revoked_key_or_lost_access_stops_working(api: ApiEnv) -> None:
    r = api.upload("admin", {"pic.png": png_bytes((9, 200, 9))}, access="user:alice")
    item_id = r.json()["items"][0]["id"]
    hits = api.client.post("/search", headers=api.h("alice"), json={"text": "x", "modality": "image"}).json()["hits"]
    url = hits[0]["preview_url"]
    assert api.client.get(url).status_code == 200
    store = AccessStore(api.coll.path)
    store.set_acl([item_id], ["user:bob"])
    assert api.client.get(url).status_code == 404
    store.set_acl([item_id], ["user:alice"])
    assert api.client.get(url).status_code == 200
    store.revoke(store.authenticate(api.keys["alice"]).key_id)
    assert api.client.get(url).status_code == 401
    store.close()


def test_cached_results_are_never_shared_between_principals(api: ApiEnv) -> None:
    api.upload("admin", {"a.txt": b"harbour lantern"}, access="user:alice")
    api.upload("admin", {"b.txt": b"harbour lantern glacier"}, access="user:bob")
    for _ in range(3):
        for who, mine in (("alice", "a.txt"), ("bob", "b.txt")):
            hits = api.client.post("/search", headers=api.h(who), json={"text": "harbour lantern"}).json()["hits"]
            assert [Path(h["uri"]).name for h in hits] == [mine]
    svc = api.client.app.state.service  # type: ignore[attr-defined]
    assert svc.results.hits >= 4  # the repeats came from the cache, each from its own entry


def test_writes_to_hidden_items_do_not_touch_anothers_cache(api: ApiEnv) -> None:
    """Cached-result timing says nothing about items a principal cannot see: a write to them
    neither evicts nor changes the principal's cached results; a write to visible ones does."""
    api.upload("admin", {"a.txt": b"harbour lantern"}, access="user:alice")
    svc = api.client.app.state.service  # type: ignore[attr-defined]

    def ask() -> tuple[list[str], bool]:
        before = svc.results.hits
        hits = api.client.post("/search", headers=api.h("alice"), json={"text": "harbour lantern"}).json()["hits"]
        return [Path(h["uri"]).name for h in hits], svc.results.hits > before

    assert ask() == (["a.txt"], False)
    assert ask() == (["a.txt"], True)
    api.upload("admin", {"b.txt": b"harbour lantern glacier"}, access="user:bob")
    assert ask() == (["a.txt"], True)  # still cached: bob's new item is invisible to alice
    api.upload("admin", {"c.txt": b"harbour lantern meadow"}, access="group:eng")
    assert ask() == (["a.txt", "c.txt"], False)  # alice can see this one: fresh results
