"""``pdfsg serve``: the upload page and JSON API (``POST /api/predict``) on a local port."""

from __future__ import annotations

import argparse
import errno
import ipaddress
import socket
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

    sock = bind_socket(args.host, args.port)  # a busy port fails here, before anything is said
    try:
        app = create_app(
            model=args.model,
            max_file_bytes=int(args.max_file_mb * 1024 * 1024),
            max_files=args.max_files,
            max_parallel=args.parallel,
        )
        if not _is_loopback(args.host):
            print(
                f"pdfsg serve: warning: listening on {args.host}: no authentication, anyone "
                "who can reach this port can upload files",
                file=sys.stderr,
            )
        shown = f"[{args.host}]" if ":" in args.host else args.host
        port = sock.getsockname()[1]
        print(f"pdfsg serve: http://{shown}:{port}/  (Ctrl+C to stop)", file=sys.stderr)
        config = uvicorn.Config(app, log_level="info" if args.verbose else "warning")
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
    return 0


def bind_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (as uvicorn binds it: SO_REUSEADDR, inheritable).

    Raises
    ------
    PdfsgError
        One line when the address cannot be bound (port in use, no permission, bad host).
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise PdfsgError(f"--host {host}: cannot resolve ({exc.strerror})") from None
    family = infos[0][0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(infos[0][4])
    except OSError as exc:
        sock.close()
        why = "already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        raise PdfsgError(f"--port {port}: cannot listen on {host}:{port}: {why}") from None
    sock.set_inheritable(True)
    return sock


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
