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
* ``synthetic``: generator crystals only, with the real rungs' group counts
  (``make synthetic`` relaxes with bond valences unless ``--contacts-only``, and lets them
  set the cell with ``--bond-volume``);
* ``volume``: the real structure with the cell volume of the generator's volume model
  (``volume_bv``: the bond-valence optimum where the composition is ionic);
* ``types``: the real structure type (Wyckoff sites, free coordinates moved 0.05 Å, cell
  shape) with elements drawn by the generator for the group and the volume model's volume
  (``types_family``: the elements of another real training structure of the same group and
  Wyckoff template, where there is one).

``coords`` and ``coords_cell`` relax with bond valences unless ``--contacts-only`` (the
recorded ``coords`` rung is contacts only, ``coords_bv`` with bond valences).

``pdfsg-net`` is trained on each rung (30 epochs) and scored on the real test split and
on its mpts52 rows, beside a nearest-neighbour classifier (the group of the most correlated
training curve).  The drop from one rung to the next is what that part of the generator
costs.  Usage::

    python benchmarks/synthetic_gap.py make coords work/gap/coords.csv.gz \\
        --real work/mp_paper45.h5 --n 2000 --contacts-only   # likewise every other mode;
    # coords_bv, synthetic_bv: without --contacts-only; synthetic_bv_volume: --bond-volume;
    # volume_model, synthetic_model_volume: --volume-scatter 0
    pdfsg dataset build work/gap/coords.csv.gz -o work/gap/coords.h5 --test-fraction 0
    python benchmarks/synthetic_gap.py score work/mp_paper45.h5 --mpts52 \\
        work/mpts52_paper45.h5 --rung real=work/gap/real.h5 --rung coords=work/gap/coords.h5 \\
        --rung synthetic=work/gap/synthetic.h5 --runs work/gap/runs [--keep-scored]

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
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

HERE = Path(__file__).resolve().parent
MODES = (
    "real",
    "coords",
    "coords_cell",
    "synthetic",
    "types",
    "types_family",
    "volume",
    "volume_bv",
)
#: the order of the results table: the real structures, then one part of them after the other
#: from the generator
RUNG_ORDER = (
    "real",
    "volume_bv",
    "volume_model",
    "volume",
    "types_family",
    "types",
    "coords",
    "coords_bv",
    "coords_cell",
    "synthetic",
    "synthetic_bv",
    "synthetic_bv_volume",
    "synthetic_model_volume",
)
#: standard deviation [Å] of the moves of free coordinates in the ``types`` rung
TYPE_JITTER = 0.05
TRIES = 10


def _chosen(real: Path, n: int, seed: int) -> dict[str, int]:
    """``n`` training ids of ``real`` drawn at random -> space-group number."""
    from pdfsg.datasets import read_dataset

    ds = read_dataset(real)
    train = {str(i): int(g) for i, g, s in zip(ds.ids, ds.y, ds.split, strict=True) if s == 0}
    ids = np.random.default_rng(seed).permutation(sorted(train))[:n]
    return {str(i): train[str(i)] for i in ids}


def _redraw(item: tuple) -> tuple[str, str | None]:
    """One real structure with its free coordinates (and cell) redrawn; CIF or None."""
    warnings.filterwarnings("ignore")
    ident, cif, number, mode, options, *family = item
    from pymatgen.core import Lattice as PmgLattice
    from pymatgen.core import Structure
    from pyxtal import pyxtal
    from pyxtal.lattice import Lattice

    from pdfsg.sources import synthetic as syn
    from pdfsg.sources.stats import load_stats

    stats, cfg = load_stats(None), syn.SyntheticConfig(**options)
    rng = np.random.default_rng([zlib.crc32(ident.encode()), MODES.index(mode)])
    xtal = pyxtal()
    try:
        with syn._quiet():
            xtal.from_seed(Structure.from_str(cif, fmt="cif"), tol=0.1)
    except Exception:  # PyXtal cannot always find the Wyckoff setting
        return ident, None
    if xtal.group.number != number:
        return ident, None
    if mode in ("volume", "volume_bv"):
        real = Structure.from_str(cif, fmt="cif")
        return ident, _revolume(real, rng, stats, cfg, mode == "volume_bv")
    if mode in ("types", "types_family"):
        return ident, _decorate(xtal, rng, stats, cfg, family[0] if family else ())
    accept, target = syn._pair_limits(sorted({s.specie for s in xtal.atom_sites}), stats, cfg)
    counts = Counter()
    for site in xtal.atom_sites:
        counts[site.specie] += site.multiplicity
    ionic = syn.ionic_model(dict(counts)) if cfg.bond_valence else None
    for _ in range(TRIES):
        if mode == "coords_cell":
            volume = syn.sampled_volume(counts, rng, stats, cfg)
            cell = syn._sample_cell(number, volume, rng, stats)
            if cell is None:
                continue
            xtal.lattice = Lattice.from_para(*cell, ltype=xtal.group.lattice_type)
        for site in xtal.atom_sites:
            if site.wp.get_dof() > 0:
                site.update(rng.random(3))
        species = [s.specie for s in xtal.atom_sites for _ in range(s.multiplicity)]
        coords, matrix = syn._relax(xtal, cfg.relax_steps, rng, target, ionic)
        new = Structure(PmgLattice(matrix), species, coords)
        if not syn.rejection(new, number, accept, cfg.symprec):
            return ident, new.to(fmt="cif")
    return ident, None


def _revolume(structure, rng: np.random.Generator, stats, cfg, bond_valence: bool) -> str:
    """The ``volume`` rung: the real structure, its cell scaled to the generator's volume model
    (per-element volumes of its composition, log-normal scatter); coordinates kept.
    ``volume_bv``: scaled instead to the bond-valence optimum where the composition has an
    ionic model (:func:`pdfsg.sources.bond_valence.bond_valence_scale`)."""
    from pdfsg.sources.bond_valence import bond_valence_scale, ionic_model

    counts = {el.symbol: n for el, n in structure.composition.items()}
    model = ionic_model(counts) if bond_valence else None
    structure = structure.copy()
    if model is not None:
        structure.scale_lattice(structure.volume * bond_valence_scale(structure, model) ** 3)
    else:
        from pdfsg.sources.synthetic import sampled_volume

        structure.scale_lattice(sampled_volume(counts, rng, stats, cfg))
    return structure.to(fmt="cif")


def _decorate(xtal, rng: np.random.Generator, stats, cfg, family: Sequence = ()) -> str | None:
    """The ``types`` rung: a real structure type (Wyckoff sites, free coordinates moved by
    ``TYPE_JITTER`` Å, cell shape) with the generator's elements (drawn for the group, put
    on the sites by electronegativity rank) and its volume model; CIF or None.  With a
    ``family`` (``types_family``: the element tuples, by rank, of other real training
    structures with the same group and Wyckoff template) the elements are one of those."""
    from pymatgen.core import Lattice as PmgLattice
    from pymatgen.core import Structure
    from pyxtal.lattice import Lattice

    from pdfsg.sources import synthetic as syn
    from pdfsg.sources.stats import _rank_key

    number = xtal.group.number
    sites = xtal.atom_sites
    original = [str(site.specie) for site in sites]
    old = sorted(set(original), key=_rank_key)
    matrix = np.asarray(xtal.lattice.matrix, float)
    start = [np.asarray(site.position, float) for site in sites]
    for _ in range(TRIES):
        if family:
            new = list(family[int(rng.integers(len(family)))])
        else:
            new = stats.sample_elements(len(old), rng, None, number)
        if new is None:
            continue
        swap = dict(zip(old, sorted(new, key=_rank_key), strict=True))
        counts: Counter = Counter()
        for site, element in zip(sites, original, strict=True):
            site.specie = swap[element]
            counts[swap[element]] += site.multiplicity
        volume = syn.sampled_volume(counts, rng, stats, cfg)
        scaled = matrix * (volume / abs(np.linalg.det(matrix))) ** (1 / 3)
        xtal.lattice = Lattice.from_matrix(scaled, ltype=xtal.group.lattice_type)
        inv = np.linalg.inv(scaled)
        for site, pos in zip(sites, start, strict=True):
            if site.wp.get_dof() > 0:
                site.update(pos + rng.normal(0.0, TYPE_JITTER, 3) @ inv)
            else:
                site.update(pos)
        accept, target = syn._pair_limits(sorted(counts), stats, cfg)
        coords, lat = syn._relax(xtal, cfg.relax_steps, rng, target)
        species = [site.specie for site in sites for _ in range(site.multiplicity)]
        structure = Structure(PmgLattice(lat), species, coords)
        if not syn.rejection(structure, number, accept, cfg.symprec):
            return structure.to(fmt="cif")
    return None


def _template_of(item: tuple[str, str]) -> tuple[str, tuple | None, tuple]:
    warnings.filterwarnings("ignore")
    from pymatgen.core import Structure

    from pdfsg.errors import StructureError
    from pdfsg.sources.stats import _rank_key, analyze_structure

    ident, cif = item
    try:
        info = analyze_structure(Structure.from_str(cif, fmt="cif"))
    except (StructureError, ValueError):
        return ident, None, ()
    return ident, (info["group"], info["template"]), tuple(sorted(info["counts"], key=_rank_key))


def _synthetic_chunk(cfg, chunk: tuple[int, int]) -> list[tuple[str, str]]:
    warnings.filterwarnings("ignore")
    from pdfsg.sources.synthetic import generate_chunk

    return [(ident, s.to(fmt="cif")) for ident, _, s in generate_chunk(cfg, *chunk)]


def _families(real: Path, folder: Path, workers: int) -> dict[str, tuple[tuple, tuple]]:
    """Every training structure of ``real``: id -> ((group, Wyckoff template), its elements
    by electronegativity rank)."""
    from multiprocessing import get_context

    from pdfsg.datasets import read_dataset

    ds = read_dataset(real)
    train = {str(i) for i, s in zip(ds.ids, ds.split, strict=True) if s == 0}
    todo, seen = [], set()
    for name in ("mpts52_dev.csv.gz", "mp20_biternary_dev.csv.gz"):
        with gzip.open(folder / name, "rt", newline="") as fh:
            for row in csv.DictReader(fh):
                if row["material_id"] in train and row["material_id"] not in seen:
                    seen.add(row["material_id"])
                    todo.append((row["material_id"], row["cif"]))
    with get_context("fork").Pool(workers) as pool:
        done = pool.imap_unordered(_template_of, todo, chunksize=32)
        return {i: (k, e) for i, k, e in done if k is not None}


def cmd_make(args: argparse.Namespace) -> None:
    from multiprocessing import get_context

    from tqdm import tqdm

    from pdfsg.shared_data import shared_data_dir

    chosen = _chosen(args.real, args.n, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str]] = []
    options = {"bond_valence": not args.contacts_only, "volume_scatter": args.volume_scatter}
    if args.mode == "synthetic":
        import functools

        from pdfsg.sources.synthetic import SyntheticConfig

        cfg = SyntheticConfig(
            distribution=dict(Counter(chosen.values())),
            seed=args.seed,
            bond_volume=args.bond_volume,
            **options,
        )
        chunks = [(lo, min(lo + 20, args.n)) for lo in range(0, args.n, 20)]
        with get_context("fork").Pool(args.workers) as pool:
            done = pool.imap(functools.partial(_synthetic_chunk, cfg), chunks)
            for part in tqdm(done, total=len(chunks), desc="synthetic chunks of 20"):
                rows.extend(part)
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
                        items.append([ident, row["cif"], chosen[ident], args.mode, options])
        if args.mode == "types_family":
            family_of = _families(args.real, folder, args.workers)
            members = defaultdict(list)
            for ident, (key, elements) in family_of.items():
                members[key].append((ident, elements))
            for item in items:
                key = family_of.get(item[0], (None, ()))[0]
                item.append([e for i, e in members.get(key, []) if i != item[0]])
            print(
                f"{sum(bool(item[-1]) for item in items)} of {len(items)} chosen structures "
                "share their group and Wyckoff template with another training structure"
            )
        if args.mode == "real":
            rows = [(i, c) for i, c, *_ in items]
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


def _nearest_neighbour_top1(rung, real, mpts52_ids: set[str]) -> float | None:
    """Share of the real mpts52 test rows whose most correlated rung curve has their group."""
    rows = [
        i
        for i, (ident, s) in enumerate(zip(real.ids, real.split, strict=True))
        if s != 0 and str(ident) in mpts52_ids
    ]
    if not rows:
        return None

    def unit(x: np.ndarray) -> np.ndarray:
        x = x - x.mean(axis=1, keepdims=True)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    test = unit(np.asarray(real.X, float)[rows])
    pool = unit(np.asarray(rung.X, float))
    groups, truth = np.asarray(rung.y), np.asarray(real.y)[rows]  # space-group numbers
    return float(np.mean(groups[np.argmax(test @ pool.T, axis=1)] == truth))


def cmd_score(args: argparse.Namespace) -> None:
    from synthetic_to_real import run_one

    from pdfsg.datasets import combine_datasets, read_dataset

    real = read_dataset(args.real)
    mpts52_ids = set(map(str, read_dataset(args.mpts52).ids)) if args.mpts52 else set()
    results: dict = {"real": str(args.real), "epochs": args.epochs, "rungs": {}}
    earlier = args.out / "synthetic_gap.json"
    if args.keep_scored and earlier.exists():
        old = json.loads(earlier.read_text())
        if (old["real"], old["epochs"]) == (results["real"], results["epochs"]):
            results["rungs"] = old["rungs"]
    for spec in args.rung:
        name, _, path = spec.partition("=")
        rung = read_dataset(path)
        ds = combine_datasets([(rung, "all-train"), (real, "test")], manifest={"rung": name})
        res = run_one(name, ds, args.runs / name, args.epochs, args.seed, "auto", None, mpts52_ids)
        res["file"] = path
        results["rungs"][name] = res
        print(json.dumps(res), flush=True)
    for res in results["rungs"].values():
        if "mpts52_nearest_neighbour_top1" not in res and Path(res["file"]).exists():
            res["mpts52_nearest_neighbour_top1"] = _nearest_neighbour_top1(
                read_dataset(res["file"]), real, mpts52_ids
            )
    order = {name: i for i, name in enumerate(RUNG_ORDER)}
    results["rungs"] = dict(
        sorted(results["rungs"].items(), key=lambda kv: order.get(kv[0], len(order)))
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "synthetic_gap.json").write_text(json.dumps(results, indent=1))
    lines = [
        f"pdfsg-net, {args.epochs} epochs, trained on each rung only, scored on the real "
        "test split (clean curves, paper settings).",
        "",
        "Nearest neighbour: the group of the rung's curve most correlated with each mpts52 "
        "test curve (Pearson), no network.",
        "",
        "| rung | training rows | test top-1 / top-6 | mpts52 rows top-1 / top-6 "
        "| mpts52 nearest neighbour top-1 |",
        "|---|---|---|---|---|",
    ]
    for name, r in results["rungs"].items():
        acc, m = r["top_k_accuracy"], r["mpts52_top_k_accuracy"]
        m52 = f"{m['1']:.1%} / {m['6']:.1%} (n = {m['n']})" if m else "—"
        nn = r.get("mpts52_nearest_neighbour_top1")
        nn = f"{nn:.1%}" if nn is not None else "—"
        lines.append(
            f"| {name} | {r['n_train']} | {acc['1']:.1%} / {acc['6']:.1%} | {m52} | {nn} |"
        )
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
    mk.add_argument(
        "--contacts-only",
        action="store_true",
        help="relax by contacts alone, without the bond-valence term (the generator before it)",
    )
    mk.add_argument(
        "--volume-scatter",
        type=float,
        default=None,
        help="log-normal scatter of the volume model's volumes (default: the table's)",
    )
    mk.add_argument(
        "--bond-volume",
        action="store_true",
        help="synthetic: let the bonds set each cell's volume (SyntheticConfig.bond_volume)",
    )
    sc = sub.add_parser("score", help="train pdfsg-net on each rung and score it")
    sc.add_argument("real", type=Path, help="real dataset (its test split is the yardstick)")
    sc.add_argument("--rung", action="append", required=True, help="NAME=dataset.h5")
    sc.add_argument("--mpts52", type=Path)
    sc.add_argument("--runs", type=Path, required=True)
    sc.add_argument("--epochs", type=int, default=30)
    sc.add_argument("--seed", type=int, default=0)
    sc.add_argument("--out", type=Path, default=HERE / "results")
    sc.add_argument(
        "--keep-scored",
        action="store_true",
        help="keep the rungs already in OUT/synthetic_gap.json (same real set and epochs)",
    )
    args = ap.parse_args()
    sys.path.insert(0, str(HERE))
    {"make": cmd_make, "score": cmd_score}[args.cmd](args)


if __name__ == "__main__":
    main()
