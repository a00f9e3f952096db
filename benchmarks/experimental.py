"""The shipped model on measured PDFs with known structures (the paper's Table 3).

Runs ``Predictor`` on every file listed in ``<data>/experimental/index.csv`` and writes a
table: file, known space group, our top-6, hit (known group in the top 6) or miss, the rank
of the known group, and the warnings. Files without a single space group (the two-phase
mixture, the non-periodic cluster) are reported separately: the answer should say that it
is unsure or that the sample has no long-range order.

Also measures the cold-start latency of ``pdfsg predict`` on one file (a new process,
import + model load + prediction) and the throughput for 1,000 files (the measured files
repeated, in one process, one `Predictor.predict_many` call as `pdfsg predict` makes).

Usage::

    python benchmarks/experimental.py [--data ../shared/data] [--model default]

Writes ``benchmarks/results/experimental.json`` and ``benchmarks/results/experimental.md``
(``experimental_<model>.*`` for a ``--model`` other than the default).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    from pdfsg.predict import Predictor
    from pdfsg.shared_data import shared_data_dir

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=shared_data_dir())
    ap.add_argument("--model", default="default")
    ap.add_argument("--throughput-files", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    from _runs import measured_files, rank_of, result_stem

    stem = result_stem("experimental", args.model)

    folder = args.data / "experimental"
    predictor = Predictor.load(args.model)
    rows, others = [], []
    for path, item, sg in measured_files(args.data):
        full = predictor.predict_file(path, top=0)  # every group ranked
        row = {
            "file": item["file"],
            "material": item["material"],
            "kind": item["crystalline_or_nano"],
            "known": item["space_group_symbol"],
            "top6": [f"{p.symbol} ({p.space_group})" for p in full.predictions[:6]],
            "top1_probability": full.predictions[0].probability,
            "uncertainty": full.uncertainty,
            "warnings": full.warnings,
            "model": full.model,
        }
        if sg is None:
            others.append(row)
            continue
        row["known_number"] = sg
        row["in_label_set"] = sg in predictor.labels
        row["rank"] = rank_of(full, sg)
        row["hit_top6"] = row["rank"] is not None and row["rank"] <= 6
        row["hit_top1"] = row["rank"] == 1
        # as a user who types the composition (index.csv), and from G(r) alone
        given = predictor.predict_file(path, top=0, composition=item["composition"])
        row["rank_with_composition"] = rank_of(given, sg)
        row["rank_g_only"] = rank_of(predictor.predict_file(path, top=0, composition=False), sg)
        rows.append(row)

    # cold start: a new process, as a user runs it
    one = folder / rows[0]["file"]
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pdfsg.cli", "predict", str(one), "--format", "json"],
        check=True,
        capture_output=True,
    )
    cold = time.perf_counter() - t
    files = [folder / r["file"] for r in rows + others]
    batch = [files[k % len(files)] for k in range(args.throughput_files)]
    t = time.perf_counter()
    predictor.predict_many(batch)  # as `pdfsg predict` many files: read, batched, ranked
    throughput = len(batch) / (time.perf_counter() - t)

    n_hit = sum(r["hit_top6"] for r in rows)

    def hits(key: str, k: int) -> int:
        return sum(r[key] is not None and r[key] <= k for r in rows)

    inputs = {
        "header composition (as pdfsg predict FILE)": "rank",
        "composition of index.csv given (--composition)": "rank_with_composition",
        "G(r) only (--no-composition)": "rank_g_only",
    }
    by_input = {name: {"top1": hits(key, 1), "top6": hits(key, 6)} for name, key in inputs.items()}
    result = {
        "model": args.model,
        "n_single_phase": len(rows),
        "top6_hits": n_hit,
        "top1_hits": sum(r["hit_top1"] for r in rows),
        "by_input": by_input,
        "rows": rows,
        "no_single_space_group": others,
        "cold_start_seconds": cold,
        "throughput_files_per_second": throughput,
        "throughput_files": len(batch),
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=1))
    lines = [
        f"Shipped model `{args.model}` on measured PDFs: known group in the top 6 for "
        f"{n_hit} of {len(rows)} single-phase files ({result['top1_hits']} at rank 1).",
        "",
        "| file | known | rank | 1st | 2nd | 3rd | 4th | 5th | 6th | hit |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['file']} | {r['known']} | {r['rank']} | "
            + " | ".join(r["top6"])
            + f" | {'yes' if r['hit_top6'] else 'no'} |"
        )
    lines += ["", "| input | rank 1 | top 6 | ranks |", "|---|---|---|---|"]
    for name, key in inputs.items():
        ranks = ", ".join(str(r[key]) for r in rows)
        lines.append(
            f"| {name} | {by_input[name]['top1']} of {len(rows)} | "
            f"{by_input[name]['top6']} of {len(rows)} | {ranks} |"
        )
    lines += ["", "Samples without one space group:", ""]
    for r in others:
        lines.append(
            f"- {r['file']} ({r['material']}): top-1 {r['top6'][0]} at "
            f"{r['top1_probability']:.0%}; {r['uncertainty']}; warnings: "
            + ("; ".join(r["warnings"]) or "none")
        )
    lines += [
        "",
        f"Cold start of `pdfsg predict` on one file: {cold:.2f} s; throughput "
        f"{throughput:.0f} files/s over {len(batch)} files in one call (one process, "
        "`Predictor.predict_many`).",
    ]
    (args.out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
