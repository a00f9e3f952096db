"""Command-line interface: ``pdfsg <command> ...``.

Each subcommand lives in its own module of this package and exposes ``add_parser(subparsers)``
(which sets ``func`` on its parser).  The CLI only parses arguments, calls the Python API and
renders results; user errors (:class:`pdfsg.errors.PdfsgError`) become one line on stderr and
exit code 2 (``--traceback`` shows the full trace).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from pdfsg import __version__
from pdfsg.errors import PdfsgError

SUBCOMMANDS = ("simulate", "dataset", "train", "evaluate", "predict", "serve", "stats")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pdfsg",
        description="Rank crystallographic space groups from a pair distribution function G(r).",
    )
    parser.add_argument("--version", action="version", version=f"pdfsg {__version__}")
    parser.add_argument("--traceback", action="store_true", help="show full tracebacks on error")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"pdfsg.cli.{name}_cmd")
        except ModuleNotFoundError as exc:  # a subcommand module not written yet
            if exc.name != f"pdfsg.cli.{name}_cmd":
                raise
            continue
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except PdfsgError as exc:
        if args.traceback:
            raise
        print(f"pdfsg {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(f"pdfsg {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
