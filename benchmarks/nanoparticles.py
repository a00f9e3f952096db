"""The shipped model on nanoparticles: accuracy per particle diameter.

Test structures of the mpts52 rows (``--dataset`` test split, rows the model was not
calibrated on; every ``--step``-th), simulated like a nanoparticle measurement (fine 0.02 Å
grid from ~0 to 30 Å, Qmax 18 1/Å, Qdamp 0.04, Uiso 0.005 Å², X-ray, 1 % noise) as bulk and
as spheres of 2, 3, 5, 10 and 20 nm (the bulk curve times the sphere's characteristic
function, ``pdfsg.augment.particle_envelope``). Top-1 and top-6 of the shipped family (or
``--model``) with G(r) only and with the structure's composition, ranked among the model's
groups or, with ``--label-set paper45``, among the paper's 45 (the rows are of the 45).

Usage::

    python benchmarks/nanoparticles.py work/mp_paper45.h5 --mpts52 work/mpts52_paper45.h5 \
        [--model pdfsg-v3] [--label-set paper45]

Writes ``benchmarks/results/nanoparticles.{json,md}`` (``nanoparticles_<model>[_<set>]``
when a model or label set is named).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

DIAMETERS_NM = (2.0, 3.0, 5.0, 10.0, 20.0, None)


def main() -> None:
    from _runs import result_stem

    from pdfsg import augment, pdf
    from pdfsg.calibration import used_for_calibration
    from pdfsg.datasets import read_dataset
    from pdfsg.params import PdfParams
    from pdfsg.predict import Predictor
    from pdfsg.shared_data import shared_data_dir
    from pdfsg.sources import iter_records
    from pdfsg.structures import record_structure

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--mpts52", type=Path, required=True)
    ap.add_argument("--data", type=Path, default=shared_data_dir())
    ap.add_argument("--step", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument("--model", default="default", help="family / model name or folder")
    ap.add_argument("--label-set", default=None, help="rank among this set (paper45)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    predictor = Predictor.load(args.model)
    stem = result_stem("nanoparticles", args.model, args.label_set)
    ds = read_dataset(args.dataset)
    mp52 = set(map(str, read_dataset(args.mpts52).ids))
    test = np.flatnonzero(ds.split == 1)
    held = np.zeros(test.size, bool)
    for m in predictor.models:
        held |= used_for_calibration(m.manifest, ds.ids[test])
    wanted = {str(ds.ids[i]): int(ds.y[i]) for i in test[~held] if str(ds.ids[i]) in mp52}
    wanted = dict(sorted(wanted.items())[:: args.step])
    p = PdfParams(rmin=0.02, rmax=30.0, rstep=0.02, qmin=0.8, qmax=18.0, qdamp=0.04,
                  uiso=0.005)  # fmt: skip
    r = p.r_grid()
    rng = np.random.default_rng(0)
    hits = {str(d): {"g_only": [], "composition": []} for d in DIAMETERS_NM}
    for rec in iter_records(args.data / "structures" / "mpts52_dev.csv.gz"):
        if rec.id not in wanted:
            continue
        s = record_structure(rec)
        g = pdf.simulate(s, p)
        formula = s.composition.reduced_formula
        for d in DIAMETERS_NM:
            gn = g * (augment.particle_envelope(r, 10 * d) if d else 1.0)
            gn = gn + 0.01 * np.abs(gn).max() * rng.normal(size=gn.size)
            for mode, comp in (("g_only", False), ("composition", formula)):
                res = predictor.predict(
                    r, gn, qmax=18.0, composition=comp or None, top=0, label_set=args.label_set
                )
                order = [q.space_group for q in res.predictions]
                sg = wanted[rec.id]
                hits[str(d)][mode].append(order.index(sg) + 1 if sg in order else 99)
    rows = {}
    for d, modes in hits.items():
        rows[d] = {
            mode: {
                "n": len(v),
                "top1": float(np.mean(np.asarray(v) == 1)),
                "top6": float(np.mean(np.asarray(v) <= 6)),
            }
            for mode, v in modes.items()
        }
    result = {
        "model": args.model,
        "label_set": args.label_set or "the model's",
        "structures": len(wanted),
        "rows": rows,
        "seconds": time.perf_counter() - t0,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [
        "| diameter | n | G(r) only top-1 / top-6 | + composition top-1 / top-6 |",
        "|---|---|---|---|",
    ]
    for d, m in rows.items():
        name = "bulk" if d == "None" else f"{float(d):g} nm"
        a, b = m["g_only"], m["composition"]
        lines.append(
            f"| {name} | {a['n']} | {100 * a['top1']:.1f} / {100 * a['top6']:.1f} % "
            f"| {100 * b['top1']:.1f} / {100 * b['top6']:.1f} % |"
        )
    (args.out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
