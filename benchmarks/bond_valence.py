"""Bond valences of real and generated crystals, and the cells they imply.

On a sample of real structures (every ``--every``-th row of a CSV of CIFs; default the shared
``mpts52_dev``) with an ionic model (:func:`pdfsg.sources.bond_valence.ionic_model`):

* the relative rms deviation of the bond-valence sums from the valences,
  sqrt(mean_i ((S_i - |V_i|) / |V_i|)²), of the real structure, and of the same structure
  with its free coordinates redrawn at random and relaxed ``--steps`` moves by the
  generator's relaxation with contacts alone and with the bond-valence term;
* how far the isotropic cell scale that bond valences choose
  (:func:`~pdfsg.sources.bond_valence.bond_valence_scale`, real coordinates) and the
  generator's volume model (per-element volumes, no scatter) put the cell length from the
  real one (log of the length ratio), over all sampled structures for the volume model.

Usage::

    python benchmarks/bond_valence.py [--csv ../shared/data/structures/mpts52_dev.csv.gz]
        [--every 23] [--n 300] [--steps 120]

Writes ``benchmarks/results/bond_valence.{json,md}``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import sys
import warnings
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

HERE = Path(__file__).resolve().parent


def rms_deviation(structure, model) -> float:
    """sqrt(mean_i ((S_i - |V_i|) / |V_i|)²) over the atoms of ``structure``."""
    from pdfsg.sources.bond_valence import valence_deviations

    return float(np.sqrt(np.mean(valence_deviations(structure, model) ** 2)))


def _redrawn(structure, model, steps: int, seed: int, bonds: bool):
    """``structure`` with its free coordinates drawn at random and relaxed; None when PyXtal
    cannot read its Wyckoff positions."""
    from pymatgen.core import Structure
    from pyxtal import pyxtal

    from pdfsg.sources import synthetic as syn
    from pdfsg.sources.stats import load_stats

    xtal = pyxtal()
    try:
        with syn._quiet():
            xtal.from_seed(structure, tol=0.1)
    except Exception:  # PyXtal cannot always find the Wyckoff setting
        return None
    rng = np.random.default_rng(seed)
    for site in xtal.atom_sites:
        if site.wp.get_dof() > 0:
            site.update(rng.random(3))
    species = sorted({str(s.specie) for s in xtal.atom_sites})
    _, target = syn._pair_limits(species, load_stats(None), syn.SyntheticConfig())
    coords, matrix = syn._relax(xtal, steps, rng, target, model if bonds else None)
    kinds = [s.specie for s in xtal.atom_sites for _ in range(s.multiplicity)]
    return Structure(matrix, kinds, coords)


def _quantiles(values) -> dict[str, float]:
    v = np.asarray(values, float)
    return {"n": len(v), **{f"q{q}": float(np.quantile(v, q / 100)) for q in (10, 25, 50, 75, 90)}}


def main() -> None:
    warnings.filterwarnings("ignore")
    from pymatgen.core import Structure

    from pdfsg.shared_data import shared_data_dir
    from pdfsg.sources.bond_valence import bond_valence_scale, ionic_model
    from pdfsg.sources.stats import load_stats

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--csv", type=Path, default=None, help="CSV.GZ of CIFs (material_id, cif)")
    ap.add_argument("--every", type=int, default=23)
    ap.add_argument("--n", type=int, default=300, help="structures sampled")
    ap.add_argument("--steps", type=int, default=120, help="relaxation moves")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args()
    path = args.csv or Path(shared_data_dir()) / "structures" / "mpts52_dev.csv.gz"
    csv.field_size_limit(sys.maxsize)
    cifs = []
    with gzip.open(path, "rt", newline="") as fh:
        for i, row in enumerate(csv.DictReader(fh)):
            if i % args.every == 0:
                cifs.append(row["cif"])
            if len(cifs) >= args.n:
                break
    stats = load_stats(None)
    rms = {"real": [], "contacts": [], "bonds": []}
    length_error = {"volume_model": [], "bond_valence": []}
    for k, cif in enumerate(cifs):
        structure = Structure.from_str(cif, fmt="cif")
        counts = {el.symbol: n for el, n in structure.composition.items()}
        v0 = sum(n * stats.element_volume(e) for e, n in counts.items())
        length_error["volume_model"].append(float(np.log(v0 / structure.volume) / 3))
        model = ionic_model(counts)
        if model is None:
            continue
        length_error["bond_valence"].append(float(np.log(bond_valence_scale(structure, model))))
        redrawn = [_redrawn(structure, model, args.steps, k, b) for b in (False, True)]
        if any(r is None for r in redrawn):
            continue
        rms["real"].append(rms_deviation(structure, model))
        rms["contacts"].append(rms_deviation(redrawn[0], model))
        rms["bonds"].append(rms_deviation(redrawn[1], model))
        print(f"{k + 1}/{len(cifs)}", end="\r", flush=True)
    results = {
        "csv": str(path),
        "every": args.every,
        "sampled": len(cifs),
        "steps": args.steps,
        "rms_deviation": {k: _quantiles(v) for k, v in rms.items()},
        "abs_length_error": {k: _quantiles(np.abs(v)) for k, v in length_error.items()},
        "length_error_sd": {k: float(np.std(v)) for k, v in length_error.items()},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bond_valence.json").write_text(json.dumps(results, indent=1))
    r, e = results["rms_deviation"], results["abs_length_error"]
    lines = [
        f"{len(cifs)} structures of {path.name} (every {args.every}th row).",
        "",
        "Relative rms deviation of the bond-valence sums from the valences (structures with "
        f"an ionic model that PyXtal reads; free coordinates redrawn, {args.steps} moves):",
        "",
        "| structures | n | 10 % | 25 % | median | 75 % | 90 % |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, label in (
        ("real", "real"),
        ("contacts", "redrawn, relaxed by contacts"),
        ("bonds", "redrawn, relaxed by contacts and bond valences"),
    ):
        q = r[name]
        lines.append(
            f"| {label} | {q['n']} | {q['q10']:.3f} | {q['q25']:.3f} | {q['q50']:.3f} | "
            f"{q['q75']:.3f} | {q['q90']:.3f} |"
        )
    lines += [
        "",
        "|ln(predicted / real cell length)| (real coordinates):",
        "",
        "| cell from | n | median | 90 % | sd of the signed error |",
        "|---|---|---|---|---|",
    ]
    for name, label in (
        ("volume_model", "volume model (per-element volumes)"),
        ("bond_valence", "bond valences (ionic structures)"),
    ):
        q = e[name]
        lines.append(
            f"| {label} | {q['n']} | {q['q50']:.3f} | {q['q90']:.3f} | "
            f"{results['length_error_sd'][name]:.3f} |"
        )
    (args.out / "bond_valence.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
