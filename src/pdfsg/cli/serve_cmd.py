"""``pdfsg serve``: the upload page and JSON API (``POST /api/predict``) on a local port."""

from __future__ import annotations

import argparse
import ipaddress
import sys

from pdfsg.errors import PdfsgError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve an upload page and a JSON API for predictions",
        description=(
            "Start a web server: a page where PDF files are dropped and ranked, and the JSON "
            "API POST /api/predict (schema at /openapi.json). The model is loaded once, at "
            "start-up. There is no authentication: on a host other than the loopback "
            "address anyone who reaches the port can use it."
        ),
    )
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on ({DEFAULT_HOST})")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port ({DEFAULT_PORT})")
    p.add_argument("--model", default="default", help="model name or folder (default: shipped)")
    p.add_argument(
        "--max-file-mb",
        type=float,
        default=5.0,
        metavar="MB",
        help="largest accepted file in MB (5)",
    )
    p.add_argument("--max-files", type=int, default=20, help="most files per request (20)")
    p.add_argument("--parallel", type=int, default=2, help="requests ranked at the same time (2)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise PdfsgError(f"--port must be in 0..65535, got {args.port}")
    if args.max_file_mb <= 0 or args.max_files < 1 or args.parallel < 1:
        raise PdfsgError("--max-file-mb must be > 0, --max-files and --parallel >= 1")
    try:
        import uvicorn

        from pdfsg.web.app import create_app
    except ModuleNotFoundError as exc:
        raise PdfsgError(
            f"pdfsg serve needs the web extra ({exc.name} is missing): pip install 'pdfsg[web]'"
        ) from exc

    app = create_app(
        model=args.model,
        max_file_bytes=int(args.max_file_mb * 1024 * 1024),
        max_files=args.max_files,
        max_parallel=args.parallel,
    )
    if not _is_loopback(args.host):
        print(
            f"pdfsg serve: warning: listening on {args.host}: no authentication, anyone who "
            "can reach this port can upload files",
            file=sys.stderr,
        )
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"pdfsg serve: http://{shown}:{args.port}/  (Ctrl+C to stop)", file=sys.stderr)
    uvicorn.run(
        app, host=args.host, port=args.port, log_level="info" if args.verbose else "warning"
    )
    return 0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
