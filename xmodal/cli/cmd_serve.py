"""xmodal serve : the REST API and web page for a collection."""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import sys
from pathlib import Path
from typing import Any

from xmodal.errors import InvalidArgumentError, XmodalError

MAX_REQUEST_HEAD_BYTES = 2 * 2**20


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve the REST API and web page (needs the 'serve' extra)")
    p.add_argument("-c", "--collection", default=".xmodal", metavar="DIR", help="collection (default ./.xmodal)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 = any free port, printed at start)")
    p.add_argument("--index-root", type=Path, metavar="DIR", help="allow POST /index for paths under DIR")
    p.add_argument("--max-upload-mb", type=float, default=50.0, help="largest request body in MiB (default 50)")
    p.add_argument("--retention-days", type=float, help="delete items and audit entries older than this")
    p.add_argument("--public-metrics", action="store_true", help="serve /metrics without an admin key")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from xmodal.api import create_app
    from xmodal.api.server import listen_socket
    from xmodal.api.settings import ServeSettings
    from xmodal.collection import Collection

    if not 0 <= args.port < 65536:
        raise InvalidArgumentError(f"--port must be 0-65535, got {args.port}")
    if args.max_upload_mb <= 0:
        raise InvalidArgumentError("--max-upload-mb must be positive")
    if args.retention_days is not None:
        from xmodal.access.retention import check_days

        check_days(args.retention_days)  # before the port is bound and the models load
    if args.index_root is not None and not args.index_root.is_dir():
        raise InvalidArgumentError(f"--index-root {args.index_root} is not a folder")
    try:
        import uvicorn
    except ImportError as exc:
        from xmodal.errors import MissingDependencyError

        raise MissingDependencyError("serving needs the 'serve' extra: pip install 'xmodal[serve]'") from exc
    # Bind here, not in uvicorn: a taken port is one clear line, and --port 0 can say which port it got.
    sock = listen_socket(args.host, args.port)
    port = int(sock.getsockname()[1])
    coll = None
    try:
        coll = Collection.open(args.collection)  # fails here, with one line, if there is none
        coll.verify_encoders()  # and if the installed models no longer make its vectors
        settings = ServeSettings(
            collection=coll.path,
            host=args.host,
            port=port,
            index_root=args.index_root.resolve() if args.index_root else None,
            max_upload_bytes=int(args.max_upload_mb * 2**20),
            retention_days=args.retention_days,
            metrics_public=args.public_metrics,
        )
        config = uvicorn.Config(
            create_app(settings, collection=coll),
            host=args.host,
            port=port,
            log_level=args.log_level,
            # Let an over-long request line reach the app, which answers a JSON 400 saying why.
            h11_max_incomplete_event_size=MAX_REQUEST_HEAD_BYTES,
        )
        if not _is_loopback(args.host):
            print(f"xmodal: serving on {args.host}: every request still needs an API key", file=sys.stderr)
        url = f"http://{f'[{args.host}]' if ':' in args.host else args.host}:{sock.getsockname()[1]}/"
        print(f"xmodal: serving {coll.path} ({len(coll)} items) at {url}", file=sys.stderr, flush=True)
        server = uvicorn.Server(config)
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=[sock])
    finally:
        sock.close()
        if coll is not None:
            coll.close()
    if not server.started:
        raise XmodalError("the server did not start (see the log above)")
    return 0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
