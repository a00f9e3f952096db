"""``pdfsg stats``: the statistics of real structures that synthetic crystals are drawn from.

``pdfsg stats build SOURCE... -o stats.json`` reads CSV / CSV.GZ files with a ``cif`` column,
folders of CIFs or single CIFs, finds each structure's space group and Wyckoff letters with
spglib, and writes aggregated counts and quantiles (never a structure) for
:class:`pdfsg.sources.synthetic.SyntheticConfig`'s ``stats_path``.

``pdfsg stats show [stats.json]`` summarises a table (default: the one shipped with pdfsg).
"""

from __future__ import annotations

import argparse
import json
import sys

MP_ATTRIBUTION = (
    "Statistics computed from Materials Project structures (materialsproject.org), "
    "CC BY 4.0, via the MP-20 and MPTS-52 benchmark subsets (CDVAE and DiffCSP authors)"
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stats", help="statistics of real structures for synthetic crystals")
    ssub = p.add_subparsers(dest="stats_command", metavar="ACTION")

    b = ssub.add_parser("build", help="compute a statistics table from real structures")
    b.add_argument(
        "sources",
        nargs="+",
        metavar="SOURCE",
        help="CSV(.gz) with a cif column, a folder of CIFs or a CIF file",
    )
    b.add_argument("-o", "--output", required=True, help="JSON file to write")
    b.add_argument("--symprec", type=float, default=0.1, help="spglib tolerance [Å] (0.1)")
    b.add_argument("--limit", type=int, default=None, help="read at most this many structures")
    b.add_argument(
        "--min-template-count",
        type=int,
        default=2,
        help="keep Wyckoff templates shared by at least this many structures (2)",
    )
    b.add_argument("--attribution", default="", help="data attribution recorded in the table")
    b.add_argument("--license", default="", help="data licence recorded in the table")
    b.add_argument(
        "--materials-project",
        action="store_true",
        help="record the Materials Project attribution (CC BY 4.0)",
    )
    b.set_defaults(func=_build)

    s = ssub.add_parser("show", help="summarise a statistics table")
    s.add_argument("path", nargs="?", default=None, help="table (default: the shipped one)")
    s.add_argument("--group", type=str, default=None, help="details of one space group")
    s.set_defaults(func=_show)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _build(args: argparse.Namespace) -> int:
    from pdfsg.errors import ParamsError
    from pdfsg.sources.collections import iter_source_structures
    from pdfsg.sources.stats import build_stats

    if args.limit is not None and args.limit <= 0:
        raise ParamsError(f"--limit must be > 0, got {args.limit}")
    from pdfsg.cli.common import check_output_path

    out = check_output_path(args.output, "-o")
    items = iter_source_structures(args.sources, limit=args.limit)
    if sys.stderr.isatty():
        from tqdm import tqdm

        items = tqdm(items, desc="structures", unit="", total=args.limit)
    attribution, license_ = args.attribution, args.license
    if args.materials_project:
        attribution = attribution or MP_ATTRIBUTION
        license_ = license_ or "CC BY 4.0"
    table = build_stats(
        items,
        symprec=args.symprec,
        sources=args.sources,
        attribution=attribution,
        license=license_,
        min_template_count=args.min_template_count,
    )
    out.write_text(json.dumps(table, separators=(",", ":")) + "\n", encoding="utf-8")
    src = table["source"]
    print(
        f"{out}: {src['n_used']} structures in {len(table['groups'])} space groups "
        f"({src['n_skipped']} skipped), {len(table['elements'])} elements, "
        f"{out.stat().st_size / 1024:.0f} KiB"
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    from pdfsg import spacegroups
    from pdfsg.sources.stats import load_stats

    stats = load_stats(args.path)
    data = stats.data
    src = data["source"]
    if args.group:
        g = spacegroups.get(args.group)
        entry = stats.group(g.number)
        print(f"{g}: {entry.get('n', 0)} structures")
        for key in ("atoms", "orbits", "letters"):
            print(f"  {key}: {entry.get(key, {})}")
        temps = list(entry.get("templates", {}).items())[:15]
        print("  most common templates: " + ", ".join(f"{t!r}×{c}" for t, c in temps))
        return 0
    print(f"{stats.path}")
    print(f"  sources: {', '.join(src['files'])} ({src['n_used']} structures used)")
    print(f"  attribution: {src.get('attribution') or '-'}  licence: {src.get('license') or '-'}")
    print(f"  space groups with data: {len(data['groups'])}; elements: {len(data['elements'])}")
    top = sorted(data["elements"].items(), key=lambda kv: -kv[1]["structures"])[:10]
    print("  most common elements: " + ", ".join(f"{e} ({v['structures']})" for e, v in top))
    print(f"  volume model log-sigma: {data['volume_log_sigma']}")
    q = data["nn_ratio"]
    print(f"  nearest-neighbour d/(r_i+r_j): 5% {q[1]}, median {q[10]}, 95% {q[19]}")
    return 0
