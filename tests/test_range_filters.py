"""Range filters: ``where={"field": {">=": low, "<": high}}`` (CLI ``--where "field>=low"``)
inside dense, keyword and hybrid search; numbers compare as numbers (also numbers stored as
text), text bounds as text (ISO dates); bad bounds are one clear error."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api_support import ApiEnv, make_env
from tests.conftest import write
from xmodal.cli.common import parse_filters
from xmodal.collection import Collection
from xmodal.errors import InvalidArgumentError
from xmodal.search import normalise_where

DOCS = {  # name: (rating, taken, flag, price as text the way `--meta price=...` stores it)
    "a.txt": (1, "2023-12-31", True, "9.5"),
    "b.txt": (3, "2024-01-01", False, "10"),
    "c.txt": (5, "2024-06-15T08:30:00", False, "1e3"),
    "d.txt": (7.5, "2025-02-01", True, "abc"),
}


@pytest.fixture
def coll(tmp_path: Path, open_collection: Callable[..., Collection]) -> Collection:
    c = open_collection()
    for name, (rating, taken, flag, price) in DOCS.items():
        path = write(tmp_path / "docs" / name, f"weekly garden report {name}")
        c.add([path], metadata={"rating": rating, "taken": taken, "flag": flag, "price": price})
    return c


def names(c: Collection, where: dict[str, Any], mode: str = "dense") -> set[str]:
    return {h.metadata["name"] for h in c.search("garden report", k=10, where=where, mode=mode)}


@pytest.mark.parametrize("mode", ["dense", "keyword", "hybrid"])
def test_numeric_ranges(coll: Collection, mode: str) -> None:
    assert names(coll, {"rating": {">": 3}}, mode) == {"c.txt", "d.txt"}
    assert names(coll, {"rating": {">=": 3, "<": 7.5}}, mode) == {"b.txt", "c.txt"}
    assert names(coll, {"rating": {"lte": 1}}, mode) == {"a.txt"}
    assert names(coll, {"rating": {">": 100}}, mode) == set()
    assert names(coll, {"bytes": {">": 0}}, mode) == set(DOCS)  # built-in fields too


def test_text_ranges_order_iso_dates(coll: Collection) -> None:
    assert names(coll, {"taken": {">=": "2024-01-01"}}) == {"b.txt", "c.txt", "d.txt"}
    assert names(coll, {"taken": {">=": "2024-01-01", "<": "2025"}}) == {"b.txt", "c.txt"}
    assert names(coll, {"taken": {"<": "2024"}}) == set()  # "2024" alone is a number: dates are text
    assert names(coll, {"taken": {"<": "2024-01"}}) == {"a.txt"}
    assert names(coll, {"taken": {">": "2024-06-15"}, "rating": {"<": 6}}) == {"c.txt"}  # with a second field


def test_numbers_stored_as_text_compare_as_numbers_and_booleans_never(coll: Collection) -> None:
    assert names(coll, {"price": {">": 9.9}}) == {"b.txt", "c.txt"}  # "10" and "1e3"; not "abc"
    assert names(coll, {"price": {"<": "100"}}) == {"a.txt", "b.txt"}  # a bound given as text
    assert names(coll, {"flag": {">=": 0}}) == set()  # true/false are not 1/0
    assert names(coll, {"flag": True, "rating": {">": 2}}) == {"d.txt"}  # with equality on another field


@pytest.mark.parametrize(
    ("where", "needle"),
    [
        ({"rating": {}}, "no bounds"),
        ({"rating": {"~": 1}}, "unknown comparison"),
        ({"rating": {">": float("nan")}}, "finite"),
        ({"rating": {">": float("inf")}}, "finite"),
        ({"rating": {">": True}}, "a number or a text"),
        ({"rating": {">": [1, 2]}}, "a number or a text"),
        ({"rating": {">": 1, "<": "z"}}, "all be numbers or all be text"),
        ({"rating": {">": 1, "gt": 2}}, "twice"),
        ({"rating": {">": "  "}}, "empty"),
        ({"nope": {">": 1}}, "unknown filter field"),
    ],
)
def test_bad_bounds_are_clear_errors(coll: Collection, where: dict[str, Any], needle: str) -> None:
    with pytest.raises(InvalidArgumentError, match=needle):
        coll.search("garden", where=where)


def test_cli_filter_syntax() -> None:
    assert parse_filters(["rating>3", "rating<=7", "team=a", "team=b", "taken >= 2024-01-01"]) == {
        "rating": {">": "3", "<=": "7"},
        "team": ["a", "b"],
        "taken": {">=": "2024-01-01"},
    }
    assert parse_filters(["note=a>b"]) == {"note": "a>b"}  # '=' first: the rest is the value
    assert normalise_where(parse_filters(["bytes<1e6"])) == {"bytes": {"<": 1_000_000.0}}
    for bad, needle in (("rating", "key=value"), ("rating>", "no value"), (">3", "key=value")):
        with pytest.raises(InvalidArgumentError, match=needle):
            parse_filters([bad])
    with pytest.raises(InvalidArgumentError, match="not both"):
        parse_filters(["rating=3", "rating>1"])
    with pytest.raises(InvalidArgumentError, match="not both"):
        parse_filters(["rating>1", "rating=3"])


def test_cli_search_with_a_range(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from tests.conftest import BagOfWordsEncoder
    from xmodal.cli.main import main
    from xmodal.encoders import registry as registry_module
    from xmodal.encoders.registry import EncoderRegistry

    reg = EncoderRegistry()
    reg.register("bow", BagOfWordsEncoder)
    old, registry_module._default = registry_module._default, reg  # type: ignore[attr-defined]
    try:
        for name, size in (("small.txt", 10), ("big.txt", 5000)):
            write(tmp_path / "m" / name, "garden " * size)
        coll = str(tmp_path / "c")
        assert main(["index", str(tmp_path / "m"), "--model", "bow", "-c", coll, "-q"]) == 0
        capsys.readouterr()
        assert main(["search", "garden", "-c", coll, "--where", "bytes>1000", "--json"]) == 0
        hits = json.loads(capsys.readouterr().out)["hits"]
        assert [h["metadata"]["name"] for h in hits] == ["big.txt"]
        assert main(["search", "garden", "-c", coll, "--where", "bytes>"]) != 0
        err = capsys.readouterr().err
        assert err.startswith("xmodal: error: ") and "no value" in err and len(err.strip().splitlines()) == 1
    finally:
        registry_module._default = old  # type: ignore[attr-defined]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[ApiEnv]:
    yield from make_env(tmp_path)


def test_api_range_filters(api: ApiEnv) -> None:
    r = api.upload("admin", {"cheap.txt": b"garden tools price list"}, access="public", price=5)
    assert r.status_code == 201, r.text
    r = api.upload("admin", {"dear.txt": b"garden tools catalogue"}, access="public", price=500)
    assert r.status_code == 201, r.text
    r = api.client.post("/search", headers=api.h("bob"), json={"text": "garden", "where": {"price": {"<": 100}}})
    assert r.status_code == 200 and [h["metadata"]["name"] for h in r.json()["hits"]] == ["cheap.txt"]
    r = api.client.get("/search", headers=api.h("bob"), params={"q": "garden", "where": '{"price": {"gte": 100}}'})
    assert r.status_code == 200 and [h["metadata"]["name"] for h in r.json()["hits"]] == ["dear.txt"]
    for bad in ({"price": {"<": None}}, {"price": {"between": 3}}, {"price": {"<": 3, ">": "cheap"}}):
        r = api.client.post("/search", headers=api.h("bob"), json={"text": "garden", "where": bad})
        assert r.status_code == 400 and "price" in r.json()["error"]["message"], r.text
