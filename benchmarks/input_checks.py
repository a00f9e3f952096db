"""How often the predictor's signal checks fire: detection and false-alarm rates.

Simulated like measurements (fine 0.02 Å grid from ~0, Qmax 18 or 26, Qdamp 0.04, Uiso
0.005 Å², X-ray) from real structures of ``mpts52_dev`` (every ``--step``-th row):

* bulk crystals with noise of 0, 2 and 5 % of max|G| — every warning here is a false alarm
  for the "noise" and "no long-range order" checks;
* the same crystals as spherical nanoparticles of 1.5, 2, 3, 5 and 10 nm (1 % noise) — the
  "G(r) has almost died out" warning should fire for the small ones;
* white noise on 0.01, 0.02 and 0.05 Å grids (no structure at all) — the "mostly noise"
  warning should fire;

and the measured files of ``<data>/experimental`` (which warnings each gets).

Usage::

    python benchmarks/input_checks.py [--data ../shared/data] [--step 40]

Writes ``benchmarks/results/input_checks.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

CHECKS = {
    "mostly_noise": "mostly noise",
    "noisy": "the data are noisy",
    "died_out": "has almost died out",
    "low_confidence": "low confidence",
}


def _flags(result) -> dict[str, bool]:
    text = " ".join(result.warnings)
    return {k: v in text for k, v in CHECKS.items()}


def _rates(flags: list[dict[str, bool]]) -> dict[str, float]:
    return {k: round(float(np.mean([f[k] for f in flags])), 4) for k in CHECKS} | {"n": len(flags)}


def main() -> None:
    from pdfsg import augment, pdf
    from pdfsg.params import PdfParams
    from pdfsg.predict import Predictor
    from pdfsg.shared_data import shared_data_dir
    from pdfsg.sources import iter_records
    from pdfsg.structures import record_structure

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=shared_data_dir())
    ap.add_argument("--step", type=int, default=40, help="every k-th structure of mpts52_dev")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    t0 = time.perf_counter()
    predictor = Predictor.load()
    rng = np.random.default_rng(0)
    structures = []
    for k, rec in enumerate(iter_records(args.data / "structures" / "mpts52_dev.csv.gz")):
        if k % args.step == 0:
            structures.append(record_structure(rec))
    groups: dict[str, list[dict[str, bool]]] = {}
    for i, s in enumerate(structures):
        qmax = (18.0, 26.0)[i % 2]
        p = PdfParams(rmin=0.02, rmax=30.0, rstep=0.02, qmin=0.8, qmax=qmax, qdamp=0.04,
                      uiso=0.005)  # fmt: skip
        r = p.r_grid()
        try:
            g = pdf.simulate(s, p)
        except Exception:  # a structure the engine refuses is skipped
            continue
        amp = float(np.abs(g).max())
        for level in (0.0, 0.02, 0.05):
            noisy = g + level * amp * rng.normal(size=g.size)
            res = predictor.predict(r, noisy, qmax=qmax, source="bulk")
            groups.setdefault(f"bulk, noise {level:.0%}", []).append(_flags(res))
        for d in (15.0, 20.0, 30.0, 50.0, 100.0):
            gn = g * augment.particle_envelope(r, d) + 0.01 * amp * rng.normal(size=g.size)
            res = predictor.predict(r, gn, qmax=qmax, source="np")
            groups.setdefault(f"nanoparticle {d / 10:g} nm", []).append(_flags(res))
    for h in (0.01, 0.02, 0.05):
        r = h * np.arange(1, int(30 / h) + 1)
        for _ in range(30):
            res = predictor.predict(r, rng.normal(size=r.size), source="noise")
            groups.setdefault(f"white noise, grid {h:g} Å", []).append(_flags(res))
    rates = {k: _rates(v) for k, v in groups.items()}
    measured = []
    index = args.data / "experimental" / "index.csv"
    if index.is_file():
        import csv

        with open(index, newline="") as fh:
            for row in csv.DictReader(fh):
                res = predictor.predict_file(args.data / "experimental" / row["file"])
                measured.append(
                    {"file": row["file"], "kind": row["crystalline_or_nano"], **_flags(res)}
                )
    result = {
        "structures": len(structures),
        "rates": rates,
        "measured": measured,
        "seconds": round(time.perf_counter() - t0, 1),
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "input_checks.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [
        "| inputs | n | 'mostly noise' | 'noisy' | 'died out' (no long-range order) | low "
        "confidence |",
        "|---|---|---|---|---|---|",
    ]
    for name, r_ in rates.items():
        lines.append(
            f"| {name} | {r_['n']} | {r_['mostly_noise']:.0%} | {r_['noisy']:.0%} | "
            f"{r_['died_out']:.0%} | {r_['low_confidence']:.0%} |"
        )
    lines += ["", "| measured file | kind | warnings |", "|---|---|---|"]
    for m in measured:
        fired = [CHECKS[k] for k in CHECKS if m[k]]
        lines.append(f"| {m['file']} | {m['kind']} | {'; '.join(fired) or 'none'} |")
    (args.out / "input_checks.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
