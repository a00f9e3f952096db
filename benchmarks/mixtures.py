"""How often the two-phase warning (:mod:`pdfsg.mixture`) fires: detection per minor-phase
weight, false alarms on single phases, and the measured files.

Simulated from the **test** split of ``work/mp_paper45.h5`` (structures the detector never
saw), as ``tools/mixture_detector.py`` simulates its training curves
(:func:`pdfsg.mixture.simulate`: random Qmax 14–23 1/Å, extra Qdamp and thermal broadening,
baseline, 0–4 % noise, 30 % of the phases nanoparticles of 1.5–50 nm):

* two-phase sums ``(1 - w) G_i + w G_j`` of two test structures, detection per minor-phase
  weight bin ``w`` (5–15, 15–30, 30–50 %);
* single phases, false alarms, in all (as simulated) and split into bulk without noise,
  bulk with 2 % and 5 % noise, and nanoparticles of 1.5, 2, 3, 5 and 10 nm (1 % noise);

and every file of ``<data>/experimental`` through ``Predictor.predict_file`` (its score and
whether the warning fired), with the detector's time per curve.

Usage::

    python benchmarks/mixtures.py [--data ../shared/data] [--work work] [--n 10000]

Writes ``benchmarks/results/mixtures.{json,md}``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BINS = ((0.05, 0.15), (0.15, 0.30), (0.30, 0.50))


def main() -> None:
    from pdfsg import augment, mixture
    from pdfsg.datasets import read_dataset
    from pdfsg.predict import Predictor
    from pdfsg.shared_data import shared_data_dir

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=shared_data_dir())
    ap.add_argument("--work", type=Path, default=ROOT / "work")
    ap.add_argument("--n", type=int, default=10_000, help="simulated curves (half mixtures)")
    ap.add_argument("--seed", type=int, default=123)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    t0 = time.perf_counter()
    det = mixture.MixtureDetector.load()
    n = mixture.detector_grid().size
    test = read_dataset(args.work / "mp_paper45.h5").test()
    g_test = test.G[:, :n].astype(np.float64)
    rng = np.random.default_rng(args.seed)
    pairs = list(mixture.simulate(g_test, test.formula, args.n, rng))
    x = np.stack([c for c, _ in pairs])
    w = np.array([w for _, w in pairs])
    s = det.scores(x)
    flagged = s >= det.threshold
    rates: dict[str, dict[str, float]] = {}
    for lo, hi in BINS:
        sel = (w >= lo) & (w < hi)
        rates[f"two phases, minor {lo:.0%}–{hi:.0%}"] = {
            "n": int(sel.sum()), "flagged": round(float(flagged[sel].mean()), 4),
        }  # fmt: skip
    rates["single phase, as simulated"] = {
        "n": int((w == 0).sum()), "flagged": round(float(flagged[w == 0].mean()), 4),
    }  # fmt: skip

    # single phases by kind: clean bulk, noisy bulk, nanoparticles
    r = mixture.detector_grid()
    rows = rng.choice(len(g_test), size=min(1000, len(g_test)), replace=False)
    base = g_test[rows]
    amp = np.abs(base).max(axis=1, keepdims=True)
    kinds = {f"single bulk, noise {lv:.0%}": base + lv * amp * rng.normal(size=base.shape)
             for lv in (0.0, 0.02, 0.05)}  # fmt: skip
    for d in (15.0, 20.0, 30.0, 50.0, 100.0):
        env = base * augment.particle_envelope(r, d)
        kinds[f"single nanoparticle {d / 10:g} nm"] = env + 0.01 * amp * rng.normal(size=base.shape)
    for name, curves in kinds.items():
        hit = det.scores(curves) >= det.threshold
        rates[name] = {"n": len(curves), "flagged": round(float(hit.mean()), 4)}

    # speed: one curve at a time, as predict calls it
    one = x[:200]
    t = time.perf_counter()
    for c in one:
        mixture.mixture_score(r, c, det)
    per_curve_ms = (time.perf_counter() - t) / len(one) * 1e3

    predictor = Predictor.load()
    measured = []
    with open(args.data / "experimental" / "index.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            res = predictor.predict_file(args.data / "experimental" / row["file"])
            # x is min-max normalised G: the detector standardises, so x scores as G does
            score = mixture.mixture_score(res.r, res.x, det)
            measured.append({
                "file": row["file"], "kind": row["crystalline_or_nano"],
                "phases": "two" if "mixture" in row["material"] else "one",
                "score": None if score is None else round(score, 4),
                "warned": any("more than one phase" in m for m in res.warnings),
            })  # fmt: skip
    result = {
        "detector": {
            "threshold": round(det.threshold, 4),
            "false_alarm_target": det.false_alarm_rate,
            "library": int(det.library.shape[0]),
        },
        "rates": rates,
        "measured": measured,
        "ms_per_curve": round(per_curve_ms, 4),
        "seconds": round(time.perf_counter() - t0, 1),
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "mixtures.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [
        f"Threshold {det.threshold:.3f} (3 % of simulated single-phase test curves above it); "
        f"{per_curve_ms:.3f} ms a curve.",
        "",
        "| simulated inputs (test split) | n | 'more than one phase' |",
        "|---|---|---|",
    ]
    lines += [f"| {k} | {v['n']} | {v['flagged']:.1%} |" for k, v in rates.items()]
    lines += ["", "| measured file | phases | score | warned |", "|---|---|---|---|"]
    for m in measured:
        sc = "n/a" if m["score"] is None else f"{m['score']:.3f}"
        lines.append(f"| {m['file']} | {m['phases']} | {sc} | {'yes' if m['warned'] else 'no'} |")
    (args.out / "mixtures.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
