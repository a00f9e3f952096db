"""``pdfsg library``: build or inspect a structure library for ``pdfsg predict --refine``.

``pdfsg library build SOURCE... -o lib.json.gz`` reads CSV / CSV.GZ files with a ``cif``
column, folders of CIFs or single CIFs (an ICSD or COD export, the Materials Project), finds
each structure's space group with spglib and keeps one symmetrised conventional cell per
structure type and group (``--keep type``) or per formula and group (``--keep formula``).

``pdfsg library show [lib.json.gz]`` summarises a library (default: the shipped one).
"""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("library", help="build or show a structure library for predict --refine")
    lsub = p.add_subparsers(dest="library_command", metavar="ACTION")

    b = lsub.add_parser("build", help="build a structure library from structure collections")
    b.add_argument(
        "sources",
        nargs="+",
        metavar="SOURCE",
        help="CSV(.gz) with a cif column, a folder of CIFs or a CIF file (earlier ones are "
        "preferred for a key that several hold)",
    )
    b.add_argument("-o", "--output", required=True, help="library file to write (.json.gz)")
    b.add_argument(
        "--keep",
        choices=("type", "formula"),
        default="type",
        help="one structure per structure type (anonymised formula) and group, or per "
        "reduced formula and group (default type)",
    )
    b.add_argument("--symprec", type=float, default=0.1, help="spglib tolerance [Å] (0.1)")
    b.add_argument(
        "--exclude",
        metavar="IDS",
        default=None,
        help="file of ids (one a line) to leave out, e.g. held-out test structures",
    )
    b.add_argument("--attribution", default="", help="data attribution recorded in the file")
    b.set_defaults(func=_build)

    s = lsub.add_parser("show", help="summarise a structure library")
    s.add_argument("path", nargs="?", default=None, help="library (default: the shipped one)")
    s.add_argument("--formula", default=None, help="list the entries of this formula's type")
    s.set_defaults(func=_show)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _build(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pdfsg.cli.common import check_output_path
    from pdfsg.errors import PdfsgError
    from pdfsg.refine.library import build_library, write_library

    out = check_output_path(args.output, "-o")
    if not args.symprec > 0:
        raise PdfsgError(f"--symprec must be > 0 [Å], got {args.symprec:g}")
    exclude: list[str] = []
    if args.exclude:
        try:
            exclude = Path(args.exclude).read_text().split()
        except OSError as exc:
            raise PdfsgError(f"--exclude: cannot read {args.exclude} ({exc.strerror})") from None
    from tqdm import tqdm

    bar = tqdm(desc="structures", unit=" st", file=sys.stderr, disable=None)

    def progress(n: int) -> None:
        bar.update(n - bar.n)

    library, skipped = build_library(
        args.sources,
        keep=args.keep,
        symprec=args.symprec,
        exclude=exclude,
        attribution=args.attribution,
        progress=progress,
    )
    bar.close()
    write_library(library, out)
    size = out.stat().st_size / 1e6
    print(
        f"pdfsg library: wrote {out} ({len(library)} structures, {size:.1f} MB; "
        f"{len(skipped)} records skipped)",
        file=sys.stderr,
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    from collections import Counter

    from pdfsg.refine.library import read_library

    lib = read_library(args.path)
    meta = lib.meta
    print(f"library {lib.path}: {len(lib)} structures (keep = {meta.get('keep')})")
    print(f"  sources: {', '.join(meta.get('sources', []))}")
    if meta.get("attribution"):
        print(f"  attribution: {meta['attribution']}")
    groups = Counter(e.space_group for e in lib.entries)
    top = ", ".join(f"{g} ({n})" for g, n in groups.most_common(8))
    print(f"  {len(groups)} space groups; most entries: {top}")
    if args.formula:
        from pdfsg.composition import format_composition, parse_composition

        comp = parse_composition(args.formula, "--formula")
        from pymatgen.core import Composition

        anon = Composition(format_composition(comp)).anonymized_formula
        for e in lib.entries:
            if e.anonymous == anon:
                print(f"  {e.id:<16} {e.formula:<14} group {e.space_group:>3}  {e.n_atoms} atoms")
    return 0
