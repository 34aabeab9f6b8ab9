"""Reading user-written JSON Lines files with one clear error per bad line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from xmodal.errors import InvalidArgumentError


def iter_jsonl(path: Path) -> Iterator[tuple[int, str, Any]]:
    """Yield ``(line number, where, record)`` for each non-blank line; ``where`` names the file and line for
    messages. A line that is not UTF-8 or not JSON is an :class:`InvalidArgumentError`."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidArgumentError(f"{path}: cannot read ({exc.strerror})") from None
    if raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark (Notepad writes one)
        raw = raw[3:]
    for lineno, line_bytes in enumerate(raw.splitlines(), start=1):
        where = f"{path.name} line {lineno}"
        try:
            line = line_bytes.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidArgumentError(f"{where}: not valid UTF-8") from None
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise InvalidArgumentError(f"{where}: not valid JSON ({exc.args[0] if exc.args else exc})") from None
        yield lineno, where, record
