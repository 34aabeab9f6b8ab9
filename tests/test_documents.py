"""HTML pages and office documents (DOCX, PPTX by slide, ODT) as text, detected by content;
their bad inputs: a ZIP bomb, a lying extension, a ZIP that is no document, a huge HTML page."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from media_makers import docx, odt, pptx

from xmodal.config import ModelConfig
from xmodal.errors import MediaTooLargeError
from xmodal.media.documents import html_text
from xmodal.media.limits import MediaLimits

MODEL = ModelConfig(text="bow", image=None, photo=None, ocr=None, asr=None)

PAGE = b"""<!DOCTYPE html><html><head><title>Harbour  report</title><style>.x{color:red}</style>
<script>var secret = "do not index me";</script></head>
<body><h1>The harbour</h1><p>Ships arrive at dawn &amp; leave at dusk.</p><noscript>enable js</noscript>
<ul><li>cranes</li><li>tugboats</li></ul></body></html>"""


def test_html_visible_text_and_title() -> None:
    body, title = html_text(PAGE)
    assert title == "Harbour report"
    assert "Ships arrive at dawn & leave at dusk." in body and "tugboats" in body
    assert "secret" not in body and "color" not in body and "enable js" not in body and "<" not in body


def test_documents_are_indexed_by_content(tmp_path: Path, open_collection) -> None:  # type: ignore[no-untyped-def]
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "page.html").write_bytes(PAGE)
    docx(docs / "letter.docx", ["Dear committee,", "the orchard needs new ladders."])
    pptx(docs / "deck.pptx", [["Welcome"], ["Budget for the glacier expedition"], ["Questions"]])
    odt(docs / "minutes.odt", "Minutes", ["The lantern festival moves to June"])
    docx(docs / "renamed.txt", ["a Word file named like text about violins"])  # the extension lies
    (docs / "archive.zip").write_bytes(_zip_of({"a.txt": "not a document"}))
    coll = open_collection(model=MODEL)
    report = coll.add([docs])
    assert report.added == 5 and report.failed == 0 and report.skipped == 1  # the plain ZIP is skipped
    by_name = {Path(i.uri).name: i for i in coll.catalog.iter_items()}
    assert by_name["page.html"].metadata["title"] == "Harbour report"
    assert by_name["page.html"].metadata["mime"] == "text/html"
    assert by_name["deck.pptx"].metadata["slides"] == 3
    assert "ladders" in by_name["letter.docx"].text and "too." in by_name["minutes.odt"].text
    assert "Minutes" in by_name["minutes.odt"].text
    hit = coll.search("glacier expedition", k=1, mode="keyword")[0]
    assert hit.uri.endswith("deck.pptx") and hit.page == 2  # the slide number
    assert coll.search("violins", k=1, mode="keyword")[0].uri.endswith("renamed.txt")


def test_bad_documents_fail_one_by_one(tmp_path: Path, open_collection) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad"
    bad.mkdir()
    docx(bad / "bomb.docx", ["tiny"], pad=30_000_000)  # 30 MB of spaces: ~1000x compression
    docx(bad / "good.docx", ["a sound document about meadows"])
    (bad / "broken.docx").write_bytes((bad / "good.docx").read_bytes()[:60])
    (bad / "empty.docx").write_bytes(_zip_of({"word/document.xml": "<document><body/></document>"}))
    (bad / "notxml.docx").write_bytes(_zip_of({"word/document.xml": "<w:document><unclosed>"}))
    coll = open_collection(model=MODEL)
    report = coll.add([bad])
    reasons = {Path(p).name: r for p, r in report.failures}
    assert "bomb" in reasons.pop("bomb.docx")
    assert "ZIP" in reasons.pop("broken.docx")
    assert "no text" in reasons.pop("empty.docx")
    assert "XML" in reasons.pop("notxml.docx")
    assert reasons == {} and report.added == 1


def test_huge_html_is_refused_or_cut(tmp_path: Path) -> None:
    big = b"<html><body>" + b"<p>word " * 200_000 + b"</body></html>"
    body, _ = html_text(big, MediaLimits(max_text_chars=10_000))
    assert len(body) <= 10_000
    from xmodal.media import documents

    with pytest.raises(MediaTooLargeError):
        html_text(b"<html>" + b" " * (documents.MAX_HTML_BYTES + 1))


def _zip_of(members: dict[str, str]) -> bytes:
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in members.items():
            z.writestr(name, text)
    return buf.getvalue()
