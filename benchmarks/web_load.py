"""Throughput of ``pdfsg serve``: single-file predictions per second from a local client.

Starts ``pdfsg serve`` in a subprocess on a free loopback port, then posts the shipped example
PDF to ``POST /api/predict`` from an asyncio httpx client: a warm-up, then ``--requests``
requests at each ``--concurrency`` level (default 1 and 50 in flight).  Each level stops
launching requests after ``--time-limit`` seconds.  Records requests per second, latency
percentiles, HTTP statuses and client errors, and fails (exit 1) when any request at the
highest level did not answer 200.  Client and server share this machine's cores.

With ``--model default`` and no shipped model yet, the server gets a logistic regression
with random coefficients over the paper's 45 groups (recorded in the results): the numbers
then measure the server and the preprocessing, not a CNN's inference.

Writes ``benchmarks/results/web_load.json``.

Usage::

    python benchmarks/web_load.py [--model default] [--requests 300] [--concurrency 1 50]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np

from pdfsg.errors import ModelError
from pdfsg.predict import example_files, resolve_model_paths

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def random_model(folder: Path) -> Path:
    """A logistic regression with random coefficients over the paper's 45 groups."""
    from pdfsg.artifact import save_model
    from pdfsg.models import LogRegClassifier
    from pdfsg.params import PdfParams
    from pdfsg.spacegroups import label_set

    params = PdfParams()
    labels = label_set("paper45")
    rng = np.random.default_rng(0)
    clf = LogRegClassifier(
        labels=labels,
        params=params,
        coef=rng.normal(0.0, 0.15, size=(len(labels), params.npoints)),
        intercept=np.zeros(len(labels)),
        config={"feature": "x"},
    )
    return save_model(folder, clf, name="random-logreg-paper45")


def start_server(model: str, port: int, parallel: int) -> subprocess.Popen:
    code = "import sys; from pdfsg.cli import main; sys.exit(main(sys.argv[1:]))"
    argv = ["serve", "--model", model, "--host", HOST, "--port", str(port)]
    argv += ["--parallel", str(parallel)]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": str(parallel)}
    return subprocess.Popen([sys.executable, "-c", code, *argv], env=env)


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"web_load: the server exited with code {proc.returncode}")
        try:
            return httpx.get(f"{url}api/info", timeout=2.0).json()
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"web_load: the server did not answer within {timeout:.0f} s")


async def run_level(
    url: str, payload: bytes, name: str, n: int, concurrency: int, time_limit: float
) -> dict:
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    errors: list[str] = []
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=120.0) as client:
        t0 = time.perf_counter()
        deadline = t0 + time_limit

        async def one() -> None:
            async with sem:
                if time.perf_counter() > deadline:
                    statuses["not sent (time limit)"] += 1
                    return
                t = time.perf_counter()
                try:
                    resp = await client.post(
                        f"{url}api/predict",
                        files=[("files", (name, payload, "text/plain"))],
                    )
                except httpx.HTTPError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    statuses["client error"] += 1
                    return
                latencies.append(1000 * (time.perf_counter() - t))
                statuses[str(resp.status_code)] += 1
                if resp.status_code != 200:
                    errors.append(f"HTTP {resp.status_code}: {resp.text[:200]}")

        await asyncio.gather(*(one() for _ in range(n)))
        wall = time.perf_counter() - t0
    ok = statuses.get("200", 0)
    lat = np.array(latencies) if latencies else np.array([np.nan])
    return {
        "concurrency": concurrency,
        "requests": n,
        "answered_200": ok,
        "errors": len(errors),
        "first_errors": errors[:5],
        "statuses": dict(statuses),
        "wall_s": round(wall, 3),
        "requests_per_s": round(ok / wall, 2) if wall > 0 else None,
        "latency_ms": {
            "p50": round(float(np.percentile(lat, 50)), 1),
            "p95": round(float(np.percentile(lat, 95)), 1),
            "max": round(float(lat.max()), 1),
            "mean": round(float(statistics.fmean(latencies)), 1) if latencies else None,
        },
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="default", help="model name or folder (default)")
    ap.add_argument("--requests", type=int, default=300, help="requests per level (300)")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 50])
    ap.add_argument("--parallel", type=int, default=2, help="server's ranking threads (2)")
    ap.add_argument("--time-limit", type=float, default=60.0, help="seconds per level (60)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "web_load.json")
    args = ap.parse_args()

    example = example_files()[0]
    payload = example.read_bytes()
    note = None
    with tempfile.TemporaryDirectory(prefix="pdfsg-web-load-") as tmp:
        model = args.model
        try:
            resolve_model_paths(model)
        except ModelError as exc:
            if args.model != "default":
                raise SystemExit(f"web_load: {exc}") from None
            model = str(random_model(Path(tmp) / "random-logreg-paper45"))
            note = (
                "no shipped model found: served a logistic regression with random "
                "coefficients over the paper's 45 groups (server + preprocessing cost only)"
            )
        port = free_port()
        url = f"http://{HOST}:{port}/"
        proc = start_server(model, port, args.parallel)
        try:
            info = wait_ready(url, proc)
            warm = asyncio.run(run_level(url, payload, example.name, 10, 2, 30.0))
            if warm["errors"]:
                raise SystemExit(f"web_load: warm-up failed: {warm['first_errors']}")
            levels = []
            for c in args.concurrency:
                n = max(args.requests, c)
                level = asyncio.run(run_level(url, payload, example.name, n, c, args.time_limit))
                levels.append(level)
                print(
                    f"concurrency {c:>3}: {level['answered_200']}/{n} answered 200, "
                    f"{level['requests_per_s']} req/s, p50 {level['latency_ms']['p50']} ms, "
                    f"p95 {level['latency_ms']['p95']} ms, errors {level['errors']}",
                    file=sys.stderr,
                )
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()

    top = max(levels, key=lambda lv: lv["concurrency"])
    passed = top["errors"] == 0 and top["answered_200"] == top["requests"]
    result = {
        "benchmark": "web_load",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "note": "client and server on the same machine (loopback)",
        },
        "server": {
            "command": f"pdfsg serve --model <model> --parallel {args.parallel}",
            "model": info["model"],
            "model_kinds": [m["kind"] for m in info["models"]],
            "n_groups": info["n_groups"],
            "model_note": note,
        },
        "request": {"file": example.name, "bytes": len(payload), "files_per_request": 1},
        "levels": levels,
        "passed": passed,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
