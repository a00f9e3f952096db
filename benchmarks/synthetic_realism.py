"""How much synthetic crystals look like real ones of the same space group.

Real structures: ``DATA/structures/*.csv.gz`` (Materials Project), labelled with spglib at
symprec 0.1, at most ``--real-per-group`` per group.  Synthetic: ``--per-group`` crystals per
group from :mod:`pdfsg.sources.synthetic` with default settings.  Per group and pooled it compares

* atoms per conventional cell,
* volume per atom [Å³],
* nearest-neighbour distance of every atom [Å] and its ratio to the sum of covalent radii,
* G(r) peak density: local maxima of G(r) (paper settings, :func:`pdfsg.pdf.simulate`) with a
  prominence of at least 5 % of max|G|, per Å of 1.5-30 Å,

by their medians and the two-sample Kolmogorov-Smirnov statistic (0 = same distribution,
1 = disjoint).  Writes ``benchmarks/results/synthetic_realism.json`` (+ a PNG with --plot).

    OPENBLAS_NUM_THREADS=1 python benchmarks/synthetic_realism.py --per-group 20 --plot

Note: the shipped statistics table was computed from these same real structures, so this
measures how well the generator reproduces what it learnt, not generalisation.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from pdfsg import spacegroups
from pdfsg.pdf import simulate
from pdfsg.shared_data import shared_data_dir
from pdfsg.sources.collections import iter_source_structures
from pdfsg.sources.geometry import _covalent_radius
from pdfsg.sources.stats import analyze_structure
from pdfsg.sources.synthetic import GenerationStats, SyntheticConfig, generate_chunk

HERE = Path(__file__).resolve().parent
DESCRIPTORS = ("atoms", "volume_per_atom", "nn_distance", "nn_ratio", "peak_density")


def nn_distances(structure) -> tuple[np.ndarray, np.ndarray]:
    """Per atom: nearest-neighbour distance [Å] and its ratio to r_i + r_j."""
    red = structure.get_reduced_structure(reduction_algo="niggli")
    lat = np.asarray(red.lattice.matrix)
    frac = np.asarray(red.frac_coords)
    radii = np.array([_covalent_radius(s.specie.symbol) for s in red])
    diff = frac[None, :, :] - frac[:, None, :]
    diff -= np.round(diff)
    shifts = np.stack(np.meshgrid(*[np.arange(-1, 2)] * 3, indexing="ij"), -1).reshape(-1, 3)
    n = len(red)
    best_d = np.full(n, np.inf)
    best_r = np.full(n, np.inf)
    rsum = radii[:, None] + radii[None, :]
    for t in shifts:
        cart = (diff + t) @ lat
        d = np.sqrt(np.einsum("ijk,ijk->ij", cart, cart))
        if not t.any():
            np.fill_diagonal(d, np.inf)
        best_d = np.minimum(best_d, d.min(axis=1))
        best_r = np.minimum(best_r, (d / rsum).min(axis=1))
    return best_d, best_r


def peak_density(structure) -> float:
    from scipy.signal import find_peaks

    g = simulate(structure)
    peaks, _ = find_peaks(g, prominence=0.05 * np.max(np.abs(g)))
    return len(peaks) / (30.0 - 1.5)


def describe(structure, atoms_conv: int) -> dict:
    d, r = nn_distances(structure)
    return {
        "atoms": [atoms_conv],
        "volume_per_atom": [structure.volume / len(structure)],
        "nn_distance": d.tolist(),
        "nn_ratio": r.tolist(),
        "peak_density": [peak_density(structure)],
    }


def compare(real: dict, syn: dict) -> dict:
    from scipy.stats import ks_2samp

    out = {}
    for k in DESCRIPTORS:
        a, b = np.asarray(real.get(k, [])), np.asarray(syn.get(k, []))
        if len(a) == 0 or len(b) == 0:
            out[k] = None
            continue
        out[k] = {
            "real_median": round(float(np.median(a)), 3),
            "synthetic_median": round(float(np.median(b)), 3),
            "real_q10_q90": [round(float(x), 3) for x in np.quantile(a, [0.1, 0.9])],
            "synthetic_q10_q90": [round(float(x), 3) for x in np.quantile(b, [0.1, 0.9])],
            "ks": round(float(ks_2samp(a, b).statistic), 3),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=shared_data_dir(), help="shared data folder")
    ap.add_argument("--groups", default="paper45", help="label set or comma-separated numbers")
    ap.add_argument("--per-group", type=int, default=20, help="synthetic crystals per group")
    ap.add_argument("--real-per-group", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stats", default=None, help="statistics table (default: shipped)")
    ap.add_argument("--min-distance-factor", type=float, default=None)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "synthetic_realism.json")
    ap.add_argument("--plot", action="store_true", help="also write a PNG beside the JSON")
    args = ap.parse_args(argv)
    if args.data is None or not (args.data / "structures").is_dir():
        ap.error("no shared data folder: give --data DIR (with structures/*.csv.gz)")
    groups = (
        spacegroups.label_set(args.groups)
        if not args.groups[0].isdigit()
        else tuple(int(g) for g in args.groups.split(","))
    )
    wanted = set(groups)

    t0 = time.perf_counter()
    real: dict[int, dict] = defaultdict(lambda: defaultdict(list))
    n_real: dict[int, int] = defaultdict(int)
    csvs = sorted((args.data / "structures").glob("*.csv.gz"))
    for _, s, _ in iter_source_structures(csvs):
        if s is None:
            continue
        try:
            row = analyze_structure(s, 0.1)
        except Exception:
            continue
        g = row["group"]
        if g not in wanted or n_real[g] >= args.real_per_group:
            continue
        n_real[g] += 1
        for k, v in describe(s, row["atoms"]).items():
            real[g][k].extend(v)
    t_real = time.perf_counter() - t0

    extra = {}
    if args.min_distance_factor:
        extra["min_distance_factor"] = args.min_distance_factor
    cfg = SyntheticConfig(
        space_groups=groups,
        per_group=args.per_group,
        seed=args.seed,
        stats_path=args.stats,
        **extra,
    )
    report = GenerationStats()
    syn: dict[int, dict] = defaultdict(lambda: defaultdict(list))
    t1 = time.perf_counter()
    for _, g, s in generate_chunk(cfg, 0, cfg.total, report=report):
        for k, v in describe(s, len(s)).items():
            syn[g][k].extend(v)
    t_syn = time.perf_counter() - t1

    per_group = {}
    for g in groups:
        per_group[str(g)] = {
            "symbol": spacegroups.get(g).symbol,
            "n_real": n_real[g],
            "n_synthetic": len(syn[g]["atoms"]),
            **compare(real[g], syn[g]),
        }
    pooled_real = {k: [x for g in groups for x in real[g][k]] for k in DESCRIPTORS}
    pooled_syn = {k: [x for g in groups for x in syn[g][k]] for k in DESCRIPTORS}
    pooled = compare(pooled_real, pooled_syn)
    ks_by_group = {
        k: round(
            float(
                np.median([per_group[str(g)][k]["ks"] for g in groups if per_group[str(g)].get(k)])
            ),
            3,
        )
        for k in DESCRIPTORS
    }
    result = {
        "what": "synthetic vs real crystals of the same space group (KS: 0 same, 1 disjoint)",
        "settings": {
            "groups": args.groups,
            "per_group": args.per_group,
            "real_per_group": args.real_per_group,
            "seed": args.seed,
            "stats": args.stats or "shipped",
            "data": str(args.data),
            "min_distance_factor": cfg.min_distance_factor,
        },
        "seconds": {"real": round(t_real, 1), "synthetic": round(t_syn, 1)},
        "generation": report.to_dict(),
        "pooled": pooled,
        "median_ks_over_groups": ks_by_group,
        "groups": per_group,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    for k in DESCRIPTORS:
        p = pooled[k]
        print(
            f"{k:16s} real {p['real_median']:8.3f}  synthetic {p['synthetic_median']:8.3f}  "
            f"KS pooled {p['ks']:.3f}  median KS per group {ks_by_group[k]:.3f}",
            file=sys.stderr,
        )
    if args.plot:
        plot(pooled_real, pooled_syn, args.out.with_suffix(".png"))
    print(f"-> {args.out}", file=sys.stderr)
    return 0


def plot(real: dict, syn: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {
        "atoms": "atoms per conventional cell",
        "volume_per_atom": "volume per atom [Å³]",
        "nn_distance": "nearest-neighbour distance [Å]",
        "nn_ratio": "NN distance / (r_i + r_j)",
        "peak_density": "G(r) peaks per Å",
    }
    fig, axes = plt.subplots(1, len(DESCRIPTORS), figsize=(4 * len(DESCRIPTORS), 3.2))
    for ax, k in zip(axes, DESCRIPTORS, strict=True):
        a, b = np.asarray(real[k]), np.asarray(syn[k])
        lo, hi = np.quantile(np.concatenate([a, b]), [0.005, 0.995])
        bins = np.linspace(lo, hi, 40)
        ax.hist(a, bins, density=True, alpha=0.5, label=f"real ({len(a)})")
        ax.hist(b, bins, density=True, alpha=0.5, label=f"synthetic ({len(b)})")
        ax.set_xlabel(labels[k])
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
