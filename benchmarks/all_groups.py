"""Accuracy over every space group and over the paper's 45: 45-group and all-group models.

A model of the paper's 45 groups is always wrong on a structure of another group; a model of
every group (``label_set: "all"``) can be right there but spreads its probability wider.  This
script scores both kinds on the same rows: the clean test rows of a dataset of all 230 groups
(``work/mp_all.h5`` of the recipe) that none of the compared models was calibrated on, on the
mpts52 rows alone (ids of ``--mpts52 work/mpts52_all.h5``, like the hidden test set) and on
all test rows, each with the composition withheld and with the row's own formula:

* ``all groups``: every row; a row whose group is not among the model's classes counts wrong;
* ``45 groups, ranked among all``: the rows of the 45 groups, the model's full ranking;
* ``45 groups, ranked among the 45``: the same rows, the model's groups outside the 45 removed
  and the rest renormalised (``pdfsg predict --label-set paper45``; the paper's protocol);
* top-1 / top-6 per crystal system (all groups), and the calibration (ECE, answers at >= 90 %)
  of the full ranking.

Usage::

    python benchmarks/all_groups.py work/mp_all.h5 --mpts52 work/mpts52_all.h5 \\
        --model pdfsg-v7 --model pdfsg-v7-net --model pdfsg-v6 --model pdfsg-v3

Writes ``benchmarks/results/all_groups.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np


def _restricted(proba: np.ndarray, labels: np.ndarray, keep: set[int]):
    m = np.array([int(v) in keep for v in labels])
    p = proba[:, m]
    return p / np.clip(p.sum(axis=1, keepdims=True), 1e-300, None), labels[m]


def _calibration(proba: np.ndarray, labels: np.ndarray, truth: np.ndarray) -> dict:
    """ECE of the top-1 answer (a row of a group outside ``labels`` is a wrong answer) and
    how often answers given at >= 90 % are wrong."""
    from pdfsg.calibration import reliability

    index = {int(v): i for i, v in enumerate(labels)}
    y = np.array([index.get(int(t), -1) for t in truth])
    rel = reliability(proba, y)
    conf = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y
    sure = conf >= 0.9
    # the ECE a perfectly calibrated model with these confidences would show on this many
    # rows (right answers drawn with probability = confidence): the noise floor of the ECE
    rng = np.random.default_rng(0)
    floor = [
        reliability(
            np.stack([conf, 1 - conf], axis=1), (rng.random(conf.size) >= conf).astype(int)
        ).ece
        for _ in range(200)
    ]
    return {
        "mean_top1_probability": round(float(conf.mean()), 4),
        "top1_accuracy": round(float(correct.mean()), 4),
        "ece": round(rel.ece, 4),
        "ece_if_perfectly_calibrated": round(float(np.mean(floor)), 4),
        "answers_at_90pct": int(sure.sum()),
        "wrong_at_90pct": round(float((~correct[sure]).mean()), 4) if sure.any() else None,
    }


def score(model, ds, rows: np.ndarray, label: str) -> dict:
    from pdfsg.composition import formula_compositions
    from pdfsg.composition_vector import encode_many
    from pdfsg.preprocess import normalize_minmax
    from pdfsg.spacegroups import get, label_set

    paper45 = set(label_set("paper45"))
    X = np.asarray(normalize_minmax(ds.G[rows][:, : model.params.npoints]), dtype=np.float32)
    truth = np.asarray(ds.y[rows], dtype=np.int64)
    labels = np.asarray(model.labels, dtype=np.int64)
    in45 = np.array([int(t) in paper45 for t in truth])
    systems = np.array([get(int(t)).crystal_system for t in truth])
    inputs = {"g_only": None}
    if getattr(model, "uses_composition", False):
        inputs["with_composition"] = encode_many(formula_compositions(ds.formula[rows]))
    out: dict = {
        "rows": label,
        "n": int(rows.size),
        "n_in_45": int(in45.sum()),
        "n_outside_model_groups": int(sum(int(t) not in set(labels.tolist()) for t in truth)),
    }
    from _runs import top_k_hits  # benchmarks/ is on sys.path (main)

    for name, comp in inputs.items():
        p = model.predict_proba(X, comp=comp) if comp is not None else model.predict_proba(X)
        p45, l45 = _restricted(p[in45], labels, paper45)
        out[name] = {
            "all_groups": top_k_hits(p, labels, truth),
            "45_groups_ranked_among_all": top_k_hits(p[in45], labels, truth[in45]),
            "45_groups_ranked_among_45": top_k_hits(p45, l45, truth[in45]),
            "by_crystal_system": {
                s: {
                    "n": int((systems == s).sum()),
                    **top_k_hits(p[systems == s], labels, truth[systems == s]),
                }
                for s in sorted(set(systems.tolist()))
            },
            "calibration": _calibration(p, labels, truth),
        }
    return out


def main() -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from _runs import uncalibrated_test_rows

    from pdfsg.artifact import load_model
    from pdfsg.datasets import read_dataset
    from pdfsg.predict import resolve_model_paths

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dataset", type=Path, help="a dataset of all 230 groups (mp_all.h5)")
    ap.add_argument("--mpts52", type=Path, help="the mpts52 dataset: its ids mark those rows")
    ap.add_argument("--model", action="append", help="family / model names or folders")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()

    ds = read_dataset(args.dataset)
    mp52_ids = set(map(str, read_dataset(args.mpts52).ids)) if args.mpts52 else set()
    names = args.model or ["default"]
    models = {name: [load_model(p) for p in resolve_model_paths(name)] for name in names}
    test, n_calibration_rows = uncalibrated_test_rows(ds, models.values())
    mp52 = np.array([i for i in test if str(ds.ids[i]) in mp52_ids], dtype=np.int64)
    result: dict = {
        "dataset": str(args.dataset),
        "rows_left_out_as_calibration_rows": n_calibration_rows,
        "models": [],
    }
    for name in names:
        for model in models[name]:
            t = time.perf_counter()
            entry = {
                "family": name,
                "model": Path(model.manifest["_folder"]).name,
                "n_classes": len(model.labels),
                "scores": [],
            }
            if mp52.size:
                entry["scores"].append(score(model, ds, mp52, "mpts52 test rows"))
            entry["scores"].append(score(model, ds, test, "all test rows"))
            entry["seconds"] = round(time.perf_counter() - t, 1)
            result["models"].append(entry)
            print(json.dumps({k: entry[k] for k in ("family", "model", "seconds")}), flush=True)
    result["created"] = time.strftime("%Y-%m-%d %H:%M:%S")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "all_groups.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "all_groups.md").write_text(render(result))
    print(render(result))


def _pair(s: dict) -> str:
    return f"{100 * s['1']:.1f} / {100 * s['6']:.1f}"


def render(result: dict) -> str:
    lines = [
        "# Every space group and the paper's 45 (`benchmarks/all_groups.py`)",
        "",
        f"Dataset `{result['dataset']}`, clean test rows; "
        f"{result['rows_left_out_as_calibration_rows']} rows left out because a compared "
        "model was calibrated on them.  top-1 / top-6 [%].",
        "",
        "| model | classes | rows | input | all groups | 45 groups, among all | "
        "45 groups, among the 45 | ECE (a calibrated model's) | wrong at >= 90 % |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m in result["models"]:
        for s in m["scores"]:
            for name in ("g_only", "with_composition"):
                if name not in s:
                    continue
                r = s[name]
                cal = r["calibration"]
                wrong = (
                    "-" if cal["wrong_at_90pct"] is None else f"{100 * cal['wrong_at_90pct']:.1f}"
                )
                lines.append(
                    f"| {m['model']} | {m['n_classes']} | {s['rows']} (n = {s['n']}, "
                    f"{s['n_in_45']} in the 45) | {name.replace('_', ' ')} | "
                    f"{_pair(r['all_groups'])} | {_pair(r['45_groups_ranked_among_all'])} | "
                    f"{_pair(r['45_groups_ranked_among_45'])} | {cal['ece']:.3f} "
                    f"({cal['ece_if_perfectly_calibrated']:.3f}) | {wrong} "
                    f"(n = {cal['answers_at_90pct']}) |"
                )
    lines += ["", "Per crystal system, mpts52 test rows, with composition (top-1 / top-6 [%]):", ""]
    systems = None
    for m in result["models"]:
        s = m["scores"][0]
        r = s.get("with_composition") or s["g_only"]
        systems = systems or list(r["by_crystal_system"])
        if m is result["models"][0]:
            lines += [
                "| model | "
                + " | ".join(f"{k} (n = {r['by_crystal_system'][k]['n']})" for k in systems)
                + " |",
                "|---|" + "---|" * len(systems),
            ]
        lines.append(
            f"| {m['model']} | "
            + " | ".join(
                _pair(r["by_crystal_system"][k]) if k in r["by_crystal_system"] else "-"
                for k in systems
            )
            + " |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
