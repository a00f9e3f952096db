"""``pdfsg predict FILE...``: rank space groups for measured PDF files."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

from pdfsg.errors import PdfsgError


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
    p.add_argument("--top", type=int, default=6, help="how many space groups to show (6)")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
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
    p.add_argument("--plot", metavar="PNG", help="draw each PDF and its top-K probabilities")
    p.add_argument("-o", "--output", metavar="FILE", help="write the results here, not stdout")
    p.set_defaults(func=run)


def _plot_path(plot: str, source: str, n_files: int) -> Path:
    out = Path(plot)
    if n_files == 1:
        return out
    return out.with_name(f"{out.stem}-{Path(source).stem}{out.suffix or '.png'}")


def render_table(results: list[dict]) -> str:
    lines = []
    for res in results:
        lines.append(f"== {res['file']}")
        if "error" in res:
            lines.append(f"   error: {res['error']}")
            continue
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
        lines.append(f"   least sure: {res['uncertainty']}")
        settings = res.get("data_settings", {})
        if settings.get("composition"):
            origin = settings["composition_from"]
            lines.append(f"   composition: {settings['composition']} (from the {origin})")
        for n in res.get("notes", []):
            lines.append(f"   note: {n}")
        for w in res["warnings"]:
            lines.append(f"   warning: {w}")
    return "\n".join(lines) + "\n"


def render_csv(results: list[dict]) -> str:
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
            "composition",
            "composition_from",
        ]
    )
    for res in results:
        if "error" in res:
            w.writerow([res["file"], "", "", "", "", "", res["error"], "", ""])
            continue
        settings = res.get("data_settings", {})
        composition = [settings.get("composition") or "", settings.get("composition_from", "none")]
        for k, p in enumerate(res["predictions"], 1):
            w.writerow(
                [
                    res["file"],
                    k,
                    p["space_group"],
                    p["symbol"],
                    p["crystal_system"],
                    f"{p['probability']:.6f}",
                    "",
                    *composition,
                ]
            )
    return buf.getvalue()


def run(args: argparse.Namespace) -> int:
    from pdfsg.predict import Predictor

    if args.example:
        from pdfsg.predict import example_files

        args.files = [*args.files, *map(str, example_files())]
    if not args.files:
        raise PdfsgError("no input files (give FILE... or --example)")
    if args.composition is not None:
        from pdfsg.composition import parse_composition

        parse_composition(args.composition, "--composition")  # one line naming the option
    predictor = Predictor.load(args.model)  # a bad model is a user error for the whole run
    results: list[dict] = []
    failed = 0
    for f in args.files:
        try:
            res = predictor.predict_file(
                f,
                qmax=args.qmax,
                qdamp=args.qdamp,
                radiation=args.radiation,
                top=args.top,
                composition=args.composition,
            )
        except PdfsgError as exc:  # one bad file does not stop the others
            failed += 1
            print(f"pdfsg predict: error: {exc}", file=sys.stderr)
            results.append({"file": f, "error": str(exc)})
            continue
        results.append(res.to_dict())
        if args.plot:
            from pdfsg.report import plot_prediction

            plot_prediction(res, _plot_path(args.plot, f, len(args.files)))
    text = {
        "table": render_table,
        "csv": render_csv,
        "json": lambda rs: json.dumps(rs, indent=2) + "\n",
    }[args.format](results)
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 2 if failed else 0
