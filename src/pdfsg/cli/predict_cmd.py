"""``pdfsg predict FILE...``: rank space groups for measured PDF files."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

from pdfsg.errors import ParamsError, PdfsgError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="rank the space groups of measured PDF files",
        description=(
            "Rank space groups for PDF files (.gr from PDFgetX3/X2/N or xPDFsuite, PDFgui "
            ".cgr/.fgr, or plain r G columns) with the shipped model or --model PATH."
        ),
    )
    p.add_argument("files", nargs="*", metavar="FILE", help="PDF files")
    p.add_argument(
        "--example",
        action="store_true",
        help="predict the example PDF shipped with pdfsg (simulated by pdfsg itself)",
    )
    p.add_argument("--model", default="default", help="model name or folder (default: shipped)")
    p.add_argument(
        "--top", type=int, default=6, help="how many space groups to show (>= 1; default 6)"
    )
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.add_argument(
        "--label-set",
        metavar="NAME",
        default=None,
        help="rank only the model's groups in this set, their probabilities renormalised: "
        "paper45 (the paper's 45 groups), all230; all (default): every group of the model",
    )
    p.add_argument(
        "--qmax", type=float, default=None, help="Qmax of the data [1/Å] (overrides header)"
    )
    p.add_argument(
        "--qdamp", type=float, default=None, help="Qdamp of the data [1/Å] (overrides header)"
    )
    p.add_argument(
        "--radiation", choices=("xray", "neutron"), default=None, help="overrides the header"
    )
    p.add_argument(
        "--composition",
        metavar="FORMULA",
        default=None,
        help="the sample's composition, e.g. 'La0.72Ca0.28MnO3' or 'Cd Se' (overrides the "
        "header's; used by models that take one)",
    )
    p.add_argument(
        "--no-composition",
        action="store_true",
        help="rank from G(r) alone, ignoring any composition in the file headers",
    )
    p.add_argument(
        "--plot",
        metavar="PNG",
        help="draw each PDF and its top-K probabilities (several files: PNG-<stem>.png each; "
        "with --series: the series plot)",
    )
    p.add_argument("-o", "--output", metavar="FILE", help="write the results here, not stdout")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        metavar="N",
        help="CPU threads for the network (default 1: a busy machine does not stall it)",
    )
    p.add_argument(
        "--series",
        action="store_true",
        help="the files are a series: print the probabilities of the union of each file's "
        "top 3 candidates in every file (table, --format csv/json, --plot PNG)",
    )
    p.add_argument(
        "--series-key",
        metavar="KEY",
        help="order the series by this header value (e.g. temperature, from 'temperature = "
        "300 K'), not by file order",
    )
    from pdfsg.cli.refine_opts import add_refine_arguments

    add_refine_arguments(p)
    p.set_defaults(func=run)


def _plot_path(plot: str, source: str, n_files: int) -> Path:
    out = Path(plot)
    if n_files == 1:
        return out
    name = Path(source).name
    stem = Path(name[:-3] if name.lower().endswith(".gz") else name).stem  # x.gr.gz -> x
    return out.with_name(f"{out.stem}-{stem}{out.suffix or '.png'}")


def render_table(results: list[dict]) -> str:
    lines = []
    for res in results:
        lines.append(f"== {res['file']}")
        if "error" in res:
            lines.append(f"   error: {res['error']}")
            continue
        ls = res.get("label_set") or {}
        if ls.get("name", "all") != "all":
            lines.append(
                f"   label set: {ls['name']} ({ls['n_groups']} of the model's "
                f"{ls['model_groups']} groups; probabilities renormalised over them)"
            )
        lines.append(f"   {'rank':>4}  {'space group':<14}{'no.':>5}  {'crystal system':<14} prob.")
        for k, p in enumerate(res["predictions"], 1):
            lines.append(
                f"   {k:>4}  {p['symbol']:<14}{p['space_group']:>5}  {p['crystal_system']:<14}"
                f" {p['probability']:.3f}"
            )
        systems = ", ".join(
            f"{k} {v:.2f}" for k, v in list(res["crystal_systems"].items())[:3] if v > 0.005
        )
        lines.append(f"   crystal system: {systems}")
        lattices = ", ".join(
            f"{k} {v:.2f}"
            for k, v in list(res.get("bravais_lattices", {}).items())[:3]
            if v > 0.005
        )
        if lattices:
            lines.append(f"   Bravais lattice: {lattices}")
        pset = res.get("prediction_set") or {}
        if pset:
            lines.append(
                f"   {pset['level']:.0%} set: {', '.join(pset['symbols'])} ({pset['method']})"
            )
        lines.append(f"   answer: {res['uncertainty']}")
        if res.get("particle_diameter_nm") is not None:
            size = res["particle_size"]
            lines.append(
                f"   particle: about {size['diameter_nm']:.2g} nm across "
                f"({size['low_nm']:.2g}–{size['high_nm']:.2g}, from how G(r) dies out)"
            )
        settings = res.get("data_settings", {})
        if settings.get("composition"):
            origin = settings["composition_from"]
            lines.append(f"   composition: {settings['composition']} (from the {origin})")
        for n in res.get("notes", []):
            lines.append(f"   note: {n}")
        for w in res["warnings"]:
            lines.append(f"   warning: {w}")
        if "refinement" in res:
            from pdfsg.cli.refine_opts import render_refinement

            lines += render_refinement(res["refinement"])
    return "\n".join(lines) + "\n"


def render_csv(results: list[dict]) -> str:
    """One row per file and rank; ``warnings`` (joined by `` | ``) repeats on each of a
    file's rows so that a filtered row keeps them; ``in_prediction_set`` says whether the
    group is in the file's prediction set."""
    from pdfsg.spacegroups import get

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(
        [
            "file",
            "rank",
            "space_group",
            "symbol",
            "crystal_system",
            "probability",
            "error",
            "warnings",
            "composition",
            "composition_from",
            "in_prediction_set",
            "bravais_lattice",
            "laue_class",
            "label_set",
            "particle_diameter_nm",
        ]
    )
    for res in results:
        if "error" in res:
            w.writerow([res["file"], "", "", "", "", "", res["error"], *[""] * 8])
            continue
        warnings = " | ".join(res["warnings"])
        settings = res.get("data_settings", {})
        composition = [settings.get("composition") or "", settings.get("composition_from", "none")]
        in_set = set((res.get("prediction_set") or {}).get("space_groups", []))
        label_set = (res.get("label_set") or {}).get("name", "all")
        diameter = res.get("particle_diameter_nm")
        for k, p in enumerate(res["predictions"], 1):
            sg = get(p["space_group"])
            w.writerow(
                [
                    res["file"],
                    k,
                    p["space_group"],
                    p["symbol"],
                    p["crystal_system"],
                    f"{p['probability']:.6f}",
                    "",
                    warnings,
                    *composition,
                    "yes" if p["space_group"] in in_set else "no",
                    sg.bravais_lattice,
                    sg.laue_class,
                    label_set,
                    "" if diameter is None else f"{diameter:.3g}",
                ]
            )
    return buf.getvalue()


def _check_args(args: argparse.Namespace) -> None:
    """Every option checked before a model is loaded or a file read."""
    from pdfsg.cli.common import check_output_path, option_error
    from pdfsg.predict import check_options

    try:
        check_options(qmax=args.qmax, qdamp=args.qdamp, top=args.top, min_top=1)
    except ParamsError as exc:
        raise option_error(exc) from None
    if args.no_composition and args.composition is not None:
        raise PdfsgError("--composition and --no-composition exclude each other")
    if args.composition is not None:
        from pdfsg.composition import parse_composition

        parse_composition(args.composition, "--composition")  # one line naming the option
    if args.series_key and not args.series:
        raise PdfsgError("--series-key needs --series")
    if args.output:
        check_output_path(args.output, "-o")
    if args.plot:
        check_output_path(args.plot, "--plot")
    from pdfsg.cli.refine_opts import check_refine_args

    check_refine_args(args)


def run(args: argparse.Namespace) -> int:
    from pdfsg.predict import Predictor

    if args.example:
        from pdfsg.predict import example_files

        args.files = [*args.files, *map(str, example_files())]
    if not args.files:
        raise PdfsgError("no input files (give FILE... or --example)")
    _check_args(args)
    x = None
    if args.series_key:  # a file without the key fails before any prediction
        from pdfsg.series import series_keys

        x = series_keys(args.files, args.series_key)
    from pdfsg.models import limit_threads
    from pdfsg.predict import PredictionError

    if args.threads < 1:
        raise ParamsError(f"--threads must be >= 1, got {args.threads}")
    limit_threads(args.threads)
    predictor = Predictor.load(args.model)  # a bad model is a user error for the whole run
    try:  # before any file is read
        predictor.restriction(args.label_set)
    except ParamsError as exc:
        from pdfsg.cli.common import option_error

        raise option_error(exc) from None
    refiner = None
    if args.refine:
        from pdfsg.cli.refine_opts import RefineContext

        refiner = RefineContext(args)
    results: list[dict] = []
    answered = []
    plots: list[Path] = []
    failed = 0
    outcomes = predictor.predict_many(
        args.files,
        qmax=args.qmax,
        qdamp=args.qdamp,
        radiation=args.radiation,
        top=max(args.top, args.refine_top) if refiner else args.top,
        composition=False if args.no_composition else args.composition,
        label_set=args.label_set,
    )
    for f, res in zip(args.files, outcomes, strict=True):
        if isinstance(res, PredictionError):  # one bad file does not stop the others
            failed += 1
            print(f"pdfsg predict: error: {res.error}", file=sys.stderr)
            results.append(res.to_dict())
            continue
        results.append(res.to_dict())
        if refiner is not None:  # the refined top K; the listed top stays --top
            results[-1]["predictions"] = results[-1]["predictions"][: args.top]
            results[-1]["refinement"] = refiner.refine(res)
            if "error" in results[-1]["refinement"]:
                print(f"pdfsg predict: {results[-1]['refinement']['error']}", file=sys.stderr)
        answered.append(res)
        if args.plot and not args.series:
            from pdfsg.report import plot_prediction

            plots.append(plot_prediction(res, _plot_path(args.plot, f, len(args.files))))
    if plots:
        print(f"pdfsg predict: wrote {', '.join(map(str, plots))}", file=sys.stderr)
    if args.series:
        return _run_series(args, answered, x, failed)
    to_csv = render_csv
    if refiner is not None:  # one row per refined candidate
        from pdfsg.cli.refine_opts import render_refine_csv as to_csv
    text = {
        "table": render_table,
        "csv": to_csv,
        "json": lambda rs: json.dumps(rs, indent=2) + "\n",
    }[args.format](results)
    _emit(args, text)
    return 2 if failed else 0


def _emit(args: argparse.Namespace, text: str) -> None:
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)


def _run_series(args: argparse.Namespace, answered: list, x, failed: int) -> int:
    """The series table / CSV / JSON of the answered files (failed files left out)."""
    from pdfsg.series import build_series

    if not answered:
        raise PdfsgError("--series: no file could be answered")
    if x is not None:
        kept = {str(r.file) for r in answered}
        x = [v for f, v in zip(args.files, x, strict=True) if f in kept]
    series = build_series(answered, x=x, x_label=args.series_key or "index", top=3)
    text = {
        "table": series.to_table,
        "csv": series.to_csv,
        "json": lambda: json.dumps(series.to_dict(), indent=2) + "\n",
    }[args.format]()
    _emit(args, text)
    if args.plot:
        from pdfsg.report import plot_series

        out = plot_series(series, args.plot)
        print(f"pdfsg predict: wrote {out}", file=sys.stderr)
    return 2 if failed else 0
