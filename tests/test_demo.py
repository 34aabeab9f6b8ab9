"""The README's first command, minus the setup: the demo must find what it promises."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from xmodal.demo import load_quotes, run_demo

pytestmark = pytest.mark.slow


def test_demo_corpus_source_is_bundled() -> None:
    quotes = load_quotes()
    assert len(quotes) > 200 and any("umbrella" in q for q in quotes)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (make setup installs it)")
def test_demo_finds_every_expected_item(tmp_path: Path) -> None:
    lines: list[str] = []
    missed = run_demo(tmp_path, None, log=lines.append)
    text = "\n".join(lines)
    assert missed == 0, text
    assert text.count("[ok]") == 6 and "0 failed" in text
