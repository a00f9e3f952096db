"""The PDF memory's two-stage search against the exact one: speed and what it changes.

For the clean mpts52 test rows of a dataset (not the calibration rows of the shipped
family), the neighbours of the shipped model's PDF memory (:mod:`pdfsg.pdf_memory`) found
by the exact search (every curve's correlation at every stretch) and by the two-stage one
(shortlist on ``search_dims`` principal axes, then exact) for a few settings: milliseconds
per query (one thread), the share of the exact top-k found, how often the best neighbour
and the vote's first group are the same, and the memory's own top-1 (its vote alone).

Usage::

    python benchmarks/pdf_memory_search.py work/mp_all.h5 --mpts52 work/mpts52_all.h5

Writes ``benchmarks/results/pdf_memory_search.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

SETTINGS = ((0, 0), (32, 256), (48, 256), (48, 512), (64, 512))


def main() -> None:
    from _runs import pdf_memory_test_rows

    from pdfsg.models import limit_threads

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--mpts52", type=Path, required=True)
    ap.add_argument("--model", default="pdfsg-v8-r30", help="an ensemble with a PDF memory")
    ap.add_argument("--rows", type=int, default=400, help="at most this many test rows")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    limit_threads(1)

    test = pdf_memory_test_rows(args.model, args.dataset, args.mpts52)
    model, rows, X, y = test.model, test.rows[: args.rows], test.X[: args.rows], test.y[: args.rows]
    memory = model.pdf_memory

    results, exact = [], None
    for dims, shortlist in SETTINGS:
        m = memory.with_settings(search_dims=dims, shortlist=shortlist or memory.shortlist)
        m.neighbours(X[:2])  # the window's pool (and axes) prepared outside the timing
        t0 = time.perf_counter()
        sims, best = m.neighbours(X)
        ms = (time.perf_counter() - t0) / len(rows) * 1e3
        vote = m.vote(sims, best).argmax(axis=1)
        if exact is None:
            exact = (best, vote)
        overlap = np.mean(
            [len(set(b) & set(e)) / len(e) for b, e in zip(best, exact[0], strict=True)]
        )
        results.append(
            {
                "search_dims": dims,
                "shortlist": shortlist,
                "ms_per_query": round(ms, 2),
                "exact_top_k_found": round(float(overlap), 4),
                "same_best_neighbour": round(float((best[:, 0] == exact[0][:, 0]).mean()), 4),
                "same_vote": round(float((vote == exact[1]).mean()), 4),
                "memory_top1": round(float((vote == y).mean()), 4),
            }
        )
        print(results[-1], flush=True)

    record = {
        "model": model.manifest.get("name"),
        "dataset": str(args.dataset),
        "rows": int(len(rows)),
        "curves": int(memory.classes.size),
        "k": memory.k,
        "default": {"search_dims": memory.search_dims, "shortlist": memory.shortlist},
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pdf_memory_search.json").write_text(json.dumps(record, indent=1) + "\n")
    lines = [
        f"PDF memory search (`benchmarks/pdf_memory_search.py`), model {record['model']}: "
        f"{record['curves']:,} curves, {record['rows']} clean mpts52 test rows, k = "
        f"{memory.k}, one thread.",
        "",
        "| search | ms / query | exact top-k found | same best | same vote | memory top-1 |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        name = "exact" if not r["search_dims"] else f"{r['search_dims']} axes, {r['shortlist']}"
        lines.append(
            f"| {name} | {r['ms_per_query']} | {100 * r['exact_top_k_found']:.1f} % | "
            f"{100 * r['same_best_neighbour']:.1f} % | {100 * r['same_vote']:.1f} % | "
            f"{100 * r['memory_top1']:.1f} % |"
        )
    (args.out / "pdf_memory_search.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
