"""The eval harness core with an in-memory search function whose results are known exactly."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from xmodal.errors import InvalidArgumentError
from xmodal.eval.harness import EvalQuery, evaluate_queries, load_queries
from xmodal.eval.report import recall_svg, write_report

CORPUS = ["/data/cat.png", "/data/dog.png", "/data/car.jpg", "/data/tree.png", "/data/sub/cat2.png"]
# fixed rankings per query text
RANKINGS = {
    "a cat": ["/data/cat.png", "/data/sub/cat2.png", "/data/dog.png"],
    "a car": ["/data/tree.png", "/data/car.jpg"],
    "a tree": ["/data/dog.png", "/data/cat.png"],
}


def fake_search(q: EvalQuery, k: int) -> list[tuple[str, float]]:
    ranked = RANKINGS.get(q.value, [])
    return [(uri, 1.0 - i / 10) for i, uri in enumerate(ranked[:k])]


def _write(tmp_path: Path, lines: list[object], raw: bytes | None = None) -> Path:
    p = tmp_path / "q.jsonl"
    if raw is not None:
        p.write_bytes(raw)
    else:
        p.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    return p


def test_hand_worked_metrics(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            {"query": "a cat", "relevant": ["cat.png", "cat2.png"]},
            {"query": "a car", "relevant": ["car.jpg"]},
            {"query": "a tree", "relevant": ["/data/tree.png"]},
        ],
    )
    res = evaluate_queries(load_queries(path), fake_search, k=10, known_uris=CORPUS)
    m = res.metrics
    # cat: both relevant at ranks 1,2; car: rank 2; tree: not found
    assert m["recall@1"] == pytest.approx((0.5 + 0 + 0) / 3)
    assert m["recall@5"] == pytest.approx((1 + 1 + 0) / 3)
    assert m["mrr@10"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert m["map"] == pytest.approx((1 + 0.5 + 0) / 3)
    ndcg_car = (1 / math.log2(3)) / 1
    assert m["ndcg@10"] == pytest.approx((1 + ndcg_car + 0) / 3)
    assert res.recall_curve[1] == pytest.approx(m["recall@1"])
    assert res.unknown_relevant == [] and not res.warnings


def test_unknown_relevant_names_warn_and_count(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            {"query": "a cat", "relevant": ["cat.png", "kitten.png"]},
            {"query": "a car", "relevant": ["car.jpg"]},
        ],
    )
    res = evaluate_queries(load_queries(path), fake_search, known_uris=CORPUS)
    assert res.unknown_relevant == ["kitten.png"]
    assert "1 relevant name" in res.warnings[0]
    assert res.metrics["recall@10"] == pytest.approx((0.5 + 1) / 2)


def test_no_relevant_name_matches_anything(tmp_path: Path) -> None:
    path = _write(tmp_path, [{"query": "a cat", "relevant": ["nope.png"]}])
    with pytest.raises(InvalidArgumentError, match="none of the 1 relevant names"):
        evaluate_queries(load_queries(path), fake_search, known_uris=CORPUS)


def test_repeated_hits_of_one_file_count_once(tmp_path: Path) -> None:
    def seg_search(q: EvalQuery, k: int) -> list[tuple[str, float]]:
        return [("/a/talk.wav", 0.9), ("/a/talk.wav", 0.8), ("/a/other.wav", 0.7)]

    q = [EvalQuery("q", "text", "x", ("talk.wav",), 1)]
    res = evaluate_queries(q, seg_search)
    assert res.metrics["recall@1"] == 1.0 and res.metrics["map"] == 1.0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "no queries"),
        (b"\n\n", "no queries"),
        (b'{"query": "x", "relevant": ["a"]}\n{"query": "y", "relevant": ["a"]\n', "line 2: not valid JSON"),
        (b'{"query": "x", "relevant": ["a"]}\n{"query": "\xff\xfe"}\n', "line 2: not valid UTF-8"),
        (b'{"query": "x"}\n', "line 1: expected"),
        (b'{"query": "x", "relevant": []}\n', "non-empty list"),
        (b'{"query": "", "relevant": ["a"]}\n', "empty text query"),
        (b'{"query": {"video": "a.mp4"}, "relevant": ["a"]}\n', "must be a string"),
        (b'{"query": {"image": "missing.png"}, "relevant": ["a"]}\n', "not found"),
        (
            b'{"query": "x", "relevant": ["a"], "id": "q"}\n{"query": "y", "relevant": ["a"], "id": "q"}\n',
            "line 2: query id 'q' is also the id of line 1",
        ),
        (b'{"query": "x", "relevant": ["a"], "id": ["q"]}\n', "'id' must be"),
    ],
)
def test_bad_queries_files(tmp_path: Path, content: bytes, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        load_queries(_write(tmp_path, [], raw=content))


def test_image_query_paths_resolve_beside_the_file(tmp_path: Path) -> None:
    (tmp_path / "q.png").write_bytes(b"x")
    qs = load_queries(_write(tmp_path, [{"query": {"image": "q.png"}, "relevant": ["a"], "id": "img1"}]))
    assert qs[0].kind == "image" and Path(qs[0].value) == tmp_path / "q.png" and qs[0].qid == "img1"


def test_report_files(tmp_path: Path) -> None:
    path = _write(tmp_path, [{"query": "a cat", "relevant": ["cat.png"]}, {"query": "a car", "relevant": ["car.jpg"]}])
    res = evaluate_queries(load_queries(path), fake_search, k=12)
    report = write_report(res, tmp_path / "rep")
    text = report.read_text(encoding="utf-8")
    assert "| recall@1 | 0.5000 |" in text and "recall_at_k.svg" in text
    assert "| a car |" in text and "| a cat |" in text  # hardest queries by what was asked
    svg = (tmp_path / "rep" / "recall_at_k.svg").read_text(encoding="utf-8")
    assert svg.startswith("<svg") and svg.count("<circle") == 12
    assert json.loads((tmp_path / "rep" / "metrics.json").read_text())["metrics"]["recall@1"] == 0.5


def test_svg_handles_single_point() -> None:
    assert "<polyline" in recall_svg({1: 0.3})


def test_bad_k() -> None:
    for k in (0, 3, 9):  # recall@10 of a 3-deep run would count ranks 4-10 as missing
        with pytest.raises(InvalidArgumentError, match="at least 10"):
            evaluate_queries([EvalQuery("q", "text", "x", ("a",), 1)], fake_search, k=k)
    evaluate_queries([EvalQuery("q", "text", "x", ("a",), 1)], fake_search, k=3, metrics=["recall@3", "mrr"])


def test_bom_null_ids_and_a_file_named_twice(tmp_path: Path) -> None:
    lines = [
        {"query": "a cat", "relevant": ["cat.png", "/data/cat.png"], "id": None},  # one item, named twice
        {"query": "a car", "relevant": ["car.jpg", "car.jpg"], "id": 7},
    ]
    raw = b"\xef\xbb\xbf" + "\r\n".join(json.dumps(x) for x in lines).encode()  # as Notepad saves it
    queries = load_queries(_write(tmp_path, [], raw=raw))
    assert [(q.qid, q.relevant) for q in queries] == [("line1", ("/data/cat.png",)), ("7", ("car.jpg",))]
    res = evaluate_queries(queries, fake_search, known_uris=CORPUS)
    assert res.per_query["line1"]["recall@1"] == 1.0 and res.per_query["line1"]["ndcg@10"] == 1.0
    assert res.labels == {"line1": "a cat", "7": "7: a car"}  # the report shows an id the file gave


def test_an_unusable_query_names_its_line(tmp_path: Path) -> None:
    from xmodal.errors import InvalidQueryError, MediaError

    (tmp_path / "q.png").write_bytes(b"not a picture")
    path = _write(
        tmp_path, [{"query": "a cat", "relevant": ["cat.png"]}, {"query": {"image": "q.png"}, "relevant": ["a"]}]
    )

    def search(q: EvalQuery, k: int) -> list[tuple[str, float]]:
        if q.kind == "image":
            raise MediaError("not a readable image")
        return fake_search(q, k)

    with pytest.raises(InvalidQueryError, match=r"q\.jsonl line 2: not a readable image"):
        evaluate_queries(load_queries(path), search)
