"""Which calibration map, fitted on a few hundred mpts52-like rows, calibrates best on rows
it was not fitted on: temperature scaling against temperature + a top-label map, bias and
vector scaling.

The uncalibrated probabilities of one model (``calibrated=False``; with a composition-aware
model the composition memory is still combined) are computed once for every clean test row
of a dataset of all groups (``work/mp_all.h5``), with the composition withheld (``g_only``)
and with the row's own formula (``composition``), and cached (``--cache``).  Then, per input
mode (calibration is fitted per mode), two protocols:

* ``cross-fitted``: the mpts52 rows of the test split (ids of ``--mpts52``; the hash-'cal'
  third and the rest, ~1300 rows) in 5 folds by id hash, repeated over ``--repeats`` fold
  seeds.  Each method is fitted on the mpts52 rows of 4 folds and applied to every test row
  of the 5th, so each row's calibrated probabilities come from a map not fitted on it.
  Scores on the mpts52 rows and on every test row (mpts52 or not).
* ``shipped split``: fitted on the mpts52 rows of the hash-'cal' third (what
  ``tools/shipped_model.py ensemble --calibrate-on`` uses) and scored on the other test rows
  (mpts52 and all), the rows ``benchmarks/all_groups.py`` reports.

A row whose group the model lacks counts as a wrong top-1 answer and an uncovered set;
the NLL is over the rows of the model's groups.  Each ECE comes with the ECE a perfectly
calibrated model with the same confidences would show on as many rows (its noise floor),
and the difference to temperature scaling with a paired bootstrap 90 % interval.

Usage::

    python benchmarks/calibration_methods.py work/mp_all.h5 --mpts52 work/mpts52_all.h5 \\
        --model pdfsg-v7-r30 [--plot]

Writes ``benchmarks/results/calibration_methods.{json,md}`` (``--plot``: also
``calibration_methods.png``, reliability diagrams).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

MODES = ("composition", "g_only")
ALPHA = 0.1
N_BOOT = 300

Apply = Callable[[np.ndarray], np.ndarray]


# ---------------------------------------------------------------------------- the cache


def build_cache(dataset: Path, mpts52: Path, model_name: str, path: Path) -> dict:
    """Uncalibrated probabilities of every clean test row in both input modes, saved."""
    from pdfsg.artifact import load_model
    from pdfsg.calibration import in_share
    from pdfsg.composition_vector import encode_formulas
    from pdfsg.datasets import read_dataset
    from pdfsg.predict import resolve_model_paths
    from pdfsg.preprocess import normalize_minmax

    ds = read_dataset(dataset)
    mp_ids = set(map(str, read_dataset(mpts52).ids))
    model = load_model(resolve_model_paths(model_name)[0])
    test = np.flatnonzero(ds.split == 1)
    ids = np.array([str(i) for i in ds.ids[test]])
    X = np.asarray(normalize_minmax(ds.G[test][:, : model.params.npoints]), dtype=np.float32)
    comp = encode_formulas(ds.formula[test])
    raw = {}
    for mode in MODES:
        parts, t0 = [], time.perf_counter()
        for s in range(0, test.size, 500):
            c = comp[s : s + 500] if mode == "composition" else None
            parts.append(model.predict_proba(X[s : s + 500], comp=c, calibrated=False))
            done = min(s + 500, test.size)
            print(
                f"  {mode}: {done}/{test.size} rows, {time.perf_counter() - t0:.0f} s", flush=True
            )
        raw[mode] = np.concatenate(parts)
    out = {
        "ids": ids,
        "truth": np.asarray(ds.y[test], dtype=np.int64),
        "labels": np.asarray(model.labels, dtype=np.int64),
        "mpts52": np.array([i in mp_ids for i in ids]),
        "cal": np.array([in_share(i, 1 / 3, "cal") for i in ids]),
        **{f"raw_{m}": raw[m] for m in MODES},
    }
    np.savez_compressed(path, **out)
    return out


# ---------------------------------------------------------------------------- the methods


def _temperature(p: np.ndarray, y: np.ndarray) -> Apply:
    from pdfsg.calibration import apply_temperature, fit_temperature

    t = fit_temperature(p[y >= 0], y[y >= 0])
    return lambda q: apply_temperature(q, t)


def _temperature_top_label(method: str, **kw) -> Callable[[np.ndarray, np.ndarray], Apply]:
    def fit(p: np.ndarray, y: np.ndarray) -> Apply:
        from pdfsg.calibration import apply_top_label, fit_top_label

        temp = _temperature(p, y)
        params = fit_top_label(temp(p), y, method=method, **kw)
        return lambda q: apply_top_label(temp(q), params)

    return fit


def _affine_logits(vector: bool, lam: float) -> Callable[[np.ndarray, np.ndarray], Apply]:
    """softmax(w * log p + b): ``vector`` a weight per class (else one weight), a bias per
    class; NLL + lam (|w - 1|^2 + |b|^2) by L-BFGS, started from temperature scaling."""

    def fit(p: np.ndarray, y: np.ndarray) -> Apply:
        from scipy.optimize import minimize

        from pdfsg.calibration import fit_temperature

        keep = y >= 0
        z, t = np.log(np.clip(p[keep], 1e-12, None)), y[keep]
        n, k = z.shape
        onehot = np.zeros_like(z)
        onehot[np.arange(n), t] = 1.0
        nw = k if vector else 1

        def split(v):
            return v[:nw], v[nw:]

        def loss(v):
            w, b = split(v)
            s = z * w + b
            s -= s.max(axis=1, keepdims=True)
            lse = np.log(np.exp(s).sum(axis=1, keepdims=True))
            q = np.exp(s - lse)
            nll = -np.mean((s - lse)[np.arange(n), t])
            g = (q - onehot) / n
            gw = (g * z).sum(axis=0) if vector else np.array([(g * z).sum()])
            gb = g.sum(axis=0)
            reg = lam * (np.sum((w - 1) ** 2) + np.sum(b**2))
            return nll + reg, np.concatenate([gw + 2 * lam * (w - 1), gb + 2 * lam * b])

        w0 = 1.0 / fit_temperature(p[keep], t)
        v0 = np.concatenate([np.full(nw, w0), np.zeros(k)])
        res = minimize(loss, v0, jac=True, method="L-BFGS-B", options={"maxiter": 500})
        w, b = split(res.x)

        def apply(q):
            s = np.log(np.clip(q, 1e-12, None)) * w + b
            s -= s.max(axis=1, keepdims=True)
            e = np.exp(s)
            return e / e.sum(axis=1, keepdims=True)

        return apply

    return fit


METHODS: dict[str, Callable[[np.ndarray, np.ndarray], Apply]] = {
    "none": lambda p, y: lambda q: np.asarray(q, dtype=np.float64),
    "temperature": _temperature,
    "temperature + top-label platt": _temperature_top_label("platt", prior_rows=10.0),
    "temperature + top-label isotonic": _temperature_top_label("isotonic", prior_rows=10.0),
    "temperature + top-label isotonic (no shrinkage)": _temperature_top_label(
        "isotonic", prior_rows=0.0
    ),
    "temperature + top-label isotonic (prior 30)": _temperature_top_label(
        "isotonic", prior_rows=30.0
    ),
    "temperature + top-label histogram 10": _temperature_top_label(
        "histogram", n_bins=10, prior_rows=10.0
    ),
    "temperature + top-label histogram 15": _temperature_top_label(
        "histogram", n_bins=15, prior_rows=10.0
    ),
    "bias scaling (lam 1e-3)": _affine_logits(vector=False, lam=1e-3),
    "vector scaling (lam 1e-3)": _affine_logits(vector=True, lam=1e-3),
    "vector scaling (lam 1e-2)": _affine_logits(vector=True, lam=1e-2),
}


# ---------------------------------------------------------------------------- the scores


def _fold(ids: np.ndarray, k: int, seed: int) -> np.ndarray:
    return np.array(
        [
            int.from_bytes(hashlib.sha256(f"fold{seed}:{i}".encode()).digest()[:8], "little") % k
            for i in ids
        ]
    )


def _floor(conf: np.ndarray, reps: int = 200) -> tuple[float, float]:
    """Mean and 95th percentile of the ECE of a perfectly calibrated model with these
    confidences on as many rows (right answers drawn with probability = confidence)."""
    from pdfsg.calibration import reliability

    rng = np.random.default_rng(0)
    two = np.stack([conf, 1 - conf], axis=1)
    e = [reliability(two, (rng.random(conf.size) >= conf).astype(int)).ece for _ in range(reps)]
    return float(np.mean(e)), float(np.percentile(e, 95))


def _scores(p: np.ndarray, y: np.ndarray, threshold: np.ndarray) -> dict:
    """ECE, NLL, top-1, answers at >= 90 %, conformal coverage / size of rows (p, y); a
    per-row ``threshold`` (each row's from the map that calibrated it)."""
    from pdfsg.calibration import negative_log_likelihood, reliability

    conf = p.max(axis=1)
    right = p.argmax(axis=1) == y
    sure = conf >= 0.9
    inside = y >= 0
    floor = _floor(conf)
    sets = p >= threshold[:, None]
    covered = np.where(inside, sets[np.arange(y.size), np.maximum(y, 0)], False)
    return {
        "n": int(y.size),
        "top1": round(float(right.mean()), 4),
        "mean_confidence": round(float(conf.mean()), 4),
        "ece": round(reliability(p, y).ece, 4),
        "ece_floor": round(floor[0], 4),
        "ece_floor_95": round(floor[1], 4),
        "nll": round(negative_log_likelihood(p[inside], y[inside]), 4),
        "answers_at_90pct": int(sure.sum()),
        "wrong_at_90pct": round(float((~right[sure]).mean()), 4) if sure.any() else None,
        "coverage_90": round(float(covered.mean()), 4),
        "coverage_90_own_groups": round(float(covered[inside].mean()), 4),
        "set_size_90": round(float(np.maximum(sets.sum(axis=1), 1).mean()), 2),
    }


def _boot_diff(p: np.ndarray, ref: np.ndarray, y: np.ndarray, seed: int = 0) -> list[float]:
    """Paired-bootstrap 90 % interval of ECE(p) - ECE(ref) over rows."""
    from pdfsg.calibration import reliability

    rng = np.random.default_rng(seed)
    d = []
    for _ in range(N_BOOT):
        i = rng.integers(0, y.size, y.size)
        d.append(reliability(p[i], y[i]).ece - reliability(ref[i], y[i]).ece)
    lo, hi = np.percentile(d, [5, 95])
    return [round(float(lo), 4), round(float(hi), 4)]


def _fit_apply(name: str, p_fit, y_fit, p_new) -> tuple[np.ndarray, float]:
    """Calibrated ``p_new`` and the conformal threshold fitted after the map on the fit rows."""
    from pdfsg.calibration import conformal_threshold

    apply = METHODS[name](p_fit, y_fit)
    cal = apply(p_fit)
    keep = y_fit >= 0
    return apply(p_new), conformal_threshold(cal[keep], y_fit[keep], ALPHA)


def evaluate_mode(cache: dict, mode: str, repeats: int, n_splits: int, folds: int = 5) -> dict:
    labels = cache["labels"]
    index = {int(v): i for i, v in enumerate(labels)}
    y = np.array([index.get(int(t), -1) for t in cache["truth"]])
    raw = cache[f"raw_{mode}"]
    mp = cache["mpts52"]
    cal = cache["cal"]
    out: dict = {"cross_fitted": {}, "shipped_split": {}, "fit_size_splits": {}}
    splits: dict[str, list[dict]] = {}
    held: dict[str, np.ndarray] = {}  # first repeat's cross-fitted probabilities (bootstrap)
    for name in METHODS:
        t0 = time.perf_counter()
        per_repeat: dict[str, list[dict]] = {"mpts52": [], "all": [], "not_mpts52": []}
        for rep in range(repeats):
            fold = _fold(cache["ids"], folds, rep)
            p = np.empty_like(raw)
            thr = np.empty(y.size)
            for k in range(folds):
                fit = mp & (fold != k)
                new = fold == k
                p[new], thr[new] = _fit_apply(name, raw[fit], y[fit], raw[new])
            if rep == 0:
                held[name] = p
            for subset, m in (("mpts52", mp), ("all", np.ones_like(mp)), ("not_mpts52", ~mp)):
                per_repeat[subset].append(_scores(p[m], y[m], thr[m]))
        out["cross_fitted"][name] = {s: _mean(v) for s, v in per_repeat.items()}
        # fit sets of the size the shipped calibration has: split 0 the shipped one (the
        # 'cal'-third mpts52 rows), the others random draws of as many mpts52 rows
        splits[name] = []
        for rep in range(n_splits):
            fit = (
                mp & cal if rep == 0 else mp & _draw(cache["ids"], (mp & cal).sum() / mp.sum(), rep)
            )
            # scored on the rows not fitted on; the shipped split: the test rows outside the
            # 'cal' third (what benchmarks/all_groups.py scores)
            score = ~cal if rep == 0 else ~fit
            p, t = _fit_apply(name, raw[fit], y[fit], raw[score])
            thr = np.full(int(score.sum()), t)
            rest = mp[score]
            splits[name].append(
                {
                    "mpts52 rest": _scores(p[rest], y[score][rest], thr[rest]),
                    "all rest": _scores(p, y[score], thr),
                }
            )
        out["shipped_split"][name] = {
            "mpts52 test": splits[name][0]["mpts52 rest"],
            "all test": splits[name][0]["all rest"],
        }
        print(
            f"  {mode:12s} {name:48s} cross-fitted mpts52 ECE "
            f"{out['cross_fitted'][name]['mpts52']['ece']:.4f}  "
            f"({time.perf_counter() - t0:.1f} s)",
            flush=True,
        )
    for name in METHODS:
        out["fit_size_splits"][name] = {
            s: _spread([r[s] for r in splits[name]], [r[s] for r in splits["temperature"]])
            for s in ("mpts52 rest", "all rest")
        }
        for subset, m in (("mpts52", mp), ("all", np.ones_like(mp))):
            out["cross_fitted"][name][subset]["ece_minus_temperature_90ci"] = _boot_diff(
                held[name][m], held["temperature"][m], y[m]
            )
    out["fit_size_curve"] = _fit_size_curve(raw, y, mp)
    out["_held"] = {"y": y, "mpts52": mp, **held}
    return out


CURVE_METHODS = ("temperature", "temperature + top-label isotonic")
CURVE_SIZES = (240, 480, 720, 960)


def _fit_size_curve(raw: np.ndarray, y: np.ndarray, mp: np.ndarray, draws: int = 10) -> dict:
    """Mean scores of maps fitted on n random mpts52 rows, on the same held-out mpts52 rows
    for every n (per draw: the rows beyond the largest n)."""
    pool = np.flatnonzero(mp)
    out: dict = {name: {} for name in CURVE_METHODS}
    for n in CURVE_SIZES:
        rows: dict[str, list[dict]] = {name: [] for name in CURVE_METHODS}
        for d in range(draws):
            order = np.random.default_rng(1000 + d).permutation(pool)
            fit, rest = order[:n], order[max(CURVE_SIZES) :]
            for name in CURVE_METHODS:
                p, t = _fit_apply(name, raw[fit], y[fit], raw[rest])
                rows[name].append(_scores(p, y[rest], np.full(rest.size, t)))
        for name in CURVE_METHODS:
            out[name][str(n)] = _mean(rows[name])
        print(f"  fit-size curve: {n} rows done", flush=True)
    return out


def _draw(ids: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    return np.array(
        [
            int.from_bytes(hashlib.sha256(f"draw{seed}:{i}".encode()).digest()[:8], "little")
            / 2**64
            < fraction
            for i in ids
        ]
    )


def _spread(rows: list[dict], ref: list[dict]) -> dict:
    """Mean over the splits, and the 5 / 95 % of the per-split difference to ``ref``."""
    out = _mean(rows)
    for key in ("ece", "nll", "wrong_at_90pct", "coverage_90"):
        d = [
            r[key] - q[key]
            for r, q in zip(rows, ref, strict=True)
            if r[key] is not None and q[key] is not None
        ]
        lo, hi = np.percentile(d, [5, 95])
        out[f"{key}_minus_temperature_5_95"] = [round(float(lo), 4), round(float(hi), 4)]
        out[f"{key}_better_than_temperature_in"] = round(float(np.mean(np.array(d) < 0)), 3)
    return out


def _mean(rows: list[dict]) -> dict:
    """Mean over repeats (counts and None kept from the first)."""
    out = {}
    for key, v in rows[0].items():
        vals = [r[key] for r in rows]
        if all(isinstance(x, (int, float)) for x in vals):
            out[key] = round(float(np.mean(vals)), 4)
        else:
            out[key] = v
    return out


# ---------------------------------------------------------------------------- the outputs


def _ci(ci: list[float] | None, better: float | None) -> str:
    if ci is None:
        return "-"
    text = f"[{ci[0]:+.4f}, {ci[1]:+.4f}]"
    return text if better is None else f"{text}, lower in {100 * better:.0f} %"


def render(result: dict) -> str:
    lines = [
        "# Calibration maps on held-out rows (`benchmarks/calibration_methods.py`)",
        "",
        f"Model `{result['model']}`, dataset `{result['dataset']}` (clean test split, "
        f"{result['rows']} rows, {result['mpts52_rows']} of them mpts52; "
        f"{result['cal_mpts52_rows']} mpts52 rows in the hash-'cal' third).  "
        "ECE: 15 equal-width bins; in brackets the mean and the 95th percentile of the ECE "
        "of a perfectly calibrated model with the same confidences on as many rows (its noise "
        "floor); Δ ECE: minus temperature scaling's, paired "
        "bootstrap 90 % interval; wrong: of the answers at >= 90 % (their number); "
        "coverage / size: the 90 % conformal set, threshold fitted after the map on the fit "
        "rows.  A row of a group the model lacks is a wrong answer and an uncovered set.",
        "",
    ]
    head = (
        "| method | top-1 | ECE (floor, 95 %) | Δ ECE 90 % CI | NLL | wrong at >= 90 % | "
        "coverage | set size |"
    )
    for mode in MODES:
        r = result["modes"][mode]
        for proto, subsets, title in (
            (
                "cross_fitted",
                ("mpts52", "all", "not_mpts52"),
                f"5-fold cross-fitted over the mpts52 rows, mean of {result['repeats']} fold seeds",
            ),
            (
                "fit_size_splits",
                ("mpts52 rest", "all rest"),
                f"fitted on as many mpts52 rows as the shipped calibration, {result['splits']} "
                "draws (the first the shipped 'cal' third); mean, and in the Δ column the "
                "5-95 % of the per-draw difference to temperature scaling and how often it is "
                "lower",
            ),
            (
                "shipped_split",
                ("mpts52 test", "all test"),
                "fitted on the 'cal'-third mpts52 rows, scored on the rest of the test split",
            ),
        ):
            for subset in subsets:
                first = r[proto]["none"][subset]
                lines += [
                    f"## {mode.replace('_', ' ')}: {title}; scored on {subset} rows "
                    f"(n = {first['n']:.0f})",
                    "",
                    head,
                    "|---|---|---|---|---|---|---|---|",
                ]
                for name, s in r[proto].items():
                    s = s[subset]
                    ci = s.get("ece_minus_temperature_90ci") or s.get("ece_minus_temperature_5_95")
                    wrong = (
                        "-" if s["wrong_at_90pct"] is None else f"{100 * s['wrong_at_90pct']:.1f}"
                    )
                    better = s.get("ece_better_than_temperature_in")
                    delta = "-" if name == "temperature" else _ci(ci, better)
                    lines.append(
                        f"| {name} | {100 * s['top1']:.1f} | {s['ece']:.4f} ({s['ece_floor']:.4f}, "
                        f"{s['ece_floor_95']:.4f})"
                        f" | {delta} | "
                        f"{s['nll']:.4f} | {wrong} (n = {s['answers_at_90pct']:.0f}) | "
                        f"{100 * s['coverage_90']:.1f} | {s['set_size_90']:.2f} |"
                    )
                lines.append("")
        curve = r["fit_size_curve"]
        mp_rows = result["mpts52_rows"]
        lines += [
            f"## {mode.replace('_', ' ')}: ECE (floor) / NLL on {int(mp_rows) - max(CURVE_SIZES)}"
            " held-out mpts52 rows against the number of other mpts52 rows the map is fitted "
            "on (mean of 10 random draws)",
            "",
            "| fit rows | " + " | ".join(CURVE_METHODS) + " |",
            "|---|" + "---|" * len(CURVE_METHODS),
        ]
        for n in CURVE_SIZES:
            cells = [
                f"{c['ece']:.4f} ({c['ece_floor']:.4f}) / {c['nll']:.4f}"
                for c in (curve[name][str(n)] for name in CURVE_METHODS)
            ]
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(result: dict, held: dict, path: Path, names: tuple[str, ...]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pdfsg.calibration import reliability

    fig, axes = plt.subplots(1, len(MODES), figsize=(5 * len(MODES), 4.6))
    for ax, mode in zip(np.atleast_1d(axes), MODES, strict=True):
        h = held[mode]
        m = h["mpts52"]
        ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--")
        for name in names:
            rel = reliability(h[name][m], h["y"][m])
            mid = 0.5 * (rel.edges[1:] + rel.edges[:-1])
            ok = rel.count > 0
            ax.plot(
                mid[ok], rel.accuracy[ok], marker="o", ms=3, label=f"{name} (ECE {rel.ece:.3f})"
            )
        ax.set_title(
            f"{result['model']}, {mode.replace('_', ' ')}: mpts52 rows, cross-fitted (fold seed 0)"
        )
        ax.set_xlabel("top-1 probability (bin centre)")
        ax.set_ylabel("fraction right")
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dataset", type=Path, help="a dataset of all groups (mp_all.h5)")
    ap.add_argument("--mpts52", type=Path, required=True, help="its ids mark the mpts52 rows")
    ap.add_argument("--model", default="pdfsg-v7-r30", help="a shipped model name or folder")
    ap.add_argument("--cache", type=Path, help="the .npz of raw probabilities (made if absent)")
    ap.add_argument("--repeats", type=int, default=3, help="fold seeds of the cross-fitting")
    ap.add_argument(
        "--splits", type=int, default=20, help="fit sets of the shipped size (the first: its own)"
    )
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument("--plot", action="store_true", help="also write the reliability diagrams")
    args = ap.parse_args()

    cache_path = args.cache or Path("work") / f"calibration_cache_{Path(args.model).name}.npz"
    if cache_path.is_file():
        print(f"raw probabilities from {cache_path}", flush=True)
        cache = dict(np.load(cache_path))
    else:
        print(f"raw probabilities of {args.model} (cached in {cache_path})", flush=True)
        cache = build_cache(args.dataset, args.mpts52, args.model, cache_path)
    result: dict = {
        "model": str(args.model),
        "dataset": str(args.dataset),
        "rows": int(cache["ids"].size),
        "mpts52_rows": int(cache["mpts52"].sum()),
        "cal_mpts52_rows": int((cache["mpts52"] & cache["cal"]).sum()),
        "repeats": args.repeats,
        "splits": args.splits,
        "modes": {},
    }
    held = {}
    for mode in MODES:
        r = evaluate_mode(cache, mode, args.repeats, args.splits)
        held[mode] = r.pop("_held")
        result["modes"][mode] = r
    result["created"] = time.strftime("%Y-%m-%d %H:%M:%S")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "calibration_methods.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "calibration_methods.md").write_text(render(result))
    if args.plot:
        names = ("none", "temperature", "temperature + top-label isotonic")
        plot(result, held, args.out / "calibration_methods.png", names)
    print(render(result))


if __name__ == "__main__":
    main()
