"""A small PDF writer: pages of text lines with a real text layer (Helvetica). The demo makes its
PDF with it; the tests make theirs (with a script, or a page tree that lies about its count)."""

from __future__ import annotations


def text_pdf(
    pages: list[list[str]],
    size: tuple[float, float] = (612, 792),
    javascript: bool = False,
    count: int | None = None,
) -> bytes:
    """A PDF written by hand: one page per list of text lines (Helvetica 12 pt, a real text
    layer); ``javascript`` adds an OpenAction script; ``count`` overrides the page count
    the page tree declares (0: no pages)."""

    def esc(line: str) -> str:
        return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    objects: list[bytes] = []
    n_pages = len(pages)
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(n_pages))
    catalog = b"<< /Type /Catalog /Pages 2 0 R"
    if javascript:
        catalog += b" /OpenAction << /S /JavaScript /JS (app.alert\\('hello'\\);) >>"
    objects.append(catalog + b" >>")
    declared = n_pages if count is None else count
    objects.append(f"<< /Type /Pages /Kids [{kids if declared else ''}] /Count {declared} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i, lines in enumerate(pages):
        body = "".join(
            f"BT /F1 12 Tf 72 {size[1] - 72 - 16 * n:.0f} Td ({esc(line)}) Tj ET\n" for n, line in enumerate(lines)
        ).encode("latin-1", errors="replace")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {size[0]:g} {size[1]:g}] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * i} 0 R >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(body) + body + b"endstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
