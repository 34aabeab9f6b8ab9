"""The CLI as a user runs it: one clear line and a non-zero exit for every mistake."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BagOfWordsEncoder, BagOfWordsEncoderV2, write
from tests.media_makers import png
from xmodal.cli.main import main
from xmodal.encoders import registry as registry_module
from xmodal.encoders.registry import EncoderRegistry


@pytest.fixture(autouse=True)
def fake_default_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    reg = EncoderRegistry()
    reg.register("bow", BagOfWordsEncoder)
    monkeypatch.setattr(registry_module, "_default", reg)


def media(root: Path) -> Path:
    write(root / "docs" / "revenue.txt", "quarterly revenue grew twelve percent")
    write(root / "docs" / "cat.txt", "the cat sleeps on the mat")
    write(root / "notes" / "invoice.txt", "invoice for consulting")
    return root


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("xmodal: error: "), err
    assert "Traceback" not in err


def test_index_then_search(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    coll = str(tmp_path / "c")
    code, out, err = run(capsys, "index", str(media(tmp_path / "m")), "--model", "bow", "-c", coll)
    assert code == 0 and "3 added" in out and "0 failed" in out
    assert "indexing" in err and "file" in err  # the progress bar
    code, out, _ = run(capsys, "index", str(tmp_path / "m"), "-c", coll, "--quiet")
    assert code == 0 and "3 unchanged" in out
    code, out, _ = run(capsys, "search", "quarterly revenue", "-c", coll, "-k", "2", "--json")
    data = json.loads(out)
    assert code == 0 and data["query"] == "quarterly revenue"
    first = data["hits"][0]
    assert {"id", "uri", "modality", "score", "metadata", "start", "end"} <= set(first)
    assert first["uri"].endswith("revenue.txt") and first["start"] is None and len(data["hits"]) == 2
    code, out, _ = run(capsys, "search", "invoice", "-c", coll, "--where", "folder=notes", "--json")
    assert [Path(h["uri"]).name for h in json.loads(out)["hits"]] == ["invoice.txt"]
    code, out, _ = run(capsys, "search", "cat", "-c", coll)
    assert code == 0 and "cat.txt" in out.splitlines()[0]
    code, out, _ = run(capsys, "info", "-c", coll, "--json")
    assert json.loads(out)["items"] == 3
    hit_id = first["id"]
    code, out, _ = run(capsys, "delete", hit_id, "-c", coll)
    assert code == 0 and "deleted 1" in out
    code, _, err = run(capsys, "delete", hit_id, "-c", coll)
    assert code != 0
    assert_one_line_error(err)


def test_keyword_and_hybrid_search(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    coll = str(tmp_path / "c")
    assert run(capsys, "index", str(media(tmp_path / "m")), "--model", "bow", "-c", coll, "-q")[0] == 0
    code, out, _ = run(capsys, "search", "consulting", "-c", coll, "--mode", "keyword", "--json")
    data = json.loads(out)
    assert code == 0 and data["mode"] == "keyword" and [h["uri"][-11:] for h in data["hits"]] == ["invoice.txt"]
    assert data["hits"][0]["snippet"] == "invoice for consulting" and data["hits"][0]["matched"] == "text"
    code, out, _ = run(capsys, "search", "zebra", "-c", coll, "--mode", "keyword")
    assert code == 0 and out.strip() == "no results"
    code, out, _ = run(capsys, "search", "quarterly revenue", "-c", coll, "--mode", "hybrid", "-k", "2")
    first = out.splitlines()[0].split()
    assert code == 0 and first[0] == "1." and first[1] == f"{2 / 61:.4f}" and first[3].endswith("revenue.txt")


def test_failures_give_summary_and_nonzero_exit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = media(tmp_path / "m")
    (root / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x01" * 10)
    (root / "zero.wav").write_bytes(b"")
    code, out, err = run(capsys, "index", str(root), "--model", "bow", "-c", str(tmp_path / "c"), "-q")
    assert code == 1
    assert "3 added" in out and "2 failed" in out
    assert "bad.png" in err and "zero.wav" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["search", ""], "empty"),
        (["search", "   "], "empty"),
        (["search"], "exactly one query"),
        (["search", "cat", "--image", "x.png"], "exactly one query"),
        (["search", "cat", "-k", "0"], "k must be"),
        (["search", "cat", "--where", "novalue"], "key=value"),
        (["search", "cat", "--where", "nosuchfield=1"], "unknown filter field"),
        (["search", "--image", "MEDIA/docs/cat.txt"], "not usable"),
        (["search", "--image", "MEDIA/nope.png"], "not found"),
        (["search", "--image", "MEDIA"], "is a folder, not a file"),
        (["search", "--audio", "/dev/zero"], "not a regular file"),
        (["search", "--audio", "MEDIA/docs/cat.txt"], "not usable"),
        (["index"], "nothing to index"),
        (["index", "MEDIA", "--meta", "oops"], "key=value"),
        (["index", "MEDIA", "--index", "annoy"], "unknown index kind"),
        (["search", "caf\udce9"], "not valid UTF-8"),  # Latin-1 bytes from the terminal
        (["eval", "MEDIA/docs/cat.txt", "--report", "MEDIA/docs/cat.txt"], "is a file"),
        (["index", "MEDIA/nope", "MEDIA/typo"], "no such file or directory"),
        (["search", "!!!", "--mode", "keyword"], "no words to match"),
        (["search", "--image", "MEDIA/docs/cat.txt", "--mode", "hybrid"], "matches the words of a text query"),
    ],
)
def test_user_mistakes_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    root = media(tmp_path / "m")
    coll = str(tmp_path / "c")
    assert run(capsys, "index", str(root), "--model", "bow", "-c", coll, "-q")[0] == 0
    argv = [a.replace("MEDIA", str(root)) for a in argv]
    code, _, err = run(capsys, *argv, "-c", coll)
    assert code != 0
    assert_one_line_error(err)
    assert needle in err


def test_file_system_refusals_and_typos_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = media(tmp_path / "m")
    (tmp_path / "afile").write_text("x")
    code, _, err = run(capsys, "index", str(root), "--model", "bow", "-c", str(tmp_path / "afile" / "sub"))
    assert code == 1 and "Not a directory" in err
    assert_one_line_error(err)
    odd = os.fsdecode(bytes(tmp_path / "d") + b"\xffir")  # a directory name that is not UTF-8
    code, _, err = run(capsys, "index", str(root), "--model", "bow", "-c", odd)
    assert code == 3 and "must be valid UTF-8" in err and "\\xff" in err
    assert_one_line_error(err)
    code, _, err = run(capsys, "index", str(tmp_path / "typo"), "--model", "bow", "-c", str(tmp_path / "new"))
    assert code == 2 and "no such file" in err
    assert not (tmp_path / "new").exists()  # no empty collection left behind


def test_missing_and_corrupt_collection(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "search", "cat", "-c", str(tmp_path / "none"))
    assert code == 3 and "no collection" in err
    assert_one_line_error(err)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.json").write_text("garbage")
    code, _, err = run(capsys, "search", "cat", "-c", str(bad))
    assert code == 3
    assert_one_line_error(err)


def test_model_mismatch_needs_reembed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, coll = media(tmp_path / "m"), str(tmp_path / "c")
    run(capsys, "index", str(root), "--model", "bow", "-c", coll, "-q")
    code, _, err = run(capsys, "index", str(root), "--model", "minilm", "-c", coll, "-q")
    assert code == 3 and "--reembed" in err
    assert_one_line_error(err)


def test_reindex_after_a_model_upgrade_says_to_reembed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, coll = media(tmp_path / "m"), str(tmp_path / "c")
    run(capsys, "index", str(root), "--model", "bow", "-c", coll, "-q")

    upgraded = EncoderRegistry()
    upgraded.register("bow", BagOfWordsEncoderV2)
    monkeypatch.setattr(registry_module, "_default", upgraded)
    code, out, err = run(capsys, "index", str(root), "-c", coll, "-q")  # every file unchanged
    assert code == 3 and "bow 1 -> bow 2" in err and f"xmodal index --reembed -c {Path(coll).absolute()}" in err
    assert_one_line_error(err)
    assert "unchanged" not in out
    n = len(list(root.rglob("*.*")))
    (root / "docs" / "revenue.txt").rename(tmp_path / "moved.txt")  # gone: re-embedded from its stored text
    code, out, _ = run(capsys, "index", "--reembed", "-c", coll, "-q")
    assert code == 0 and f"re-embedded {n} items (1 from their stored text" in out
    code, out, _ = run(capsys, "search", "quarterly revenue", "-c", coll, "-k", "1")
    assert code == 0 and "revenue.txt" in out
    code, out, _ = run(capsys, "index", "--reembed", "-c", coll, "--json")
    done = json.loads(out)
    assert done["items"] == n and done["reembed"]["items"] == n and done["reembed"]["from_stored_text"] == 1


def test_control_characters_in_names_are_escaped_in_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, coll = tmp_path / "m", str(tmp_path / "c")
    root.mkdir()
    (root / "evil\nfailed: fake.txt").write_text("quarterly revenue grew")
    (root / "bad\x1b[31m.txt").write_bytes(b"")  # empty: a failure
    code, out, err = run(capsys, "index", str(root), "-c", coll, "-q", "--model", "bow")
    assert code == 1 and "bad\\x1b[31m.txt: " in err and "\x1b" not in err
    code, out, _ = run(capsys, "search", "quarterly revenue", "-c", coll)
    assert "evil\\nfailed: fake.txt" in out and len(out.strip().splitlines()) == 2  # hit and its snippet


def test_library_noise_is_off_for_a_command_only(monkeypatch: pytest.MonkeyPatch) -> None:
    import logging
    import warnings

    from xmodal.cli.main import _quiet_libraries

    hf = logging.getLogger("transformers")
    monkeypatch.setattr(hf, "level", logging.INFO)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with _quiet_libraries(debug=False):
            warnings.warn("library noise", UserWarning, stacklevel=1)
            assert hf.level == logging.ERROR
        assert hf.level == logging.INFO  # restored for an in-process caller
        warnings.warn("the caller's own warning", UserWarning, stacklevel=1)
        with _quiet_libraries(debug=True):
            warnings.warn("shown with --debug", UserWarning, stacklevel=1)
            assert hf.level == logging.INFO
    assert [str(w.message) for w in caught] == ["the caller's own warning", "shown with --debug"]


def test_ocr_library_logs_stay_quiet_after_it_resets_its_level() -> None:
    import logging

    from xmodal.cli.main import _quiet_libraries

    ocr, seen = logging.getLogger("RapidOCR"), []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    handler = Keep()
    ocr.addHandler(handler)
    try:
        with _quiet_libraries(debug=False):
            ocr.setLevel(logging.INFO)  # what rapidocr does when it is first imported
            ocr.warning("The text detection result is empty")
            ocr.error("a real failure")
        ocr.setLevel(logging.INFO)
        ocr.warning("outside a command")
    finally:
        ocr.removeHandler(handler)
    assert seen == ["a real failure", "outside a command"]


def _unprivileged_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    """``xmodal ARGV`` in a child that honours file permissions, with the test text encoder
    registered as ``bow``."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    script = (
        "import sys; from tests.conftest import BagOfWordsEncoder; "
        "from xmodal.encoders.registry import default_registry; "
        "default_registry().register('bow', BagOfWordsEncoder); "
        "from xmodal.cli.main import main; sys.exit(main(sys.argv[1:]))"
    )
    cmd = [*_unprivileged(), sys.executable, "-c", script, *argv]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)


def _unprivileged() -> list[str]:
    """A prefix that makes the child honour file permissions. Root reads everything, so drop
    the capabilities that let it (setpriv, from util-linux)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot make a file unreadable")
    caps = "-dac_override,-dac_read_search"
    return [setpriv, "--bounding-set", caps, "--inh-caps", caps]


def test_unreadable_file_is_reported_not_fatal(tmp_path: Path) -> None:
    root = media(tmp_path / "m")
    secret = png(root / "secret.png")
    secret.chmod(0)
    proc = _unprivileged_cli("index", str(root), "--model", "bow", "-c", str(tmp_path / "c"), "-q")
    assert proc.returncode == 1, proc.stderr
    assert "secret.png: permission denied" in proc.stderr and "Traceback" not in proc.stderr
    assert "3 added" in proc.stdout and "1 failed" in proc.stdout


def test_a_read_only_collection_can_be_searched(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = media(tmp_path / "m")
    coll = tmp_path / "c"
    assert run(capsys, "index", str(root), "--model", "bow", "-c", str(coll), "-q")[0] == 0
    (coll / "index" / "state.json").unlink()  # the index must be rebuilt, in memory only
    for path in [coll, *coll.rglob("*")]:
        path.chmod(path.stat().st_mode & ~0o222)
    before = sorted(p.name for p in coll.rglob("*"))

    def cli(*argv: str) -> subprocess.CompletedProcess[str]:
        return _unprivileged_cli(*argv, "-c", str(coll))

    try:
        proc = cli("search", "quarterly revenue", "-k", "1")
        assert proc.returncode == 0, proc.stderr
        assert "revenue.txt" in proc.stdout
        proc = cli("search", "revenue", "--mode", "keyword")
        assert proc.returncode == 0 and "revenue.txt" in proc.stdout, proc.stderr
        proc = cli("index", str(root))
        assert proc.returncode == 3 and "is read-only: it can be searched, not changed" in proc.stderr
        assert_one_line_error(proc.stderr)
        proc = cli("keys", "create", "ann")  # keys (and serving) need to write their own files
        assert proc.returncode == 3 and "is read-only: API keys" in proc.stderr
        assert_one_line_error(proc.stderr)
        assert sorted(p.name for p in coll.rglob("*")) == before  # nothing written
    finally:
        for path in [coll, *coll.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)


def test_delete_and_prune_forget_access_lists(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Item ids derive from paths: a new file at a deleted item's path must not inherit its ACL."""
    from xmodal.access.store import AccessStore

    root, coll = media(tmp_path / "m"), str(tmp_path / "c")
    run(capsys, "index", str(root), "--model", "bow", "-c", coll, "-q")
    _, out, _ = run(capsys, "search", "cat", "-c", coll, "--json", "-k", "3")
    ids = {Path(h["uri"]).name: h["id"] for h in json.loads(out)["hits"]}
    store = AccessStore(Path(coll))
    store.set_acl([ids["cat.txt"], ids["invoice.txt"]], ["public"])
    run(capsys, "delete", ids["cat.txt"], "-c", coll)
    (root / "notes" / "invoice.txt").unlink()
    assert run(capsys, "index", str(root), "-c", coll, "-q", "--prune")[0] == 0
    assert store.acl(ids["cat.txt"]) is None and store.acl(ids["invoice.txt"]) is None
    store.close()


def test_cli_changes_are_in_the_audit_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`xmodal audit` shows who added or deleted what: the command line's changes too, as
    cli:USER, findable by item id."""
    coll = str(tmp_path / "c")
    assert run(capsys, "index", str(media(tmp_path / "m")), "--model", "bow", "-c", coll, "--json")[0] == 0
    ids = {h["id"] for h in json.loads(run(capsys, "search", "invoice", "-c", coll, "--json")[1])["hits"]}
    _, out, _ = run(capsys, "search", "invoice consulting", "-c", coll, "-k", "1", "--json")
    victim = json.loads(out)["hits"][0]["id"]
    assert victim in ids
    run(capsys, "index", str(tmp_path / "m"), "-c", coll)  # unchanged: nothing to record
    (tmp_path / "m" / "docs" / "cat.txt").unlink()
    run(capsys, "index", str(tmp_path / "m"), "-c", coll, "--prune")
    assert run(capsys, "delete", victim, "-c", coll)[0] == 0
    _, out, _ = run(capsys, "audit", "-c", coll, "--json")
    entries = [json.loads(line) for line in out.splitlines()]
    assert [e["action"] for e in entries] == ["items.add", "items.delete", "items.delete"]
    assert all(e["principal"].startswith("cli") for e in entries)
    assert len(entries[0]["ids"]) == 3 and entries[0]["paths"] == [str(tmp_path / "m")]
    assert entries[1]["pruned"] is True and entries[2]["ids"] == [victim]
    _, out, _ = run(capsys, "audit", "-c", coll, "--item", victim, "--json")
    assert [json.loads(line)["action"] for line in out.splitlines()] == ["items.add", "items.delete"]
    assert run(capsys, "audit", "-c", coll, "--verify")[0] == 0


def test_an_unwritable_audit_log_warns_and_the_change_is_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    coll = str(tmp_path / "c")
    (tmp_path / "c").mkdir()
    run(capsys, "index", str(media(tmp_path / "m")), "--model", "bow", "-c", coll)
    (tmp_path / "c" / "audit.jsonl").unlink()
    (tmp_path / "c" / "audit.jsonl").mkdir()  # not a file: appending fails
    victim = json.loads(run(capsys, "search", "invoice", "-c", coll, "-k", "1", "--json")[1])["hits"][0]["id"]
    code, out, err = run(capsys, "delete", victim, "-c", coll)
    assert code == 0 and "deleted 1" in out
    assert err.startswith("xmodal: warning: the audit log was not written") and len(err.strip().splitlines()) == 1
    assert run(capsys, "search", "invoice consulting", "-c", coll, "--json")[0] == 0
    _, out, _ = run(capsys, "info", "-c", coll, "--json")
    assert json.loads(out)["items"] == 2
