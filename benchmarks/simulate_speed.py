"""Structures per second of the PDF engines, side by side on the same real structures.

Loads N structures (default 1,000) of ``mpts52_dev.csv.gz`` (parsing is not timed), then
times, on one core and on all cores (one process per core, fork):

* ``pdffit2``: diffpy.pdffit2 computing the 209 points directly on the paper grid, the
  cheapest way to call it (``oversample=1``; on this grid its curve aliases, see pdf.py);
* ``pdffit2-accurate``: pdffit2 oversampled 10x from r ~ 0, the reference used for agreement
  (timed on a subset, it is slow);
* ``fast``: pdfsg's engine (numba pair histogram + cached band-pass operator).

Every engine gets the same pymatgen Structures and the paper's PdfParams (Qmin = 0 for
pdffit2, which has none; the fast engine applies the Qmin cut at no extra cost).

Usage::

    python benchmarks/simulate_speed.py [--n 1000] [--data ../shared/data]

Writes ``benchmarks/results/simulate_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import time
import warnings
from pathlib import Path

os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

STRUCTURES: list = []


def _run(engine: str, indices: list[int]) -> int:
    from pdfsg import pdf
    from pdfsg.params import PdfParams

    params = PdfParams() if engine == "fast" else PdfParams(qmin=0.0)
    for i in indices:
        s = STRUCTURES[i]
        if engine == "fast":
            pdf.simulate_fast(s, params)
        elif engine == "pdffit2":
            pdf.simulate_pdffit2(s, params, oversample=1)
        else:
            pdf.simulate_pdffit2(s, params, oversample=10)
    return len(indices)


def _warm(engine: str) -> None:
    _run(engine, [0])


def timed(engine: str, indices: list[int], workers: int) -> float:
    """Structures per second."""
    if workers == 1:
        _warm(engine)
        t = time.perf_counter()
        _run(engine, indices)
        return len(indices) / (time.perf_counter() - t)
    chunks = [indices[k::workers] for k in range(workers)]
    ctx = mp.get_context("fork")
    with ctx.Pool(workers) as pool:
        pool.map(_warm, [engine] * workers)
        t = time.perf_counter()
        pool.starmap(_run, [(engine, c) for c in chunks])
        return len(indices) / (time.perf_counter() - t)


def main() -> None:
    from pdfsg.errors import StructureError
    from pdfsg.shared_data import shared_data_dir
    from pdfsg.sources import iter_records
    from pdfsg.structures import record_structure

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=shared_data_dir())
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--n-accurate", type=int, default=200)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "simulate_speed.json"
    )
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    for rec in iter_records(args.data / "structures" / "mpts52_dev.csv.gz"):
        try:
            s = record_structure(rec)
        except StructureError:
            continue
        if s.is_ordered:
            STRUCTURES.append(s)
        if len(STRUCTURES) >= args.n:
            break
    idx = list(range(len(STRUCTURES)))
    sub = idx[: args.n_accurate]
    results = {}
    for engine, ii in (("fast", idx), ("pdffit2", idx), ("pdffit2-accurate", sub)):
        for workers in sorted({1, args.workers}):
            rate = timed(engine, ii, workers)
            results[f"{engine}/{workers}"] = {"structures": len(ii), "per_second": rate}
            print(
                f"{engine:17s} workers={workers}: {rate:8.1f} structures/s ({len(ii)} structures)",
                flush=True,
            )
    w = args.workers
    out = {
        "what": "structures per second from pymatgen Structure to G(r), paper settings",
        "n_structures": len(STRUCTURES),
        "mean_atoms_per_cell": sum(len(s) for s in STRUCTURES) / len(STRUCTURES),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.processor(),
        },
        "results": results,
        "speedup_fast_vs_pdffit2": {
            "1_core": results["fast/1"]["per_second"] / results["pdffit2/1"]["per_second"],
            f"{w}_cores": results[f"fast/{w}"]["per_second"]
            / results[f"pdffit2/{w}"]["per_second"],
            "vs_accurate_1_core": results["fast/1"]["per_second"]
            / results["pdffit2-accurate/1"]["per_second"],
        },
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    print(json.dumps(out["speedup_fast_vs_pdffit2"], indent=1))


if __name__ == "__main__":
    main()
