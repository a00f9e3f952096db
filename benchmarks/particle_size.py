"""Particle diameter from G(r): error per diameter on simulated nanoparticles, and measured files.

The raw G(r) of the test rows (split 1) of ``--dataset`` (r 1.5–30 Å, π/23 grid, Qmax 23,
Qdamp 0.04) become spheres of 1.5, 2, 3, 5, 10 and 20 nm and bulk, each with its own random
Qmax 14–27 1/Å, Qdamp 0.02–0.06 1/Å and 0–3 % noise
(:func:`pdfsg.particle_size.simulate_particles`); ``--copies`` draws per structure and
diameter.  For each bin: the median relative error of the estimate, the share within 25 %,
and the share reported as bulk (for bulk: bulk called bulk), for the shipped network
(:func:`pdfsg.particle_size.estimate_diameter`) and the envelope fit that models Qdamp
jointly (:func:`pdfsg.particle_size.fit_envelope`, Qdamp free in 0.02–0.06, or given).
Then the measured files of ``../shared/data/experimental`` (read like ``pdfsg predict``
does, on the model grid), and the time per estimate.

Usage::

    python benchmarks/particle_size.py work/mpts52_paper45.h5 [--plot]

Writes ``benchmarks/results/particle_size.{json,md}`` (and ``figures/particle_size.png``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

DIAMETERS_NM = (1.5, 2.0, 3.0, 5.0, 10.0, 20.0, math.inf)
#: the refinement's spherical diameter of the Pt file (README, ``pdfsg predict --refine``)
PT_REFINED_NM = 4.0
PT_PUBLISHED_NM = (2.5, 4.0)
BULK_FILES = (
    "Ni_xray300K_pdfgui.gr", "Ni_neutron300K_pdfgui.gr", "NaCl_cmiexchange.gr",
    "Si_cmi-ch05.gr", "SrTiO3_srmise.gr", "LaMnO3_300K_pdfgui.gr",
    "CdSe-wurtzite-bulk_pdfgui.gr",
)  # fmt: skip


def _stats(true_nm: float, est: np.ndarray, bulk: np.ndarray) -> dict[str, float]:
    """Median relative error, share within 25 % and share called bulk of estimates [nm]
    (inf where an estimator says bulk) of particles of ``true_nm``."""
    out = {"n": int(est.size), "called_bulk": float(np.mean(bulk))}
    if math.isfinite(true_nm):
        rel = np.abs(est - true_nm) / true_nm
        out["median_rel_error"] = float(np.median(rel))
        out["within_25pct"] = float(np.mean(rel <= 0.25))
    return out


def simulated(path: Path, copies: int, seed: int) -> dict:
    from pdfsg.datasets import read_dataset
    from pdfsg.particle_size import estimate_diameter, fit_envelope, simulate_particles

    ds = read_dataset(path)
    r = np.asarray(ds.r, dtype=np.float64)
    g0 = np.asarray(ds.G, dtype=np.float64)[np.asarray(ds.split) == 1]
    rng = np.random.default_rng(seed)
    rows = {}
    seconds = []
    for d in DIAMETERS_NM:
        g = np.repeat(g0, copies, axis=0)
        n = g.shape[0]
        qmax, qdamp = rng.uniform(14.0, 27.0, n), rng.uniform(0.02, 0.06, n)
        sim = simulate_particles(r, g, np.full(n, d), qmax, qdamp, rng.uniform(0, 0.03, n), rng)
        net, net_bulk, fit, fit_q = [], [], [], []
        for row, q in zip(sim, qdamp, strict=True):
            t0 = time.perf_counter()
            e = estimate_diameter(r, row)
            seconds.append(time.perf_counter() - t0)
            net.append(e.point_nm if e.bulk else e.diameter_nm)
            net_bulk.append(e.bulk)
            fit.append(fit_envelope(r, row))
            fit_q.append(fit_envelope(r, row, qdamp=float(q)))
        fit, fit_q = np.asarray(fit), np.asarray(fit_q)
        rows["bulk" if math.isinf(d) else f"{d:g}"] = {
            "network": _stats(d, np.asarray(net), np.asarray(net_bulk)),
            "fit": _stats(d, fit, ~np.isfinite(fit) | (fit > 10.0)),
            "fit_known_qdamp": _stats(d, fit_q, ~np.isfinite(fit_q) | (fit_q > 10.0)),
        }
    return {"structures": int(g0.shape[0]), "copies": copies, "rows": rows,
            "ms_per_estimate": 1e3 * float(np.median(seconds))}  # fmt: skip


def measured(folder: Path) -> dict:
    from pdfsg.io import read_pdf_file
    from pdfsg.params import PdfParams
    from pdfsg.particle_size import estimate_diameter
    from pdfsg.preprocess import resample_to_grid

    grid = PdfParams().r_grid()  # the shipped models' grid, as predict sees the data
    out = {}
    for path in sorted(folder.glob("*.gr")):
        data = read_pdf_file(path)
        g = resample_to_grid(data.r, data.g, grid, qmax_target=23.0, qmax_data=data.qmax)
        ok = np.isfinite(g)
        t0 = time.perf_counter()
        for _ in range(100):
            e = estimate_diameter(grid[ok], g[ok])
        ms = 10.0 * (time.perf_counter() - t0)
        raw = estimate_diameter(data.r, data.g)  # on the file's own grid
        out[path.name] = {
            "estimate": None if e is None else e.to_dict(),
            "text": None if e is None else e.text(),
            "own_grid_diameter_nm": None if raw is None else raw.diameter_nm,
            "ms": round(ms, 3),
        }
    return out


def main() -> None:
    from pdfsg.shared_data import shared_data_dir

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--data", type=Path, default=shared_data_dir())
    ap.add_argument("--copies", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plot", action="store_true")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    t0 = time.perf_counter()
    result = simulated(args.dataset, args.copies, args.seed)
    files = measured(args.data / "experimental")
    pt = files.get("Pt-NP_cmi-ch03.gr", {})
    result["measured"] = files
    result["pt"] = {"estimate": pt.get("estimate"), "refined_sphere_nm": PT_REFINED_NM,
                    "published_nm": list(PT_PUBLISHED_NM)}  # fmt: skip
    result["bulk_files_called_bulk"] = {
        f: bool(files[f]["estimate"] and files[f]["estimate"]["bulk"])
        for f in BULK_FILES
        if f in files
    }
    result["seconds"] = round(time.perf_counter() - t0, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "particle_size.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [
        f"{result['structures']} mpts52 test structures × {args.copies} per diameter; "
        "median relative error / share within 25 % / share called bulk",
        "",
        "| diameter | network | envelope fit, Qdamp free | envelope fit, Qdamp known |",
        "|---|---|---|---|",
    ]
    for name, row in result["rows"].items():
        cells = []
        for m in ("network", "fit", "fit_known_qdamp"):
            s = row[m]
            if name == "bulk":
                cells.append(f"bulk called bulk {100 * s['called_bulk']:.0f} %")
            else:
                cells.append(
                    f"{100 * s['median_rel_error']:.0f} % / {100 * s['within_25pct']:.0f} % / "
                    f"{100 * s['called_bulk']:.0f} %"
                )
        label = name if name == "bulk" else f"{name} nm"
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "| measured file | estimate | ms |", "|---|---|---|"]
    for f, m in files.items():
        lines.append(f"| {f} | {m['text']} | {m['ms']:.2f} |")
    lines += [
        "",
        f"Pt nanoparticles: published {PT_PUBLISHED_NM[0]:g}–{PT_PUBLISHED_NM[1]:g} nm, "
        f"refined sphere {PT_REFINED_NM:g} nm; estimate: {pt.get('text')}.",
        f"Time per estimate: {result['ms_per_estimate']:.2f} ms (simulated, median).",
    ]
    (args.out / "particle_size.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if args.plot:
        plot(result, args.out / "figures" / "particle_size.png")


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in result["rows"] if n != "bulk"]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for k, (m, label) in enumerate(
        (
            ("network", "network"),
            ("fit", "fit, Qdamp free"),
            ("fit_known_qdamp", "fit, Qdamp known"),
        )
    ):
        y = [100 * result["rows"][n][m]["median_rel_error"] for n in names]
        ax.bar(x + (k - 1) * 0.27, y, 0.27, label=label)
    ax.set_xticks(x, [f"{n} nm" for n in names])
    ax.set_ylabel("median relative error [%]")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
