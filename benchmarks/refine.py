"""``predict --refine`` measured: the model alone, the fit alone and the combination.

Two sets:

* the measured files of ``<data>/experimental`` (composition from ``index.csv``); the
  single-phase numbers leave out the Au144 cluster and the Si + Ni mixture (they are run
  and listed, to show what the output says for them);
* simulated measurements of ``mpts52_dev`` rows whose own structure is not in the library
  but whose structure type (anonymised formula + group) is: the honest case of a new
  compound of a known type.  Each curve is one draw of the training augmentation
  (:func:`pdfsg.augment.augmented_pdfs`: Qmax, Qdamp, Qbroad, Uiso, strain, particle
  envelope, baseline, noise, X-ray or neutron), r 1.5–30 Å, written as a ``.gr`` file
  with Qmax and radiation in its header (Qdamp is refined) and answered the way a user's
  file is.

For each file: the rank of the known group by the model alone (top 6 refined), by the fit
alone (best Rw; groups without a refined candidate after, in model order) and by the
combination (:func:`pdfsg.refine.rank.combine`); the time per file (one worker process,
on a machine shared with other jobs).  Also: top-1 of the combination for a sweep of tau.

Usage::

    python benchmarks/refine.py [--library work/lib.json.gz] [--n-sim 30] [--data ../shared/data]

Writes ``benchmarks/results/refine.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

#: files of the measured set without one space group
NOT_SINGLE_PHASE = ("Au144", "Si90Ni10")
TAUS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5, math.inf)
FORMS = ("difference", "ratio")


def _rank(order: list[int], known: int | None) -> int | None:
    return order.index(known) + 1 if known in order else None


def _ranks(result, prediction, known: int | None, top: int) -> dict:
    model = [p.space_group for p in prediction.predictions]
    return {
        "model": _rank(model, known),
        "fit": _rank(result.settings["fit_order"], known),
        "combined": _rank([g.space_group for g in result.groups], known),
        "top": top,
    }


def _row(path: str, known: int | None, prediction, result, seconds: float, top: int) -> dict:
    from pdfsg.refine.rank import combine

    groups = [(p.space_group, p.symbol, p.probability) for p in prediction.predictions[:top]]
    sweep = {
        f"{form} {t}": _rank([g.space_group for g in combine(groups, result.fits, t, form)], known)
        for form in FORMS
        for t in TAUS
    }
    best = result.best
    return {
        "file": Path(path).name,
        "known": known,
        "ranks": _ranks(result, prediction, known, top),
        "tau_sweep": sweep,
        "best": None if best is None else f"{best.symbol} {best.source}:{best.id} Rw {best.rw:.3f}",
        "known_best_rw": min(
            (f.rw for f in result.fits if f.ok and f.space_group == known), default=None
        ),
        "groups": [[g.space_group, round(g.probability, 5), g.best_rw] for g in result.groups],
        "candidates": len(result.fits),
        "failed": sum(not f.ok for f in result.fits),
        "seconds": round(seconds, 2),
        "notes": result.notes,
    }


def _refine_file(predictor, path, composition, known, library, settings, top, workers):
    from pdfsg.errors import PdfsgError
    from pdfsg.io import read_pdf_file
    from pdfsg.refine import refine_prediction

    t = time.perf_counter()
    prediction = predictor.predict_file(path, composition=composition, top=0)
    data = read_pdf_file(path)
    try:
        result = refine_prediction(
            prediction, data.r, data.g, top=top, library=library, settings=settings,
            workers=workers,
        )  # fmt: skip
    except PdfsgError as exc:  # the file's one-line reason; the model's rank still counts
        model = [p.space_group for p in prediction.predictions]
        return {
            "file": Path(path).name, "known": known, "error": str(exc), "best": None,
            "ranks": {"model": _rank(model[:top], known), "fit": None,
                      "combined": _rank(model[:top], known), "top": top},
            "tau_sweep": {f"{f} {t}": _rank(model[:top], known) for f in FORMS for t in TAUS},
            "known_best_rw": None, "seconds": round(time.perf_counter() - t, 2),
        }  # fmt: skip
    return _row(str(path), known, prediction, result, time.perf_counter() - t, top)


def _summary(rows: list[dict]) -> dict:
    n = len(rows)
    out: dict = {"n": n}
    if not n:
        return out
    for kind in ("model", "fit", "combined"):
        r = [row["ranks"][kind] for row in rows]
        out[kind] = {
            "top1": sum(x == 1 for x in r),
            "top6": sum(x is not None and x <= 6 for x in r),
        }
    out["tau_sweep_top1"] = {
        key: sum(row["tau_sweep"][key] == 1 for row in rows) for key in rows[0]["tau_sweep"]
    }
    secs = [row["seconds"] for row in rows]
    out["seconds"] = {"median": float(np.median(secs)), "max": float(np.max(secs))}
    return out


def _simulated_rows(n, library, seed, data_dir: Path):
    """(structure, id, group) of ``n`` mpts52 rows: type in the library, own structure and
    formula not; and how many rows were looked at to find them."""
    from pymatgen.core import Composition

    from pdfsg.refine.library import standard_cell
    from pdfsg.sources import iter_records
    from pdfsg.structures import record_structure

    records = list(iter_records(data_dir / "structures" / "mpts52_dev.csv.gz"))
    order = np.random.default_rng(seed).permutation(len(records))
    chosen, looked = [], 0
    for k in order[: len(order) if n > 0 else 0]:
        rec = records[int(k)]
        looked += 1
        try:
            s = record_structure(rec)
            conv, group = standard_cell(s)
        except Exception:
            continue
        if len(conv) > 40:
            continue
        comp = Composition(conv.composition.reduced_formula)
        anon, formula = comp.anonymized_formula, comp.reduced_formula
        same = [e for e in library.same_type(anon, group) if e.formula != formula]
        if library.exact(formula, group) or not same:
            continue
        chosen.append((s, rec.id, group, formula))
        if len(chosen) >= n:
            break
    return chosen, looked


def _simulate(structure, seed: int):
    from pdfsg.augment import AugmentConfig, ParamsPool, augmented_pdfs
    from pdfsg.params import PdfParams
    from pdfsg.pdf import cell_arrays

    base = PdfParams(rmin=1.5, rmax=30.0, rstep=0.05, qmin=0.0, qmax=30.0)
    cfg = AugmentConfig(copies=1, pool_size=3, qmax=(18.0, 30.0), p_particle=0.2)
    rng = np.random.default_rng([seed, 11])
    pool = ParamsPool(base, cfg, seed=0)  # a few operators shared by all rows
    try:
        neutron = cell_arrays(structure, "neutron")
    except Exception:
        neutron = None
    g, info = next(augmented_pdfs(cell_arrays(structure, "xray"), neutron, base, cfg, rng, pool))
    return base.r_grid(), g, info


def main() -> None:
    from _runs import measured_files

    from pdfsg.predict import Predictor
    from pdfsg.refine import FitSettings, read_library
    from pdfsg.shared_data import shared_data_dir

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=shared_data_dir())
    ap.add_argument("--library", default=None, help="library file (default: the shipped one)")
    ap.add_argument("--model", default="default")
    ap.add_argument("--n-sim", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--top", type=int, default=6)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--max-seconds", type=float, default=20.0)
    ap.add_argument("--skip-measured", action="store_true")
    ap.add_argument(
        "--rescore",
        type=Path,
        default=None,
        help="recompute the combined ranks of a refine.json with the current rank.py "
        "(TAU, FORM) from its stored Rw and probabilities, without refitting",
    )
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()
    if args.rescore is not None:
        report = json.loads(args.rescore.read_text())
        _rescore(report)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "refine.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
        (args.out / "refine.md").write_text(_markdown(report))
        return

    from pdfsg.models import limit_threads

    limit_threads(1)
    library = read_library(args.library)
    predictor = Predictor.load(args.model)
    settings = FitSettings(max_seconds=args.max_seconds)
    report: dict = {
        "library": {"path": str(args.library or "shipped"), "entries": len(library)},
        "model": ", ".join(
            str((m.manifest or {}).get("name", args.model)) for m in predictor.models
        ),
        "top": args.top,
        "workers": args.workers,
        "max_seconds_per_candidate": args.max_seconds,
    }

    measured = []
    if not args.skip_measured:
        for path, item, known in measured_files(args.data):
            row = _refine_file(predictor, path, item["composition"], known, library, settings,
                               args.top, args.workers)  # fmt: skip
            row["single_phase"] = not any(s in path.name for s in NOT_SINGLE_PHASE)
            measured.append(row)
            print(json.dumps({k: row[k] for k in ("file", "known", "ranks", "best", "seconds")}))
        report["measured"] = {
            "single_phase": _summary([r for r in measured if r["single_phase"]]),
            "rows": measured,
        }

    chosen, looked = _simulated_rows(args.n_sim, library, args.seed, args.data)
    sim = []
    with tempfile.TemporaryDirectory() as tmp:
        from pdfsg.io import write_gr

        for k, (s, mid, group, formula) in enumerate(chosen):
            r, g, info = _simulate(s, args.seed * 1000 + k)
            path = Path(tmp) / f"{mid}.gr"
            write_gr(path, r, g, title=mid, settings={"qmax": info["qmax"],
                     "mode": "neutron" if info["radiation"] == "neutron" else "xray"})  # fmt: skip
            row = _refine_file(predictor, path, formula, group, library, settings, args.top,
                               args.workers)  # fmt: skip
            row["formula"] = formula
            row["augment"] = {k: (round(v, 4) if isinstance(v, float) else v)
                              for k, v in info.items()}  # fmt: skip
            sim.append(row)
            print(json.dumps({k: row[k] for k in ("file", "known", "ranks", "best", "seconds")}))
    report["simulated"] = {
        "rows_looked_at": looked,
        "summary": _summary(sim),
        "rows": sim,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "refine.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    (args.out / "refine.md").write_text(_markdown(report))


def _rescore(report: dict) -> None:
    """Combined ranks and tau sweeps of every row again, from its stored groups."""
    from pdfsg.refine.fit import CandidateFit
    from pdfsg.refine.rank import combine

    sets = []
    if "measured" in report:
        sets.append((report["measured"], lambda rs: [r for r in rs if r["single_phase"]]))
    sets.append((report["simulated"], lambda rs: rs))
    for part, keep in sets:
        for row in part["rows"]:
            if "groups" not in row:
                continue
            groups = [(g, "", p) for g, p, _ in sorted(row["groups"], key=lambda t: -t[1])]
            fits = [CandidateFit(g, "", "", "", "", rw=rw) for g, _, rw in row["groups"]
                    if rw is not None]  # fmt: skip
            known = row["known"]
            row["ranks"]["combined"] = _rank([g.space_group for g in combine(groups, fits)], known)
            row["tau_sweep"] = {
                f"{form} {t}": _rank([g.space_group for g in combine(groups, fits, t, form)], known)
                for form in FORMS
                for t in TAUS
            }
        summary = _summary(keep(part["rows"]))
        if part is report["simulated"]:
            part["summary"] = summary
        else:
            part["single_phase"] = summary


def _markdown(report: dict) -> str:
    from pdfsg.refine.rank import FORM, TAU

    lines = [
        "# predict --refine: model alone, fit alone, combined",
        "",
        f"Library: {report['library']['path']} ({report['library']['entries']} structures); "
        f"model {report['model']}; top {report['top']} groups refined; "
        f"{report['workers']} worker; at most {report['max_seconds_per_candidate']:g} s per "
        f"candidate; penalty {FORM}, tau = {TAU:g}.  `python benchmarks/refine.py`",
        "",
        "| set | files | model top-1 | fit top-1 | combined top-1 | model top-6 | "
        "combined top-6 | s/file median (max) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    sets = []
    if "measured" in report:
        sets.append(("measured, single phase", report["measured"]["single_phase"]))
    sets.append(("simulated mpts52 (held out)", report["simulated"]["summary"]))
    for name, s in sets:
        if not s.get("n"):
            continue
        lines.append(
            f"| {name} | {s['n']} | {s['model']['top1']} | {s['fit']['top1']} | "
            f"{s['combined']['top1']} | {s['model']['top6']} | {s['combined']['top6']} | "
            f"{s['seconds']['median']:.1f} ({s['seconds']['max']:.1f}) |"
        )
    lines += ["", "Top-1 of the combination by penalty form and tau (inf = the model alone):", ""]
    lines.append("| set | form | " + " | ".join(str(t) for t in TAUS) + " |")
    lines.append("| --- | --- |" + " --- |" * len(TAUS))
    for name, s in sets:
        if s.get("n"):
            sweep = s["tau_sweep_top1"]
            for form in FORMS:
                cells = " | ".join(str(sweep[f"{form} {t}"]) for t in TAUS)
                lines.append(f"| {name} | {form} | {cells} |")
    if "measured" in report:
        lines += ["", "## Measured files", "",
                  "| file | known | model | fit | combined | best fit | Rw of known | s |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
        for r in report["measured"]["rows"]:
            rk = r["ranks"]
            rw = "" if r["known_best_rw"] is None else f"{r['known_best_rw']:.3f}"
            lines.append(
                f"| {r['file']} | {r['known'] or '-'} | {rk['model'] or '>6'} | "
                f"{rk['fit'] or '>6'} | {rk['combined'] or '>6'} | {r['best'] or '-'} | {rw} | "
                f"{r['seconds']:.1f} |"
            )
    sim = report["simulated"]
    lines += ["", f"## Simulated ({sim['summary'].get('n', 0)} of {sim['rows_looked_at']} "
              "rows looked at qualified: type in the library, own formula not)", "",
              "| row | formula | known | model | fit | combined | best fit | s |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for r in sim["rows"]:
        rk = r["ranks"]
        lines.append(
            f"| {r['file']} | {r['formula']} | {r['known']} | {rk['model'] or '>6'} | "
            f"{rk['fit'] or '>6'} | {rk['combined'] or '>6'} | {r['best'] or '-'} | "
            f"{r['seconds']:.1f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
