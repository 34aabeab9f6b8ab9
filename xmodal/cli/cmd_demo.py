"""xmodal demo : build a real mixed corpus, index it and query it in every direction."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="build, index and search a small mixed demo corpus")
    p.add_argument(
        "--dir", type=Path, default=Path("demo-data"), help="where to write the corpus (default ./demo-data)"
    )
    p.add_argument("-c", "--collection", type=Path, default=None, help="collection directory (default DIR/collection)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from xmodal.cli.cmd_index import TqdmProgress
    from xmodal.demo import run_demo

    missed = run_demo(args.dir.absolute(), args.collection, progress=TqdmProgress())
    return 1 if missed else 0
