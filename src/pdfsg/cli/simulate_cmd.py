"""``pdfsg simulate``: G(r) of structures (CIF files, a folder, or a CSV with a ``cif`` column)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pdfsg.cli.common import add_pdf_params_arguments, check_output_path, pdf_params_from_args
from pdfsg.errors import PdfsgError, StructureError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate",
        help="compute G(r) of structures",
        description=(
            "Compute G(r) of each structure with the paper's Table 2 settings unless flags say "
            "otherwise, and write a .gr file whose header records the settings."
        ),
    )
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="CIF files, folders, CSV(.gz)")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="output .gr file (one structure) or folder (several: <id>.gr each)",
    )
    p.add_argument("--engine", choices=("fast", "pdffit2"), default="fast")
    p.add_argument("--plot", action="store_true", help="also write <output>.png of each G(r)")
    add_pdf_params_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from pdfsg.io import write_gr
    from pdfsg.pdf import simulate
    from pdfsg.sources import iter_records
    from pdfsg.structures import label_space_group, record_structure

    params = pdf_params_from_args(args)
    out = Path(args.output)
    check_output_path(out, "-o", folder=out.is_dir() or out.suffix == "")
    records = [rec for src in args.sources for rec in iter_records(src)]
    single = len(records) == 1 and out.suffix != "" and not out.is_dir()
    if not single:
        out.mkdir(exist_ok=True)
    failed = 0
    for rec in tqdm(records, unit="structure", disable=len(records) < 20, file=sys.stderr):
        try:
            structure = record_structure(rec)
            g = simulate(structure, params, engine=args.engine)
        except PdfsgError as exc:
            failed += 1
            print(f"pdfsg simulate: error: {rec.where}: {exc}", file=sys.stderr)
            continue
        try:
            sg = label_space_group(structure, 0.1)
        except StructureError:
            sg = None
        target = out if single else out / f"{rec.id}.gr"
        settings = {"structure": rec.where, "composition": structure.composition.reduced_formula}
        if sg is not None:
            settings["spacegroup"] = sg
        settings["engine"] = args.engine
        settings.update(params.to_dict())
        write_gr(target, params.r_grid(), g, title=f"G(r) of {rec.id}", settings=settings)
        if args.plot:
            _plot(params.r_grid(), g, target.with_suffix(".png"), rec.id)
    n_ok = len(records) - failed
    print(f"wrote {n_ok} PDF{'s' if n_ok != 1 else ''} to {out}", file=sys.stderr)
    return 2 if failed else 0


def _plot(r, g, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.plot(r, g, lw=1)
    ax.axhline(0, color="0.7", lw=0.6)
    ax.set(xlabel="r (Å)", ylabel="G(r) (Å$^{-2}$)", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
