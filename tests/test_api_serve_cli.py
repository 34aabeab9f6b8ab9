"""``xmodal serve`` as a real process: the command starts uvicorn with the app, answers, and
stops cleanly. Uses the real default model (loaded once, at start)."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from xmodal.access.store import AccessStore
from xmodal.collection import Collection

pytestmark = pytest.mark.slow

LAUNCH = """
import argparse, sys
from xmodal.cli import cmd_serve
p = argparse.ArgumentParser(); sub = p.add_subparsers()
cmd_serve.register(sub)
args = p.parse_args(sys.argv[1:])
sys.exit(args.func(args))
"""


def test_serve_command_serves_the_collection(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "owl.txt").write_text("An owl hunts mice at night in the forest.")
    (docs / "tax.txt").write_text("File your income tax return before the deadline.")
    with Collection.open(tmp_path / "coll", create=True) as coll:
        coll.add([docs])
    store = AccessStore(tmp_path / "coll")
    store.set_default_access(True)
    key, _ = store.create_key("viewer")
    store.close()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, "serve", "-c", str(tmp_path / "coll"), "--port", "0",
         "--log-level", "warning"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    stream = proc.stdout
    assert stream is not None
    reader = threading.Thread(target=lambda: [lines.put(x) for x in stream], daemon=True)
    reader.start()
    out: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while not (found := re.search(r"serving .* at (http://127\.0\.0\.1:\d+)/", "".join(out))):
            with contextlib.suppress(queue.Empty):
                out.append(lines.get(timeout=1))
            assert (time.monotonic() < deadline and reader.is_alive()) or not lines.empty(), "".join(out)
        base = found.group(1)  # --port 0: the server says which port it got
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, "".join(out)
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.3)
        r = httpx.post(f"{base}/search", headers={"X-API-Key": key}, json={"text": "nocturnal bird", "k": 1})
        assert r.status_code == 200
        assert Path(r.json()["hits"][0]["uri"]).name == "owl.txt"
        assert httpx.post(f"{base}/search", json={"text": "owl"}).status_code == 401
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    reader.join(30)
    while not lines.empty():
        out.append(lines.get())
    assert proc.returncode == 0, "".join(out)
