"""Command-line interface: ``pdfsg <command> ...``.

Each subcommand lives in its own module of this package and exposes ``add_parser(subparsers)``
(which sets ``func`` on its parser).  The CLI only parses arguments, calls the Python API and
renders results; user errors (:class:`pdfsg.errors.PdfsgError`) become one line on stderr and
exit code 2 (``--traceback`` shows the full trace).

Only the module of the subcommand being run is imported (``pdfsg predict`` never imports what
``train`` or ``simulate`` need); ``pdfsg --help`` lists the subcommands from
:data:`SUBCOMMANDS` without importing any of them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Iterable, Sequence

from pdfsg import __version__
from pdfsg.errors import PdfsgError

#: subcommand -> its one-line help (the module ``pdfsg.cli.<name>_cmd`` gives the rest)
SUBCOMMANDS: dict[str, str] = {
    "simulate": "compute G(r) of structures",
    "dataset": "build a dataset of simulated PDFs, or show what a dataset file holds",
    "train": "train a logistic regression or a CNN on a dataset file",
    "evaluate": "top-k accuracy, confusions and figures of a model on a dataset split",
    "predict": "rank the space groups of measured PDF files",
    "serve": "serve an upload page and a JSON API for predictions",
    "stats": "statistics of real structures for synthetic crystals",
    "library": "build or show a structure library for predict --refine",
}


def command_of(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv`` (the first argument that is not an option), or None
    when there is none or it is not a subcommand (argparse then says so)."""
    for token in argv:
        if not token.startswith("-"):
            return token if token in SUBCOMMANDS else None
    return None


def build_parser(commands: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The ``pdfsg`` parser with the full parsers of ``commands`` (default: all of them);
    every other subcommand is listed with its help line only, its module not imported."""
    full = set(SUBCOMMANDS if commands is None else commands)
    parser = argparse.ArgumentParser(
        prog="pdfsg",
        description="Rank crystallographic space groups from a pair distribution function G(r).",
    )
    parser.add_argument("--version", action="version", version=f"pdfsg {__version__}")
    parser.add_argument("--traceback", action="store_true", help="show full tracebacks on error")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, text in SUBCOMMANDS.items():
        if name not in full:
            sub.add_parser(name, help=text, add_help=False)
            continue
        try:
            module = importlib.import_module(f"pdfsg.cli.{name}_cmd")
        except ModuleNotFoundError as exc:  # a subcommand module not written yet
            if exc.name != f"pdfsg.cli.{name}_cmd":
                raise
            continue
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = command_of(argv)
    parser = build_parser([command] if command else [])
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
