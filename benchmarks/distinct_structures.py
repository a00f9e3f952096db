"""How many distinct structures did a model train on?

A model records the hashed ids of its training structures (``training_ids.txt.gz``; a
fine-tuned model's hold its start model's too).  Ids are distinct by construction, but two
ids can be one structure: a structure-type variant of one build can repeat one of another
build (``variants:K,first=F`` never repeats a variant *index*, yet two substitutions can
give the same crystal), and the same compound can come from two sources.  Each dataset
build drops such duplicates within itself; this script counts them *across* the files.

The rule is :func:`pdfsg.datasets.merge_datasets`'s: the same reduced formula and space
group and min-max normalised curves equal within ``--tol`` at every grid point.  Only rows
whose id is among the model's training ids are counted (so validation structures and
their variants, and test structures, are left out); the first file named wins a duplicate.

Usage::

    python benchmarks/distinct_structures.py pdfsg-v6-net-r30 work/mp_all.h5 \
        work/protos2_all.h5 work/wbm_all.h5 work/var_*_all.h5 work/var[23]_mpts52_all.h5

Writes ``benchmarks/results/distinct_structures.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np


def count_distinct(model: str, paths: list[Path], tol: float) -> dict:
    from tqdm import tqdm

    from pdfsg.artifact import read_training_ids, structure_id_hash
    from pdfsg.datasets import read_dataset

    trained = read_training_ids(model)
    if trained is None:
        raise SystemExit(f"{model}: the model records no training ids")
    by_key: dict[tuple[str, int], list[np.ndarray]] = {}
    files, found = [], set()
    for path in paths:
        ds = read_dataset(path)
        hashes = [structure_id_hash(str(i)) for i in ds.ids]
        rows = [i for i, h in enumerate(hashes) if h in trained]
        dup = 0
        for i in tqdm(rows, desc=path.name, unit="row", mininterval=5):
            key = (str(ds.formula[i]), int(ds.y[i]))
            seen = by_key.setdefault(key, [])
            if any(np.max(np.abs(x - ds.X[i])) < tol for x in seen):
                dup += 1
                continue
            seen.append(ds.X[i])
        found.update(hashes[i] for i in rows)
        files.append({"file": path.name, "training_rows": len(rows), "repeats_earlier": dup})
        print(f"{path.name}: {len(rows):,} training rows, {dup:,} repeat earlier ones", flush=True)
    n_ids = len(trained)
    n_rows = sum(f["training_rows"] for f in files)
    n_dup = sum(f["repeats_earlier"] for f in files)
    return {
        "model": model,
        "rule": f"same reduced formula and group, normalised curves within {tol} everywhere",
        "training_ids": n_ids,
        "training_ids_found_in_files": len(found),
        "training_rows_counted": n_rows,
        "repeats": n_dup,
        "distinct_structures": n_rows - n_dup,
        "files": files,
    }


def write_markdown(res: dict, path: Path) -> None:
    lines = [
        f"# Distinct training structures of `{res['model']}`",
        "",
        f"Rule: {res['rule']} (the first file wins). "
        f"`python benchmarks/distinct_structures.py {res['model']} ...`",
        "",
        "| file | training rows | repeat an earlier row |",
        "|---|---|---|",
    ]
    lines += [
        f"| {f['file']} | {f['training_rows']:,} | {f['repeats_earlier']:,} |" for f in res["files"]
    ]
    lines += [
        "",
        f"Training ids recorded: {res['training_ids']:,}; found in these files: "
        f"{res['training_ids_found_in_files']:,}.",
        f"**Distinct structures: {res['distinct_structures']:,}** "
        f"({res['repeats']:,} repeats, "
        f"{res['repeats'] / max(res['training_rows_counted'], 1):.1%}).",
        "",
    ]
    path.write_text("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="a model name or folder that records training ids")
    ap.add_argument("datasets", nargs="+", type=Path, help="the datasets it trained on")
    ap.add_argument("--tol", type=float, default=0.01)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    t = time.time()
    res = count_distinct(args.model, args.datasets, args.tol)
    res["seconds"] = round(time.time() - t, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "distinct_structures.json").write_text(json.dumps(res, indent=1) + "\n")
    write_markdown(res, args.out / "distinct_structures.md")
    print(f"distinct structures: {res['distinct_structures']:,} of {res['training_ids']:,} ids")


if __name__ == "__main__":
    main()
