"""Listening sockets for ``xmodal serve``, and an app run with uvicorn in a background thread
(tests, benchmarks, the browser test)."""

from __future__ import annotations

import errno
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from xmodal.errors import InvalidArgumentError


def listen_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (IPv6 when the host has a colon), or one clear error
    (:class:`InvalidArgumentError`: port in use, not permitted, unknown host)."""
    # IPPROTO_TCP named, not 0: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on sockets
    # whose proto says TCP, and with it on, every response after the first on a keep-alive
    # connection waited ~40 ms for the client's delayed ACK
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            why = f"port {port} on {host} is in use; pick another with --port (0 = any free port)"
        elif exc.errno == errno.EACCES:
            why = f"no permission to listen on port {port} (ports below 1024 need root); use --port 8000 or above"
        else:
            why = f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        raise InvalidArgumentError(why) from None
    sock.set_inheritable(True)
    return sock


@contextmanager
def serve_in_thread(app: Any, host: str = "127.0.0.1", port: int | None = None, **uvicorn_kw: Any) -> Iterator[str]:
    """Start ``app`` on ``host`` and yield its base URL; stop it on exit."""
    import uvicorn

    # bind here and hand the socket over: no window in which another process can take the port
    sock = listen_socket(host, port or 0)
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", **uvicorn_kw)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
