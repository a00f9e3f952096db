"""The ``--refine`` options of ``pdfsg predict``: check the top groups by refining candidate
structures (:mod:`pdfsg.refine`), and render what came of it (table lines, CSV rows)."""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from pathlib import Path
from typing import Any

from pdfsg.errors import PdfsgError


def add_refine_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "refinement",
        "refine candidate structures of the top groups against the data (diffpy.pdffit2)",
    )
    g.add_argument(
        "--refine",
        action="store_true",
        help="refine candidates of the sample's composition in the top groups and rank the "
        "groups by fit and probability (needs a composition: header or --composition); with "
        "--plot PNG also draws data, fit and difference as PNG-<file stem>-fit.png",
    )
    g.add_argument(
        "--refine-top", type=int, default=6, metavar="K", help="groups to check (default 6)"
    )
    g.add_argument(
        "--candidates",
        metavar="DIR_OR_CSV",
        help="your candidate structures: a folder of CIFs, a CIF, or a CSV(.gz) with a cif column",
    )
    g.add_argument(
        "--library",
        metavar="FILE",
        default=None,
        help="structure library (pdfsg library build; default: the shipped one; 'none': "
        "no library)",
    )
    g.add_argument(
        "--refine-out",
        metavar="DIR",
        help="write the best refined structure of each file here as CIF",
    )
    g.add_argument(
        "--refine-rmax",
        type=float,
        default=None,
        metavar="R",
        help="fit up to this r [Å] (default: the data's last point)",
    )
    g.add_argument(
        "--refine-seconds",
        type=float,
        default=20.0,
        metavar="S",
        help="time budget of one candidate [s] (default 20)",
    )
    g.add_argument(
        "--refine-workers",
        type=int,
        default=None,
        metavar="N",
        help="processes refining candidates in parallel (default: the CPU count, at most 4)",
    )


def check_refine_args(args: argparse.Namespace) -> None:
    """Every ``--refine`` option checked before any work (one line naming the option)."""
    from pdfsg.cli.common import check_output_path

    given = [
        name
        for name, value in (
            ("--candidates", args.candidates),
            ("--refine-out", args.refine_out),
            ("--library", args.library),
            ("--refine-rmax", args.refine_rmax),
        )
        if value is not None
    ]
    if given and not args.refine:
        raise PdfsgError(f"{given[0]} needs --refine")
    if not args.refine:
        return
    if args.no_composition:
        raise PdfsgError("--refine needs the composition; it excludes --no-composition")
    if args.refine_top < 1:
        raise PdfsgError(f"--refine-top must be >= 1, got {args.refine_top}")
    if not args.refine_seconds > 0:
        raise PdfsgError(f"--refine-seconds must be > 0, got {args.refine_seconds:g}")
    if args.refine_workers is not None and args.refine_workers < 1:
        raise PdfsgError(f"--refine-workers must be >= 1, got {args.refine_workers}")
    if args.refine_rmax is not None and not args.refine_rmax > 1.5:
        raise PdfsgError(f"--refine-rmax must be > 1.5 Å, got {args.refine_rmax:g}")
    if args.candidates is not None and not Path(args.candidates).exists():
        raise PdfsgError(f"--candidates: {args.candidates}: no such file or folder")
    if args.library not in (None, "none") and not Path(args.library).is_file():
        raise PdfsgError(f"--library: {args.library}: no such file")
    if args.refine_out:
        check_output_path(args.refine_out, "--refine-out", folder=True)


class RefineContext:
    """What every file's refinement shares: library, user candidates, settings."""

    def __init__(self, args: argparse.Namespace) -> None:
        from pdfsg.refine.candidates import read_user_candidates
        from pdfsg.refine.fit import FitSettings
        from pdfsg.refine.library import LibraryError, read_library

        self.args = args
        self.library = None
        if args.library != "none":
            try:
                self.library = read_library(args.library)
            except LibraryError as exc:
                raise PdfsgError(f"--library: {exc}") from None
        self.user: list = []
        self.user_notes: list[str] = []
        if args.candidates:
            self.user, self.user_notes = read_user_candidates(args.candidates)
        self.settings = FitSettings(rmax=args.refine_rmax, max_seconds=args.refine_seconds)
        self.workers = args.refine_workers or min(4, os.cpu_count() or 1)
        if args.refine_out:
            Path(args.refine_out).mkdir(exist_ok=True)

    def refine(self, prediction: Any) -> dict[str, Any]:
        """The refinement of one answered file as a dict (``{"error": ...}`` when it could
        not be done: no composition, data too short); writes its CIF and plot."""
        from pdfsg.io import read_pdf_file
        from pdfsg.refine.pipeline import plot_fit, refine_prediction, write_best_cif

        args = self.args
        data = read_pdf_file(str(prediction.file))
        from tqdm import tqdm

        bar = tqdm(desc=f"refining {Path(str(prediction.file)).name}", unit=" cand",
                   file=sys.stderr, disable=None, leave=False)  # fmt: skip
        try:
            result = refine_prediction(
                prediction, data.r, data.g, composition=args.composition,
                top=args.refine_top, library=self.library, user=self.user,
                settings=self.settings, workers=self.workers,
                progress=lambda fit: bar.update(1),
            )  # fmt: skip
        except PdfsgError as exc:
            return {"error": str(exc)}
        finally:
            bar.close()
        out = result.to_dict()
        out["notes"] = [*out["notes"], *self.user_notes]
        if args.refine_out:
            cif = write_best_cif(result, args.refine_out)
            out["cif"] = str(cif) if cif else None
        if args.plot and result.best is not None:
            png = Path(args.plot)
            target = png.with_name(f"{png.stem}-{_stem(prediction.file)}-fit.png")
            out["plot"] = str(plot_fit(result, target))
        return out


def _stem(file: Any) -> str:
    from pdfsg.refine.pipeline import _stem as stem

    return stem(str(file))


def render_refinement(ref: dict[str, Any]) -> list[str]:
    """Table lines of one file's refinement."""
    if "error" in ref:
        return [f"   refinement: {ref['error']}"]
    lines = [
        f"   refinement of {ref['composition']} ({ref['settings']['method']}):",
        f"   {'rank':>4}  {'space group':<14}{'no.':>5} {'prob.':>6} {'best Rw':>8}  candidate",
    ]
    for g in ref["ranking"]:
        rw = "" if g["best_rw"] is None else f"{g['best_rw']:.3f}"
        lines.append(
            f"   {g['rank']:>4}  {g['symbol']:<14}{g['space_group']:>5} {g['probability']:>6.3f}"
            f" {rw:>8}  {g['best_candidate'] or '-'}"
        )
    lines.append(f"   {'group':<12} {'source':<30} {'Rw':>6}  lattice (Å, °)")
    for c in ref["candidates"]:
        lat = c["lattice"]
        text = " ".join(f"{k}={lat[k]:.4g}" for k in ("a", "b", "c", "alpha", "beta", "gamma")
                        if k in lat)  # fmt: skip
        rw = f"{c['rw']:.3f}" if c["status"] == "ok" else "failed"
        src = f"{c['source']}:{c['id']}"[:30]
        lines.append(f"   {c['symbol']:<12} {src:<30} {rw:>6}  {text}")
    for n in ref["notes"]:
        lines.append(f"   refinement note: {n}")
    for key in ("cif", "plot"):
        if ref.get(key):
            lines.append(f"   wrote {ref[key]}")
    return lines


CSV_COLUMNS = [
    "file", "group_rank", "space_group", "symbol", "probability", "model_rank", "best_rw",
    "source", "id", "formula", "status", "rw", "a", "b", "c", "alpha", "beta", "gamma",
    "reason",
]  # fmt: skip


def render_refine_csv(results: list[dict]) -> str:
    """One row per candidate (groups without one: one row with the reason), in the order of
    the combined ranking; a file that failed: one row with its error."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_COLUMNS)
    for res in results:
        ref = res.get("refinement") or {"error": res.get("error", "")}
        if "error" in ref:
            w.writerow([res["file"], *[""] * (len(CSV_COLUMNS) - 2), ref["error"]])
            continue
        for g in ref["ranking"]:
            head = [res["file"], g["rank"], g["space_group"], g["symbol"],
                    f"{g['probability']:.6f}", g["model_rank"],
                    "" if g["best_rw"] is None else f"{g['best_rw']:.5f}"]  # fmt: skip
            cands = [c for c in ref["candidates"] if c["space_group"] == g["space_group"]]
            if not cands:
                reason = next((n for n in ref["notes"] if f"({g['space_group']}):" in n), "")
                w.writerow([*head, *[""] * 11, reason])
            for c in cands:
                lat = c["lattice"]
                w.writerow([
                    *head, c["source"], c["id"], c["formula"], c["status"],
                    "" if c["rw"] is None else f"{c['rw']:.5f}",
                    *[lat.get(k, "") for k in ("a", "b", "c", "alpha", "beta", "gamma")],
                    c["reason"],
                ])  # fmt: skip
    return buf.getvalue()
