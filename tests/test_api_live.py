"""The app behind a real uvicorn server on loopback: concurrent clients, an over-long request
line, and serving on after bad requests."""

from __future__ import annotations

import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from api_support import ApiEnv, api

from xmodal.api.server import serve_in_thread
from xmodal.cli.cmd_serve import MAX_REQUEST_HEAD_BYTES

__all__ = ["api"]


def _raw_get(base: str, target: str, key: str) -> bytes:
    host, port = base.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nX-API-Key: {key}\r\nConnection: close\r\n\r\n".encode())
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def test_live_server_concurrency_and_megabyte_query_string(api: ApiEnv) -> None:
    words = ["harbour", "lantern", "glacier", "meadow", "violin", "orchard"]
    files = {f"{w}.txt": f"a note about the {w}".encode() for w in words}
    assert api.upload("admin", files, access="group:eng").status_code == 201
    with serve_in_thread(api.client.app, h11_max_incomplete_event_size=MAX_REQUEST_HEAD_BYTES) as base:
        head = _raw_get(base, "/search?q=" + "a" * 1_000_000, api.keys["alice"])
        status, _, body = head.partition(b"\r\n\r\n")
        assert status.startswith(b"HTTP/1.1 400") and b"application/json" in status
        assert b"the limit is 10,000" in body

        def ask(i: int) -> tuple[str, int, list[str]]:
            who = ["alice", "bob", "carol"][i % 3]
            word = words[i % len(words)]
            r = httpx.post(f"{base}/search", headers=api.h(who), json={"text": word, "k": 3}, timeout=30)
            return who, r.status_code, [Path(h["uri"]).stem for h in r.json()["hits"]]

        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(ask, range(96)))
        for i, (who, status_code, names) in enumerate(results):
            assert status_code == 200
            if who == "bob":  # not in group eng
                assert names == []
            else:
                assert names[0] == words[i % len(words)]
        assert httpx.get(f"{base}/healthz").json()["status"] == "ok"


def test_load_script_runs_bounded_levels(api: ApiEnv) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from load_api import percentile, run_level

    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    api.upload("admin", {"n.txt": b"the harbour at dawn"}, access="public")
    with serve_in_thread(api.client.app) as base:
        for mode in ("fresh", "repeat"):
            res = run_level(base, api.keys["alice"], 4, mode, max_requests=24, max_seconds=30)
            assert res["requests"] == 24 and res["errors"] == 0
            assert res["qps"] > 0 and res["p99_ms"] >= res["p50_ms"] > 0


def test_served_connections_send_without_nagle_delay() -> None:
    """uvicorn gets our listening socket; asyncio sets TCP_NODELAY on the connections it accepts
    only when the socket's proto says TCP. Without it every response after the first on a
    keep-alive connection waited ~40 ms for the client's delayed ACK (bench/load_api.py: 44 ms
    for a cached search that takes 1.5 ms)."""
    import asyncio

    from xmodal.api.server import listen_socket

    async def accepted_nodelay() -> int:
        got: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                got.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Probe, sock=listen_socket("127.0.0.1", 0))
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            return await asyncio.wait_for(got, 30)
        finally:
            writer.close()
            server.close()

    assert asyncio.run(accepted_nodelay()) != 0
