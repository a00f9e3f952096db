"""Where synthetic crystals fall short of real ones: a ladder of training sets.

Every rung holds the same number of training crystals with the same space-group labels:
N training structures of a real dataset, drawn at random, and versions of them in which
one more part of the crystal comes from the generator (:mod:`pdfsg.sources.synthetic`)
instead of the real structure:

* ``real``: the real structures;
* ``coords``: the same cell, Wyckoff positions and elements, the free coordinates drawn at
  random and relaxed by the generator's symmetry-keeping relaxation, kept if spglib finds
  the group and no pair is too close (the generator's acceptance rules; 10 tries);
* ``coords_cell``: as ``coords`` and the cell drawn by the generator (volume model and
  shape quantiles of the group);
* ``synthetic``: generator crystals only, with the real rungs' group counts.

``pdfsg-net`` is trained on each rung (30 epochs) and scored on the real test split and
on its mpts52 rows.  The drop from one rung to the next is what that part of the
generator costs.  Usage::

    python benchmarks/synthetic_gap.py make coords work/gap/coords.csv.gz \\
        --real work/mp_paper45.h5 --n 2000      # likewise real, coords_cell, synthetic
    pdfsg dataset build work/gap/coords.csv.gz -o work/gap/coords.h5 --test-fraction 0
    python benchmarks/synthetic_gap.py score work/mp_paper45.h5 --mpts52 \\
        work/mpts52_paper45.h5 --rung real=work/gap/real.h5 --rung coords=work/gap/coords.h5 \\
        --rung synthetic=work/gap/synthetic.h5 --runs work/gap/runs

Writes ``benchmarks/results/synthetic_gap.{json,md}``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import sys
import warnings
import zlib
from collections import Counter
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

HERE = Path(__file__).resolve().parent
MODES = ("real", "coords", "coords_cell", "synthetic")
TRIES = 10


def _chosen(real: Path, n: int, seed: int) -> dict[str, int]:
    """``n`` training ids of ``real`` drawn at random -> space-group number."""
    from pdfsg.datasets import read_dataset

    ds = read_dataset(real)
    train = {str(i): int(g) for i, g, s in zip(ds.ids, ds.y, ds.split, strict=True) if s == 0}
    ids = np.random.default_rng(seed).permutation(sorted(train))[:n]
    return {str(i): train[str(i)] for i in ids}


def _redraw(item: tuple[str, str, int, str]) -> tuple[str, str | None]:
    """One real structure with its free coordinates (and cell) redrawn; CIF or None."""
    warnings.filterwarnings("ignore")
    ident, cif, number, mode = item
    from pymatgen.core import Lattice as PmgLattice
    from pymatgen.core import Structure
    from pyxtal import pyxtal
    from pyxtal.lattice import Lattice

    from pdfsg.sources import synthetic as syn
    from pdfsg.sources.stats import load_stats

    stats, cfg = load_stats(None), syn.SyntheticConfig()
    rng = np.random.default_rng([zlib.crc32(ident.encode()), MODES.index(mode)])
    xtal = pyxtal()
    try:
        with syn._quiet():
            xtal.from_seed(Structure.from_str(cif, fmt="cif"), tol=0.1)
    except Exception:  # PyXtal cannot always find the Wyckoff setting
        return ident, None
    if xtal.group.number != number:
        return ident, None
    accept, target = syn._pair_limits(sorted({s.specie for s in xtal.atom_sites}), stats, cfg)
    counts = Counter()
    for site in xtal.atom_sites:
        counts[site.specie] += site.multiplicity
    for _ in range(TRIES):
        if mode == "coords_cell":
            v0 = sum(n * stats.element_volume(e) for e, n in counts.items())
            volume = v0 * np.exp(stats.volume_log_sigma * rng.standard_normal())
            cell = syn._sample_cell(number, volume, rng, stats)
            if cell is None:
                continue
            xtal.lattice = Lattice.from_para(*cell, ltype=xtal.group.lattice_type)
        for site in xtal.atom_sites:
            if site.wp.get_dof() > 0:
                site.update(rng.random(3))
        species = [s.specie for s in xtal.atom_sites for _ in range(s.multiplicity)]
        coords = syn._relax(xtal, cfg.relax_steps, rng, target)
        new = Structure(PmgLattice(xtal.lattice.matrix), species, coords)
        if syn.space_group_of(new, cfg.symprec) != number:
            continue
        symbols, d = syn._nearest_images(new)
        arr = np.array(symbols)
        if all(
            np.min(d[np.ix_(arr == a, arr == b)]) >= limit - 1e-6
            for a, b, limit in ((*k.split(), v) for k, v in accept.items())
        ):
            return ident, new.to(fmt="cif")
    return ident, None


def cmd_make(args: argparse.Namespace) -> None:
    from multiprocessing import get_context

    from tqdm import tqdm

    from pdfsg.shared_data import shared_data_dir

    chosen = _chosen(args.real, args.n, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str]] = []
    if args.mode == "synthetic":
        from pdfsg.sources.synthetic import SyntheticConfig, generate_chunk

        cfg = SyntheticConfig(distribution=dict(Counter(chosen.values())), seed=args.seed)
        for ident, _, s in generate_chunk(cfg, 0, args.n):
            rows.append((ident, s.to(fmt="cif")))
    else:
        csv.field_size_limit(sys.maxsize)
        folder = Path(args.data or shared_data_dir()) / "structures"
        items, seen = [], set()
        for name in ("mpts52_dev.csv.gz", "mp20_biternary_dev.csv.gz"):
            with gzip.open(folder / name, "rt", newline="") as fh:
                for row in csv.DictReader(fh):
                    ident = row["material_id"]
                    if ident in chosen and ident not in seen:
                        seen.add(ident)
                        items.append((ident, row["cif"], chosen[ident], args.mode))
        if args.mode == "real":
            rows = [(i, c) for i, c, _, _ in items]
        else:
            with get_context("fork").Pool(args.workers) as pool:
                done = pool.imap_unordered(_redraw, items, chunksize=4)
                for ident, cif in tqdm(done, total=len(items), desc=args.mode):
                    if cif is not None:
                        rows.append((f"{ident}~{args.mode}", cif))
    with gzip.open(args.out, "wt", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["material_id", "cif"])
        writer.writerows(sorted(rows))
    print(f"wrote {args.out}: {len(rows)} crystals ({args.mode}) for {len(chosen)} chosen")


def cmd_score(args: argparse.Namespace) -> None:
    from synthetic_to_real import run_one

    from pdfsg.datasets import combine_datasets, read_dataset

    real = read_dataset(args.real)
    mpts52_ids = set(map(str, read_dataset(args.mpts52).ids)) if args.mpts52 else set()
    results: dict = {"real": str(args.real), "epochs": args.epochs, "rungs": {}}
    for spec in args.rung:
        name, _, path = spec.partition("=")
        rung = read_dataset(path)
        ds = combine_datasets([(rung, "all-train"), (real, "test")], manifest={"rung": name})
        res = run_one(name, ds, args.runs / name, args.epochs, args.seed, "auto", None, mpts52_ids)
        res["file"] = path
        results["rungs"][name] = res
        print(json.dumps(res), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "synthetic_gap.json").write_text(json.dumps(results, indent=1))
    lines = [
        f"pdfsg-net, {args.epochs} epochs, trained on each rung only, scored on the real "
        "test split (clean curves, paper settings).",
        "",
        "| rung | training rows | test top-1 / top-6 | mpts52 rows top-1 / top-6 |",
        "|---|---|---|---|",
    ]
    for name, r in results["rungs"].items():
        acc, m = r["top_k_accuracy"], r["mpts52_top_k_accuracy"]
        m52 = f"{m['1']:.1%} / {m['6']:.1%} (n = {m['n']})" if m else "—"
        lines.append(f"| {name} | {r['n_train']} | {acc['1']:.1%} / {acc['6']:.1%} | {m52} |")
    (args.out / "synthetic_gap.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make", help="write one rung's crystals as a CSV.GZ of CIFs")
    mk.add_argument("mode", choices=MODES)
    mk.add_argument("out", type=Path)
    mk.add_argument("--real", type=Path, required=True, help="dataset whose training ids to use")
    mk.add_argument("--n", type=int, default=2000)
    mk.add_argument("--seed", type=int, default=0)
    mk.add_argument("--workers", type=int, default=2)
    mk.add_argument("--data", type=Path, default=None, help="shared data folder")
    sc = sub.add_parser("score", help="train pdfsg-net on each rung and score it")
    sc.add_argument("real", type=Path, help="real dataset (its test split is the yardstick)")
    sc.add_argument("--rung", action="append", required=True, help="NAME=dataset.h5")
    sc.add_argument("--mpts52", type=Path)
    sc.add_argument("--runs", type=Path, required=True)
    sc.add_argument("--epochs", type=int, default=30)
    sc.add_argument("--seed", type=int, default=0)
    sc.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args()
    sys.path.insert(0, str(HERE))
    {"make": cmd_make, "score": cmd_score}[args.cmd](args)


if __name__ == "__main__":
    main()
