"""Entry point: ``xmodal COMMAND ...``. A user's mistake prints one line and exits non-zero."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from xmodal import __version__

# One module per sub-command, each with register(subparsers); see common.md in the docs.
COMMANDS = [
    "xmodal.cli.cmd_index",
    "xmodal.cli.cmd_search",
    "xmodal.cli.cmd_manage",
    "xmodal.cli.cmd_demo",
    "xmodal.cli.cmd_eval",
    "xmodal.cli.cmd_train",
    "xmodal.cli.cmd_serve",
    "xmodal.cli.cmd_keys",
    "xmodal.cli.cmd_audit",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xmodal", description="Cross-modal search over your media, offline.")
    parser.add_argument("--version", action="version", version=f"xmodal {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and library warnings")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue  # an optional command whose extra is not installed
        module.register(sub)
    return parser


QUIET_LOGGERS = ("RapidOCR", "transformers", "sentence_transformers", "huggingface_hub")


@contextmanager
def _quiet_libraries(debug: bool) -> Iterator[None]:
    """Libraries' warnings and info logs are noise on a user's terminal (one clear line per
    problem is the rule), so a command runs with them off, unless ``--debug``. Warning filters
    and logger levels are scoped to the command (``main()`` called in-process leaves the
    caller's as they were); the environment defaults (offline hub, no tokenizer threads, no hub
    progress bars) are set for the process, as libraries read them when first imported."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not debug:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        if not debug:
            warnings.simplefilter("ignore")
            for logger in loggers:
                logger.setLevel(logging.ERROR)
                # a filter too: RapidOCR sets its logger back to INFO when first imported
                logger.addFilter(_errors_only)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)
                logger.removeFilter(_errors_only)


def _errors_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def _sigterm_as_ctrl_c() -> Iterator[None]:
    """``kill``, ``timeout`` and ``docker stop`` send SIGTERM: treat it like Ctrl-C, so an index
    run keeps what it indexed so far and training keeps its best checkpoint instead of dying
    mid-step. (``serve`` installs its own handlers while it runs.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        yield
    finally:
        # None: the previous handler was not set from Python; the default is the closest match
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def main(argv: list[str] | None = None) -> int:
    from xmodal.errors import XmodalError
    from xmodal.ingest import display_path

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with _quiet_libraries(args.debug), _sigterm_as_ctrl_c():
            return int(args.func(args) or 0)
    except XmodalError as exc:
        print(f"xmodal: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("xmodal: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # the file system said no (not a directory, exists, read-only, full)
        where = f": {display_path(exc.filename)}" if isinstance(exc.filename, str | bytes) else ""
        print(f"xmodal: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug: still one line unless --debug
        if args.debug:
            raise
        print(f"xmodal: internal error: {type(exc).__name__}: {exc} (re-run with --debug for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
