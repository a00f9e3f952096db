"""Accuracy against how far the data reach in r: the shipped families on curves cut short.

The clean mpts52 test rows of a dataset (those neither compared family was calibrated on),
cut at r_max = 10 … 30 Å and answered by the model ``pdfsg predict`` chooses for them
(``Predictor.choose_model``): the longest-range model whose grid they cover, else the
variable-length one of the shortest range on the grid points they cover (the PDF memory on
the window they cover).  Where the data cover no model's grid, every variable-length model
of the family is scored too (the second table): the measurement behind that choice.
Top-1 / top-6 over all groups with the row's composition and from G(r) alone; the ranking
is that of the uncalibrated probabilities (calibration keeps the order).

Usage::

    python benchmarks/short_range.py work/mp_all.h5 --mpts52 work/mpts52_all.h5 \\
        --family pdfsg-v8 --family pdfsg-v7

Writes ``benchmarks/results/short_range.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

RMAX = (10.0, 12.0, 15.0, 20.0, 25.0, 30.0)


def main() -> None:
    from _runs import top_k_hits, uncalibrated_test_rows

    from pdfsg.composition_vector import encode_formulas
    from pdfsg.datasets import read_dataset
    from pdfsg.models import limit_threads
    from pdfsg.predict import Predictor
    from pdfsg.preprocess import normalize_minmax

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--mpts52", type=Path, required=True)
    ap.add_argument("--family", action="append", required=True, help="a shipped family name")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    limit_threads(1)

    families = {name: Predictor.load(name) for name in args.family}
    ds = read_dataset(args.dataset)
    mp52 = set(map(str, read_dataset(args.mpts52).ids))
    test, _ = uncalibrated_test_rows(ds, [p.models for p in families.values()])
    rows = np.array([i for i in test if str(ds.ids[i]) in mp52])
    truth = ds.y[rows].astype(int)
    comp = encode_formulas(ds.formula[rows])
    r = ds.params.r_grid()

    results = []
    for name, predictor in families.items():
        for rmax in RMAX:
            covered = int(np.sum(r <= rmax + 1e-9))
            chosen, partial = predictor.choose_model(float(r[covered - 1]))
            scored = [chosen]
            if partial:
                scored += [m for m in predictor.models if m.variable_length and m is not chosen]
            for model in scored:
                n = min(covered, model.params.npoints)
                X = normalize_minmax(ds.G[rows][:, :n]).astype(np.float32)
                labels = np.asarray(model.labels)
                entry = {
                    "family": name,
                    "rmax": rmax,
                    "model": model.manifest.get("name"),
                    "chosen": model is chosen,
                    "partial": partial,
                }
                for mode, c in (("composition", comp), ("g_only", None)):
                    p = model.predict_proba(X, 0, c, calibrated=False)
                    hits = top_k_hits(p, labels, truth, ks=(1, 6))
                    entry[mode] = [hits["1"], hits["6"]]
                results.append(entry)
                print(entry, flush=True)

    record = {"dataset": str(args.dataset), "rows": int(rows.size), "results": results}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "short_range.json").write_text(json.dumps(record, indent=1) + "\n")
    lines = [
        f"Data cut at r_max (`benchmarks/short_range.py`): {rows.size} clean mpts52 test rows, "
        "all groups, top-1 / top-6 [%] with composition | from G(r) alone; the model "
        "`pdfsg predict` chooses for them (column `model` of the JSON).",
        "",
        "| family | " + " | ".join(f"{x:g} Å" for x in RMAX) + " |",
        "|---|" + "---|" * len(RMAX),
    ]
    for name in families:
        cells = [_cell(e) for e in results if e["family"] == name and e["chosen"]]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    cuts = sorted({e["rmax"] for e in results if e["partial"]})
    if cuts:
        lines += [
            "",
            "Data that cover no model's grid, every variable-length model of the family on "
            "the points covered (* = the one `pdfsg predict` chooses):",
            "",
            "| family | model | " + " | ".join(f"{x:g} Å" for x in cuts) + " |",
            "|---|---|" + "---|" * len(cuts),
        ]
        for name in families:
            models = dict.fromkeys(
                e["model"] for e in results if e["family"] == name and e["partial"]
            )
            for model in models:
                cells = [
                    _cell(e) + (" *" if e["chosen"] else "")
                    for e in results
                    if e["family"] == name and e["model"] == model and e["partial"]
                ]
                lines.append(f"| {name} | {model} | " + " | ".join(cells) + " |")
    (args.out / "short_range.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _cell(e: dict) -> str:
    c, g = e["composition"], e["g_only"]
    return f"{100 * c[0]:.1f} / {100 * c[1]:.1f} \\| {100 * g[0]:.1f} / {100 * g[1]:.1f}"


if __name__ == "__main__":
    main()
