"""What the PDF memory gains from more training curves: a learning curve of the memory.

The shipped ensemble (its networks, composition memory and PDF-memory settings) with PDF
memories of growing pools of training curves (the training rows of the datasets named by
each ``--pool``, in order; every pool repeats the previous one), scored on the clean mpts52
test rows it was not calibrated on: top-1 / top-6 of the memory's vote alone (the nearest
curves) and of the whole answer with the row's composition (that vote and the formula-type
vote; uncalibrated probabilities: calibration does not change their order), over the
model's groups.

Usage::

    python benchmarks/pdf_memory_pool.py work/mp_all.h5 --mpts52 work/mpts52_all.h5 \\
        --pool work/mp_all.h5 work/wbm_all.h5 work/protos2_all.h5 \\
        --pool work/var_mpts52_all.h5 \\
        --pool work/var2_mpts52_all.h5 work/var3_mpts52_all.h5 \\
        --pool work/var_mp20_all.h5 work/var_wbm_all.h5

Writes ``benchmarks/results/pdf_memory_pool.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np


def _top(p: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    from pdfsg.evaluate import top_k_accuracy

    acc = top_k_accuracy(p, y, ks=(1, 6))
    return round(acc[1], 4), round(acc[6], 4)


def main() -> None:
    from _runs import pdf_memory_test_rows

    from pdfsg.composition_vector import encode_formulas
    from pdfsg.datasets import read_dataset
    from pdfsg.models import limit_threads
    from pdfsg.pdf_memory import build_pdf_memory

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--mpts52", type=Path, required=True)
    ap.add_argument("--model", default="pdfsg-v8-r30", help="an ensemble with a PDF memory")
    ap.add_argument("--pool", nargs="+", action="append", required=True, type=Path)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    limit_threads(1)

    test = pdf_memory_test_rows(args.model, args.dataset, args.mpts52)
    model, ds, rows, X, y = test.model, test.dataset, test.rows, test.X, test.y
    shipped, grid = model.pdf_memory, model.params
    index = {int(v): i for i, v in enumerate(model.labels)}
    comp = encode_formulas(ds.formula[rows])
    # the ensemble with its composition memory, without the PDF memory
    base = model.predict_proba(X, comp=comp, calibrated=False, memory=False)
    base = model.composition_memory.combine(base, comp) if model.composition_memory else base
    results = [{"pool": "none", "curves": 0, "answer": _top(base, y)}]
    print(results[-1], flush=True)

    curves, classes, compositions = [], [], []
    for step, group in enumerate(args.pool):
        names = []
        for path in group:
            pds = read_dataset(path)
            train = np.flatnonzero(pds.split == 0)
            curves.append(pds.G[train][:, : grid.npoints])
            classes.append(np.array([index.get(int(g), -1) for g in pds.y[train]]))
            compositions.append(encode_formulas(pds.formula[train]))
            names.append(path.name)
        t0 = time.time()
        memory = build_pdf_memory(
            np.concatenate(curves), np.concatenate(classes), len(model.labels), grid.rmin,
            grid.rstep, np.concatenate(compositions),
        ).with_settings(k=shipped.k, tau=shipped.tau, power=shipped.power,
                        floor_similarity=shipped.floor_similarity, type_k=shipped.type_k,
                        type_tau=shipped.type_tau, type_power=shipped.type_power)  # fmt: skip
        vote = memory.proba(X)
        results.append(
            {
                "pool": ("+ " if step else "") + " + ".join(names),
                "curves": int(memory.classes.size),
                "vote": _top(vote, y),
                "answer": _top(memory.combine(base, X, comp=comp), y),
                "seconds": round(time.time() - t0, 1),
            }
        )
        print(results[-1], flush=True)

    record = {"model": model.manifest.get("name"), "rows": int(rows.size), "results": results}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pdf_memory_pool.json").write_text(json.dumps(record, indent=1) + "\n")
    lines = [
        f"PDF memory pool (`benchmarks/pdf_memory_pool.py`), model {record['model']} "
        f"(k = {shipped.k}, tau = {shipped.tau:g}, power = {shipped.power:g}): {rows.size} "
        "clean mpts52 test rows of its groups, top-1 / top-6 [%], with composition, "
        "uncalibrated.",
        "",
        "| pool (each row adds to the one above) | curves | memory's vote alone | whole answer |",
        "|---|---|---|---|",
    ]
    for r in results:
        vote = "—" if "vote" not in r else f"{100 * r['vote'][0]:.1f} / {100 * r['vote'][1]:.1f}"
        answer = f"{100 * r['answer'][0]:.1f} / {100 * r['answer'][1]:.1f}"
        lines.append(f"| {r['pool']} | {r['curves']:,} | {vote} | {answer} |")
    (args.out / "pdf_memory_pool.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
