"""PDFs by page: the text layer per page, scanned pages read by OCR, hits with their page in
Python, CLI and API, page previews, and the bad PDFs of issue 23."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from media_makers import pdf_bytes, scanned_pdf

from xmodal.cli.main import main as cli
from xmodal.collection import CATALOG, Collection
from xmodal.config import ModelConfig
from xmodal.errors import MediaError, MediaTooLargeError
from xmodal.media.limits import MediaLimits
from xmodal.media.pdf import iter_pages, open_pdf

PAGES = [
    ["Quarterly revenue grew by eleven percent", "in the northern region."],
    ["The lighthouse keeper counts the ships", "that pass the rocks at night."],
    ["Tomato soup needs basil, garlic and", "a slow hour on the stove."],
]
MODEL = ModelConfig(asr=None)  # the default towers and OCR; no recordings here


def test_pages_are_read_one_by_one_with_their_text(tmp_path: Path) -> None:
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf_bytes(PAGES))
    source = open_pdf(path)
    assert source.pages == 3
    pages = list(iter_pages(source, render=False))
    assert [p.number for p in pages] == [1, 2, 3]
    assert "lighthouse keeper" in pages[1].text and pages[1].picture is None


def test_a_pdf_is_found_at_the_right_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "report.pdf").write_bytes(pdf_bytes(PAGES))
    scanned_pdf(docs / "scan.pdf", ["The invoice was paid in March", "A garden of roses and tulips"])
    (docs / "notes.txt").write_text("a plain note about the weather", encoding="utf-8")
    with Collection.open(tmp_path / "c", create=True, model=MODEL) as coll:
        report = coll.add([docs])
        assert report.added == 3 and report.failed == 0
        hit = coll.search("lighthouse keeper counting ships", k=1)[0]
        assert Path(hit.uri).name == "report.pdf" and hit.page == 2 and hit.to_dict()["page"] == 2
        hit = coll.search("invoice paid", k=1, mode="keyword")[0]
        assert Path(hit.uri).name == "scan.pdf" and hit.page == 1  # the scanned page, read by OCR
        item = coll.get(hit.id)
        assert item is not None and item.metadata["pages"] == 2 and item.metadata["mime"] == "application/pdf"
        assert coll.search("weather", k=1)[0].page is None  # other items have no page
    assert cli(["search", "tomato soup", "-c", str(tmp_path / "c"), "-k", "1"]) == 0
    assert "report.pdf [page 3]" in capsys.readouterr().out


def test_bad_pdfs_fail_one_by_one(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    good = pdf_bytes([["A sound page about river boats"]])
    (bad / "good.pdf").write_bytes(good)
    (bad / "zero.pdf").write_bytes(pdf_bytes([], count=0))
    (bad / "truncated.pdf").write_bytes(good[:40])
    (bad / "script.pdf").write_bytes(pdf_bytes([["A page with a script about mountains"]], javascript=True))
    broken = pdf_bytes([["Broken cross reference table, still readable"]])
    (bad / "xref.pdf").write_bytes(broken.replace(b"0000000009 00000 n", b"0000099999 00000 n"))
    (bad / "huge-page.pdf").write_bytes(pdf_bytes([["A poster"]], size=(14400, 14400)))  # 200 inches
    (bad / "lying.txt").write_bytes(pdf_bytes([["A PDF named like a text file about violins"]]))
    (bad / "lying.pdf").write_text("plain text named like a PDF about harbours", encoding="utf-8")
    if shutil.which("qpdf"):
        subprocess.run(
            ["qpdf", "--encrypt", "secret", "owner", "256", "--", str(bad / "good.pdf"), str(bad / "locked.pdf")],
            check=True,
        )
    with Collection.open(tmp_path / "c", create=True, model=MODEL) as coll:
        report = coll.add([bad])
        reasons = {Path(p).name: r for p, r in report.failures}
        assert "PDF" in reasons.pop("zero.pdf")  # PDFium refuses an empty page tree as malformed
        assert "PDF" in reasons.pop("truncated.pdf")
        if shutil.which("qpdf"):
            assert "encrypted" in reasons.pop("locked.pdf")
        assert reasons == {}
        names = {Path(i.uri).name for i in coll.catalog.iter_items()}
        assert names == {"good.pdf", "script.pdf", "xref.pdf", "huge-page.pdf", "lying.txt", "lying.pdf"}
        assert coll.search("violins", k=1, mode="keyword")[0].page == 1  # detected by content
        assert coll.search("harbours", k=1, mode="keyword")[0].page is None
        assert coll.search("cross reference", k=1, mode="keyword")[0].uri.endswith("xref.pdf")


def test_page_limit_is_checked_before_any_page_is_read(tmp_path: Path) -> None:
    many = tmp_path / "many.pdf"
    many.write_bytes(pdf_bytes([["a page"]] * 11))
    with pytest.raises(MediaTooLargeError, match="11 pages; the limit is 10"):
        open_pdf(many, MediaLimits(max_pdf_pages=10))
    pages = b"".join(b"%d 0 R " % (4 + 2 * i) for i in range(100_000))
    huge = pdf_bytes([["one real page"]]).replace(b"/Kids [4 0 R] /Count 1", b"/Kids [" + pages + b"] /Count 100000")
    (tmp_path / "huge.pdf").write_bytes(huge)
    with pytest.raises(MediaError):  # 100,000 declared pages: over the limit, or a broken page tree
        open_pdf(tmp_path / "huge.pdf")


def test_old_catalog_gains_a_page_column(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("a note about lighthouses", encoding="utf-8")
    with Collection.open(tmp_path / "c", create=True, model=MODEL) as coll:
        coll.add([docs])
    with sqlite3.connect(tmp_path / "c" / CATALOG) as db:
        db.execute("ALTER TABLE vectors DROP COLUMN page")  # as made before PDFs
    (docs / "b.pdf").write_bytes(pdf_bytes(PAGES))
    with Collection.open(tmp_path / "c") as coll:
        coll.add([docs])
        hit = coll.search("keeper counts ships", k=1, mode="keyword")[0]
        assert hit.uri.endswith("b.pdf") and hit.page == 2


def test_api_hits_and_page_previews(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from xmodal.access.store import AccessStore
    from xmodal.api import create_app
    from xmodal.api.settings import ServeSettings

    coll = Collection.open(tmp_path / "c", create=True, model=MODEL)
    store = AccessStore(coll.path)
    key = store.create_key("admin", admin=True)[0]
    store.close()
    app = create_app(ServeSettings(collection=coll.path, index_root=tmp_path), collection=coll)
    headers = {"X-API-Key": key}
    with TestClient(app, raise_server_exceptions=False) as client:
        files = [("files", ("report.pdf", pdf_bytes(PAGES), "application/octet-stream"))]
        assert client.post("/items", headers=headers, files=files).status_code == 201
        hits = client.post("/search", headers=headers, json={"text": "tomato soup with basil", "k": 1}).json()["hits"]
        assert hits[0]["page"] == 3
        url = hits[0]["preview_url"]
        shot = client.get(url + "&page=3")
        assert shot.status_code == 200 and shot.headers["content-type"] == "image/jpeg"
        assert client.get(url).status_code == 200  # without a page: the text
        for bad in ("&page=9", "&page=0", "&page=x"):
            r = client.get(url + bad)
            assert r.status_code in (400, 422) and "page" in json.dumps(r.json())
    coll.close()
