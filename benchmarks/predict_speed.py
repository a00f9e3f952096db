"""How fast ``pdfsg predict`` answers, as a user runs it: cold start, many files, a huge file.

Measures, each with the installed ``pdfsg`` in a fresh interpreter (``python -m pdfsg``):

* ``cold``: wall time of ``pdfsg predict FILE`` for the shipped example, median of 5 runs;
* ``many``: wall time of one ``pdfsg predict`` call on N files (default 1,000: the example
  with 1 % noise added, each its own file) and on 1 file; after start-up the rate is
  ``(N - 1) / (t_N - t_1)`` files/s;
* both again while a busy-loop process keeps a core busy (``busy``);
* ``stages``: in one process, milliseconds per file spent reading (``read_pdf_file``),
  preparing (``prepare_input``), in the networks (batched) and the rest;
* ``huge``: ``pdfsg predict`` on a 2-million-row file (r to 100 Å at 0.05 mÅ steps):
  wall time and peak resident memory of the process, and the time ``read_pdf_file`` takes
  of it;
* ``forward``: the shipped networks' NumPy forward against torch on the same inputs
  (maximum probability difference, ms per curve on one thread).

Usage::

    python benchmarks/predict_speed.py [--n 1000] [--skip-huge]

Writes ``benchmarks/results/predict_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "predict_speed.json"


def _run(args: list[str], timeout: float = 900.0) -> tuple[float, int, float]:
    """Wall time [s], exit code and peak RSS [MB] of ``python -m pdfsg ARGS``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pdfsg", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=timeout,
        env={k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")},
    )
    wall = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the largest of all children so far; a new maximum is this one
    rss_mb = peak / 1024 if peak > before else float("nan")
    if proc.returncode not in (0, 2):
        raise RuntimeError(f"pdfsg {' '.join(args[:3])}... failed: {proc.stderr.decode()[-500:]}")
    return wall, proc.returncode, rss_mb


def _write_series(folder: Path, n: int) -> list[str]:
    from pdfsg.io import read_pdf_file, write_gr
    from pdfsg.predict import example_files

    data = read_pdf_file(example_files()[0])
    rng = np.random.default_rng(0)
    amp = float(np.std(data.g))
    paths = []
    for i in range(n):
        path = folder / f"scan_{i:05d}.gr"
        g = data.g + 0.01 * amp * rng.normal(size=data.g.size)
        write_gr(path, data.r, g, title=f"scan {i}", settings={"qmax": data.qmax or 25.0})
        paths.append(str(path))
    return paths


def _cold(example: str, repeats: int) -> dict:
    walls = [_run(["predict", example])[0] for _ in range(repeats)]
    return {"median_s": statistics.median(walls), "runs_s": walls}


def _many(paths: list[str]) -> dict:
    t1 = statistics.median(_run(["predict", paths[0], "--format", "json"])[0] for _ in range(3))
    tn, code, _ = _run(["predict", *paths, "--format", "json"])
    return {
        "n_files": len(paths),
        "one_file_s": t1,
        "n_files_s": tn,
        "files_per_s_after_startup": (len(paths) - 1) / max(tn - t1, 1e-9),
        "exit_code": code,
    }


def _networks(model) -> list:
    """The network classifiers of a model (an ensemble's members, or the model itself)."""
    return [m for m in getattr(model, "members", [model]) if hasattr(m, "n_members")]


def _stages(paths: list[str]) -> dict:
    """Milliseconds per file of each stage, in this process (model loaded once)."""
    from pdfsg.io import read_pdf_file
    from pdfsg.models import limit_threads
    from pdfsg.predict import Predictor
    from pdfsg.preprocess import prepare_input

    limit_threads(1)
    pred = Predictor.load()
    model = pred.models[0]
    t = time.perf_counter()
    data = [read_pdf_file(p) for p in paths]
    t_read = time.perf_counter() - t
    t = time.perf_counter()
    prepared = [prepare_input(d.r, d.g, model.params, qmax_data=d.qmax) for d in data]
    t_prep = time.perf_counter() - t
    X = np.stack([p.x for p in prepared])
    t = time.perf_counter()
    for i in range(0, len(X), 256):
        model.predict_proba(X[i : i + 256])
    t_net = time.perf_counter() - t
    t = time.perf_counter()
    pred.predict_many(paths)
    t_all = time.perf_counter() - t
    n = len(paths)
    return {
        "read_ms": 1e3 * t_read / n,
        "prepare_ms": 1e3 * t_prep / n,
        "network_ms": 1e3 * t_net / n,
        "predict_many_ms": 1e3 * t_all / n,
        "rest_ms": 1e3 * (t_all - t_read - t_prep - t_net) / n,
        "network_members": sum(m.n_members for m in _networks(model)),
        "composition_in_headers": any(d.composition for d in data),
    }


def _huge(folder: Path) -> dict:
    """A 2-million-row file: r = 0.00005 ... 100 Å in 0.05 mÅ steps."""
    from pdfsg.io import read_pdf_file
    from pdfsg.predict import example_files

    data = read_pdf_file(example_files()[0])
    r = np.arange(1, 2_000_001) * 5e-5
    # the example curve, continued by itself beyond 30 Å with a decaying amplitude
    g = np.interp(np.mod(r, data.r[-1]), data.r, data.g) * np.exp(-np.maximum(r - 30, 0) / 40)
    path = folder / "huge.gr"
    with open(path, "w") as fh:
        fh.write("# 2,000,000 rows, r to 100 A at 0.05 mA\n# qmax = 25.0\n#### start data\n")
        np.savetxt(fh, np.column_stack([r, g]), fmt="%.5f %.6f")
    size_mb = path.stat().st_size / 1e6
    try:
        wall, code, rss = _run(["predict", str(path)], timeout=600)
    except subprocess.TimeoutExpired:
        return {"rows": r.size, "file_mb": size_mb, "timed_out_after_s": 600}
    t = time.perf_counter()
    read_pdf_file(path)
    read_s = time.perf_counter() - t
    return {
        "rows": r.size,
        "file_mb": size_mb,
        "wall_s": wall,
        "exit_code": code,
        "peak_mb": rss,
        "read_s": read_s,
    }


def _forward(n: int = 256) -> dict:
    """The shipped networks: NumPy forward vs torch, same inputs, one thread."""
    import torch

    from pdfsg.models import limit_threads
    from pdfsg.predict import Predictor

    limit_threads(1)
    torch.set_num_threads(1)
    out = {}
    rng = np.random.default_rng(1)
    for model in [net for m in Predictor.load().models for net in _networks(m)]:
        X = rng.random((n, model.npoints)).astype(np.float32)
        row = {}
        for engine in ("numpy", "torch"):
            model.engine = engine
            p = model.predict_proba(X)
            t = time.perf_counter()
            for _ in range(3):
                p = model.predict_proba(X)
            row[f"{engine}_ms_per_curve"] = 1e3 * (time.perf_counter() - t) / (3 * n)
            row[engine] = p
        model.engine = "auto"
        short = X[:, 10:110]
        model.engine = "torch"
        ps_t = model.predict_proba(short, start=10)
        model.engine = "numpy"
        ps_n = model.predict_proba(short, start=10)
        model.engine = "auto"
        out[str(model.manifest.get("name"))] = {
            "max_abs_probability_difference": float(np.abs(row["numpy"] - row["torch"]).max()),
            "max_abs_probability_difference_short_input": float(np.abs(ps_n - ps_t).max()),
            "same_top1": bool((row["numpy"].argmax(1) == row["torch"].argmax(1)).all()),
            "numpy_ms_per_curve": row["numpy_ms_per_curve"],
            "torch_ms_per_curve": row["torch_ms_per_curve"],
            "members": model.n_members,
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1000, help="files for the many-files run")
    ap.add_argument("--repeats", type=int, default=5, help="cold-start runs (median)")
    ap.add_argument("--skip-huge", action="store_true", help="skip the 2-million-row file")
    args = ap.parse_args()
    from pdfsg import __version__
    from pdfsg.predict import example_files

    example = str(example_files()[0])
    result: dict = {
        "pdfsg_version": __version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "load_average_at_start": os.getloadavg(),
        "command": " ".join(["python", "benchmarks/predict_speed.py", *sys.argv[1:]]),
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = _write_series(folder, args.n)
        result["idle"] = {"cold": _cold(example, args.repeats), "many": _many(paths)}
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(0.5)
            result["busy"] = {"cold": _cold(example, args.repeats), "many": _many(paths)}
        finally:
            busy.kill()
            busy.wait()
        result["stages"] = _stages(paths)
        if not args.skip_huge:
            result["huge"] = _huge(folder)
    result["forward"] = _forward()
    result["load_average_at_end"] = os.getloadavg()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
