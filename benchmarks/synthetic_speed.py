"""How fast synthetic crystals are made, per space group, on one core.

For each group (default: the paper's 45) it makes ``--per-group`` crystals in this one
process and records crystals per second, attempts, rejection reasons and crystals given up.
Writes ``benchmarks/results/synthetic_speed.json``.

    OPENBLAS_NUM_THREADS=1 python benchmarks/synthetic_speed.py --per-group 20

``--data`` (default: ``pdfsg.shared_data.shared_data_dir()``) is only read with
``--stats-from-data N``: then the statistics table is first built from the first N structures
of ``DATA/structures/*.csv.gz`` instead of using the shipped one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from pdfsg import spacegroups
from pdfsg.shared_data import shared_data_dir
from pdfsg.sources.collections import iter_source_structures
from pdfsg.sources.stats import build_stats, load_stats
from pdfsg.sources.synthetic import GenerationStats, SyntheticConfig, generate_chunk

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=shared_data_dir(), help="shared data folder")
    ap.add_argument("--groups", default="paper45", help="label set or comma-separated numbers")
    ap.add_argument("--per-group", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stats", default=None, help="statistics table (default: shipped)")
    ap.add_argument("--stats-from-data", type=int, default=0, metavar="N")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "synthetic_speed.json")
    args = ap.parse_args(argv)

    stats_path = args.stats
    if args.stats_from_data:
        if args.data is None:
            ap.error("--stats-from-data needs --data")
        csvs = sorted((args.data / "structures").glob("*.csv.gz"))
        table = build_stats(iter_source_structures(csvs, limit=args.stats_from_data))
        stats_path = os.path.join(tempfile.mkdtemp(), "stats.json")
        Path(stats_path).write_text(json.dumps(table))
    groups = (
        spacegroups.label_set(args.groups)
        if not args.groups[0].isdigit()
        else tuple(int(g) for g in args.groups.split(","))
    )
    load_stats(stats_path)  # read once, outside the timings
    total = GenerationStats()
    rows = {}
    t_all = time.perf_counter()
    for g in groups:
        cfg = SyntheticConfig(
            space_groups=(g,), per_group=args.per_group, seed=args.seed, stats_path=stats_path
        )
        rep = GenerationStats()
        t0 = time.perf_counter()
        got = generate_chunk(cfg, 0, args.per_group, report=rep)
        dt = time.perf_counter() - t0
        total.merge(rep)
        rows[str(g)] = {
            "symbol": spacegroups.get(g).symbol,
            "crystals": len(got),
            "seconds": round(dt, 3),
            "crystals_per_s": round(len(got) / dt, 3) if dt > 0 else None,
            "attempts": rep.attempts[g],
            "rejection_rate": round(rep.rejection_rate(g), 4),
            "rejected": dict(rep.rejected[g]),
            "failed": rep.failed[g],
            "mean_atoms": round(sum(len(s) for _, _, s in got) / max(len(got), 1), 1),
        }
        print(
            f"{g:3d} {rows[str(g)]['symbol']:10s} {len(got):3d} crystals "
            f"{rows[str(g)]['crystals_per_s'] or 0:6.2f}/s  rejected "
            f"{100 * rep.rejection_rate(g):4.0f}% {dict(rep.rejected[g])}",
            file=sys.stderr,
        )
    elapsed = time.perf_counter() - t_all
    made = sum(r["crystals"] for r in rows.values())
    by_speed = sorted(rows, key=lambda g: rows[g]["crystals_per_s"] or 0.0)
    result = {
        "what": "synthetic crystals per second on one core (one process), per space group",
        "machine": {
            "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(),
            "cores_used": 1,
        },
        "settings": {
            "groups": args.groups,
            "per_group": args.per_group,
            "seed": args.seed,
            "stats": stats_path or "shipped",
            "defaults": {
                "atoms_range": list(SyntheticConfig().atoms_range),
                "min_distance_factor": SyntheticConfig().min_distance_factor,
                "template_fraction": SyntheticConfig().template_fraction,
                "max_attempts": SyntheticConfig().max_attempts,
            },
        },
        "crystals": made,
        "seconds": round(elapsed, 2),
        "crystals_per_s_per_core": round(made / elapsed, 3),
        "rejection_rate": round(total.rejection_rate(), 4),
        "rejected": {
            r: sum(c[r] for c in total.rejected.values())
            for r in ("plan", "placement", "symmetry", "distance")
        },
        "slowest_groups": by_speed[:5],
        "groups_with_failures": [g for g in rows if rows[g]["failed"]],
        "groups": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(
        f"{made} crystals in {elapsed:.1f} s: {made / elapsed:.2f} per s per core; "
        f"rejection {100 * total.rejection_rate():.0f}%; slowest {by_speed[:5]} -> {args.out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
