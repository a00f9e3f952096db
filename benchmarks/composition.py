"""G(r) alone vs G(r) + composition: what knowing the sample's composition buys.

For each model (the shipped family's models by default, or ``--model`` names/folders):

* the clean test rows of a dataset (``work/mp_paper45.h5`` of the shipped-model recipe)
  that none of the models compared was calibrated on (an ensemble calibrated on a third of
  the test split: every model is scored on the other two thirds, the same rows),
  scored twice: composition withheld (the all-zero "unknown" vector) and the row's own
  reduced formula given, top-1 … top-6; on the mpts52 rows alone (ids of
  ``--mpts52 work/mpts52_paper45.h5``: the harder part, like the hidden test set) and on
  all test rows; by number of species and by crystal system (mpts52 rows);
* nominal compositions: the same mpts52 rows given a doped / solid-solution version of
  their formula (:func:`pdfsg.composition_vector.perturb` with a fixed seed), so the
  robustness to what users type is measured, not assumed;
* the measured files of ``<data>/experimental`` with and without the composition of
  ``index.csv`` (what the experimenter knew): rank of the known group.

Usage::

    python benchmarks/composition.py work/mp_paper45.h5 --mpts52 work/mpts52_paper45.h5 \\
        [--model default --model pdfsg-v2] [--data ../shared/data]

Writes ``benchmarks/results/composition.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np


def _topk(proba: np.ndarray, y: np.ndarray) -> dict[str, float]:
    from pdfsg.evaluate import top_k_accuracy

    return {str(k): round(float(v), 4) for k, v in top_k_accuracy(proba, y).items()}


def _inputs(ds, rows: np.ndarray, npoints: int) -> np.ndarray:
    from pdfsg.preprocess import normalize_minmax

    return np.asarray(normalize_minmax(ds.G[rows][:, :npoints]), dtype=np.float32)


def _calibration(model, proba: np.ndarray, y: np.ndarray, known: bool) -> dict:
    from pdfsg.evaluate import calibration_summary

    cal = model.calibration(known) if hasattr(model, "calibration") else None
    summary = calibration_summary(proba, y, cal.get("conformal_threshold") if cal else None)
    summary.pop("reliability")
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in summary.items()}


def _grouped(keys: list, proba: np.ndarray, y: np.ndarray) -> dict[str, dict]:
    out = {}
    for key in sorted(set(keys), key=str):
        m = np.array([k == key for k in keys])
        out[str(key)] = {"n": int(m.sum()), **_topk(proba[m], y[m])}
    return out


def score_dataset(model, ds, rows, label: str) -> dict:
    from pdfsg.composition import formula_compositions
    from pdfsg.composition_vector import encode_many, perturb
    from pdfsg.spacegroups import get

    X = _inputs(ds, rows, model.params.npoints)
    y = ds.class_index()[rows]
    comps = formula_compositions(ds.formula[rows])
    uses = getattr(model, "uses_composition", False)
    p_blind = model.predict_proba(X)
    out = {
        "rows": label,
        "n": int(rows.size),
        "g_only": _topk(p_blind, y),
        "calibration_g_only": _calibration(model, p_blind, y, False),
    }
    if not uses:
        return out
    p_comp = model.predict_proba(X, comp=encode_many(comps))
    out["calibration_with_composition"] = _calibration(model, p_comp, y, True)
    rng = np.random.default_rng(7)
    nominal = [perturb(c, rng, p_exact=0.0) for c in comps]
    p_nom = model.predict_proba(X, comp=encode_many(nominal))
    species = [min(len(c), 5) for c in comps]
    systems = [get(int(ds.y[i])).crystal_system for i in rows]
    out.update(
        {
            "with_composition": _topk(p_comp, y),
            "with_nominal_composition": _topk(p_nom, y),
            "by_species": {
                "g_only": _grouped(species, p_blind, y),
                "with_composition": _grouped(species, p_comp, y),
            },
            "by_crystal_system": {
                "g_only": _grouped(systems, p_blind, y),
                "with_composition": _grouped(systems, p_comp, y),
            },
        }
    )
    return out


def score_measured(predictor, data: Path) -> list[dict]:
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from _runs import measured_files, rank_of

    rows = []
    for path, item, sg in measured_files(data):
        if sg is None:
            continue
        comp = item.get("composition") or None
        blind = predictor.predict_file(path, top=0, composition=False)
        given = predictor.predict_file(path, top=0, composition=comp)
        rows.append(
            {
                "file": item["file"],
                "known": item["space_group_symbol"],
                "composition": comp,
                "rank_g_only": rank_of(blind, sg),
                "rank_with_composition": rank_of(given, sg),
                "top1_with_composition": f"{given.predictions[0].symbol} "
                f"({given.predictions[0].probability:.0%})",
            }
        )
    return rows


def main() -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from _runs import uncalibrated_test_rows

    from pdfsg.artifact import load_model
    from pdfsg.datasets import read_dataset
    from pdfsg.predict import Predictor, resolve_model_paths
    from pdfsg.shared_data import shared_data_dir

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dataset", type=Path, help="dataset with the test split (mp_paper45.h5)")
    ap.add_argument("--mpts52", type=Path, help="the mpts52 dataset: its ids mark those rows")
    ap.add_argument("--model", action="append", help="family / model names or folders")
    ap.add_argument("--data", type=Path, default=shared_data_dir())
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()

    ds = read_dataset(args.dataset)
    mp52_ids = set(map(str, read_dataset(args.mpts52).ids)) if args.mpts52 else set()
    result: dict = {"dataset": str(args.dataset), "models": [], "measured": {}}
    names = args.model or ["default"]
    models = {name: [load_model(p) for p in resolve_model_paths(name)] for name in names}
    test, n_calibration_rows = uncalibrated_test_rows(ds, models.values())
    mp52 = np.array([i for i in test if str(ds.ids[i]) in mp52_ids], dtype=np.int64)
    result["rows_left_out_as_calibration_rows"] = n_calibration_rows
    for name in names:
        for model in models[name]:
            path = Path(model.manifest["_folder"])
            t = time.perf_counter()
            entry = {
                "family": name,
                "model": path.name,
                "uses_composition": bool(getattr(model, "uses_composition", False)),
                "scores": [score_dataset(model, ds, test, "all test rows")],
            }
            if mp52.size:
                entry["scores"].append(score_dataset(model, ds, mp52, "mpts52 test rows"))
            entry["seconds"] = round(time.perf_counter() - t, 1)
            result["models"].append(entry)
            print(json.dumps({k: entry[k] for k in ("family", "model")}), flush=True)
        if args.data and (args.data / "experimental" / "index.csv").is_file():
            result["measured"][name] = score_measured(Predictor.load(name), args.data)
    result["created"] = time.strftime("%Y-%m-%d %H:%M:%S")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "composition.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "composition.md").write_text(render(result))
    print(render(result))


def _cells(s: dict) -> str:
    return " | ".join(f"{100 * s[str(k)]:.1f}" for k in range(1, 7))


def render(result: dict) -> str:
    lines = [
        "| model | rows | n | input | top-1 | top-2 | top-3 | top-4 | top-5 | top-6 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in result["models"]:
        for s in m["scores"]:
            modes = [("G(r) only", "g_only")]
            if m["uses_composition"]:
                modes += [
                    ("G(r) + composition", "with_composition"),
                    ("G(r) + nominal (doped) composition", "with_nominal_composition"),
                ]
            for label, key in modes:
                lines.append(
                    f"| {m['model']} | {s['rows']} | {s['n']} | {label} | {_cells(s[key])} |"
                )
    for m in result["models"]:
        for s in m["scores"]:
            if "by_species" not in s or s["rows"] != "mpts52 test rows":
                continue
            lines += ["", f"{m['model']}, {s['rows']}, top-1 / top-6 by group:", ""]
            lines += ["| by | value | n | G(r) only | G(r) + composition |"]
            lines += ["|---|---|---|---|---|"]
            for by, title in (("by_species", "species"), ("by_crystal_system", "system")):
                for key, a in s[by]["g_only"].items():
                    b = s[by]["with_composition"][key]
                    lines.append(
                        f"| {title} | {key}{'+' if title == 'species' and key == '5' else ''} "
                        f"| {a['n']} | {100 * a['1']:.1f} / {100 * a['6']:.1f} "
                        f"| {100 * b['1']:.1f} / {100 * b['6']:.1f} |"
                    )
    lines += [
        "",
        "Calibration (the rows above): expected calibration error, mean top-1 probability vs "
        "accuracy, answers given at >= 90 % and how many of them are wrong, coverage and mean "
        "size of the 90 % prediction sets",
        "",
        "| model | rows | input | ECE | mean p1 | accuracy | n at 90 % | wrong at 90 % "
        "| set coverage | set size |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in result["models"]:
        for s in m["scores"]:
            for key, label in (
                ("calibration_g_only", "G(r) only"),
                ("calibration_with_composition", "G(r) + composition"),
            ):
                if key not in s:
                    continue
                c = s[key]
                ps = c.get("prediction_set") or {}
                wrong = "-" if c["wrong_at_90"] is None else f"{100 * c['wrong_at_90']:.1f} %"
                lines.append(
                    f"| {m['model']} | {s['rows']} | {label} | {c['ece']:.3f} "
                    f"| {c['mean_top1_probability']:.3f} | {c['top1_accuracy']:.3f} "
                    f"| {c['n_answers_at_90']} | {wrong} "
                    f"| {100 * ps['coverage']:.1f} % | {ps['mean_size']:.1f} |"
                    if ps
                    else f"| {m['model']} | {s['rows']} | {label} | {c['ece']:.3f} "
                    f"| {c['mean_top1_probability']:.3f} | {c['top1_accuracy']:.3f} "
                    f"| {c['n_answers_at_90']} | {wrong} | - | - |"
                )
    for name, rows in result["measured"].items():
        lines += ["", f"Measured files, family `{name}`: rank of the known group", ""]
        lines += ["| file | known | composition | G(r) only | + composition | top-1 |"]
        lines += ["|---|---|---|---|---|---|"]
        for r in rows:
            lines.append(
                f"| {r['file']} | {r['known']} | {r['composition']} | {r['rank_g_only']} "
                f"| {r['rank_with_composition']} | {r['top1_with_composition']} |"
            )
        n = len(rows)
        for key, label in (("rank_g_only", "G(r) only"), ("rank_with_composition", "+ comp")):
            r1 = sum(r[key] == 1 for r in rows)
            r6 = sum(r[key] is not None and r[key] <= 6 for r in rows)
            lines.append(f"\n{label}: rank 1 for {r1} of {n}, top 6 for {r6} of {n}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
