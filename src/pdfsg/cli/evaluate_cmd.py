"""``pdfsg evaluate DATASET.h5 [--model M] [--split S] [--json FILE] [--report DIR]``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="top-k accuracy, confusions and figures of a model on a dataset split",
        description=(
            "Evaluate a trained model on a dataset file: top-k accuracy A1..A6 and their "
            "differences, accuracy per space group and crystal system, the confusion matrix "
            "and the group-subgroup relations of its largest confusions. The dataset must "
            "have been simulated with the model's PdfParams and label set."
        ),
    )
    p.add_argument("dataset", metavar="DATASET.h5", help="dataset file")
    p.add_argument(
        "--model",
        default="default",
        help="model folder or shipped name: default (= shipped), pdfsg-v2, pdfsg-v2-r30... "
        "(default: the shipped family)",
    )
    p.add_argument("--split", choices=("test", "train", "all"), default="test")
    p.add_argument(
        "--label-set",
        metavar="NAME",
        default=None,
        help="the paper's protocol for a model of more groups: score only rows whose true "
        "group is in this set (paper45), ranked among the model's groups in it; all "
        "(default): every row, every group",
    )
    p.add_argument("--json", metavar="FILE", help="write all metrics as JSON (fractions)")
    p.add_argument("--report", metavar="DIR", help="write the figures (PNG) and metrics.json")
    p.add_argument(
        "--allow-params-mismatch",
        action="store_true",
        help="accept a dataset simulated with other non-grid PdfParams (Qdamp, Uiso...) "
        "than the model's (e.g. a robustness test set); the r grid must still match",
    )
    p.add_argument("--device", default="cpu", help="torch device for networks (cpu)")
    p.add_argument(
        "--composition",
        action="store_true",
        help="give a composition-aware model each row's formula (default: G(r) alone)",
    )
    p.set_defaults(func=run)


def _model_dir(name: str, params) -> Path:
    """A model folder for ``name``: a folder, a shipped model, or the member of a shipped
    family whose grid matches the dataset."""
    from pdfsg.artifact import read_manifest, resolve_model_dir
    from pdfsg.errors import ModelError
    from pdfsg.params import PdfParams

    try:
        from pdfsg.predict import resolve_model_paths
    except ImportError:  # pragma: no cover
        return resolve_model_dir(name)
    paths = resolve_model_paths(name)
    if len(paths) == 1:
        return paths[0]
    for path in paths:
        mp = PdfParams.from_dict(read_manifest(path)["params"])
        if mp.npoints == params.npoints and abs(mp.rmin - params.rmin) < 1e-9:
            return path
    raise ModelError(f"no model of {name!r} has the dataset's r grid ({params.npoints} points)")


def run(args: argparse.Namespace) -> int:
    import sys

    from pdfsg.artifact import load_history, load_model
    from pdfsg.cli.common import check_output_path
    from pdfsg.datasets import read_dataset
    from pdfsg.evaluate import evaluate

    if args.json:
        check_output_path(args.json, "--json")
    if args.report:
        check_output_path(args.report, "--report", folder=True)
    ds = read_dataset(args.dataset)
    folder = _model_dir(args.model, ds.params)
    model = load_model(folder, device=args.device)
    from pdfsg.errors import ParamsError

    try:
        ev = evaluate(
            model,
            ds,
            args.split,
            allow_physics_mismatch=args.allow_params_mismatch,
            composition=args.composition,
            label_set=args.label_set,
        )
    except ParamsError as exc:  # named as the option: --label-set
        from pdfsg.cli.common import option_error

        raise option_error(exc) from None
    doc = ev.to_json()
    for note in ev.warnings:
        print(f"pdfsg evaluate: warning: {note}", file=sys.stderr)
    if args.json:
        out = Path(args.json)
        out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    if args.report:
        from pdfsg.report import write_report

        write_report(ev, args.report, history=load_history(folder))
    top = ev.top_k
    ls = ev.label_set
    among = "" if ls["name"] == "all" else f", label set {ls['name']} ({ls['n_groups']} groups)"
    print(
        f"{Path(args.dataset).name} [{args.split}, n = {ev.n}{among}] model "
        f"{doc['model']['name']}: "
        + "  ".join(f"A{k} {100 * v:.1f}%" for k, v in sorted(top.items()))
    )
    _print_breakdown(ev.breakdown)
    cal = ev.calibration
    wrong = cal["wrong_at_90"]
    print(
        f"  calibration: ECE {cal['ece']:.3f}, mean top-1 probability "
        f"{cal['mean_top1_probability']:.3f} vs accuracy {cal['top1_accuracy']:.3f}; answers at "
        f">= 90 %: {cal['n_answers_at_90']}, wrong "
        + ("-" if wrong is None else f"{100 * wrong:.1f}%")
        + (
            f"; {100 * cal['prediction_set']['coverage']:.1f}% covered by the prediction sets "
            f"(mean size {cal['prediction_set']['mean_size']:.2f})"
            if "prediction_set" in cal
            else ""
        )
    )
    for c in ev.confusions[:5]:
        print(
            f"  {c['true_symbol']} ({c['true']}) -> {c['predicted_symbol']} ({c['predicted']}) "
            f"{100 * c['rate']:.1f}%: {c['relation']['kind']}"
        )
    return 0


def _print_breakdown(parts: dict[str, Any]) -> None:
    """The top-k lines of a model of more than 45 groups (paper-45 rows, crystal systems)."""

    def ks(acc: dict[str, float]) -> str:
        return "  ".join(f"A{k} {100 * v:.1f}%" for k, v in acc.items() if k in ("1", "3", "6"))

    rows = parts.get("paper45_rows")
    if rows and rows["n"]:
        print(
            f"  rows of the paper's 45 groups (n = {rows['n']}): among all groups "
            f"{ks(rows['top_k_accuracy'])}; among the 45 {ks(rows['top_k_accuracy_within_45'])}"
        )
    for cs, entry in (parts.get("per_crystal_system") or {}).items():
        print(f"  {cs} (n = {entry['n']}): {ks(entry['top_k_accuracy'])}")
