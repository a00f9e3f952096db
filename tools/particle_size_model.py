"""Train the particle-diameter network of :mod:`pdfsg.particle_size`.

Simulated nanoparticles from the raw G(r) of the train rows (split 0) of the dataset files
(r 1.5–30 Å on the π/23 grid, Qmax 23, Qdamp 0.04): ``--copies`` draws per structure of a
diameter (log-uniform 1.3–40 nm, bulk with probability 0.25), Qmax 14–27 1/Å (lowered
below 23 only), Qdamp 0.02–0.06 1/Å, noise 0–3 % of max|G| and, for 30 % of them, data
ending at 15–30 Å (:func:`pdfsg.particle_size.simulate_particles`).  The network (sklearn
``MLPRegressor``, ReLU) maps :func:`pdfsg.particle_size.envelope_features` to 1/d [1/nm]
(0 for bulk); its arrays, the feature scaling and the 10/90 % quantiles of
true / estimated diameter per estimate bin (on 15 % of the structures held out of the fit)
go to ``src/pdfsg/data/particle_size.npz`` (no pickle).

Usage::

    python tools/particle_size_model.py work/mp_paper45.h5 work/mpts52_paper45.h5
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "src" / "pdfsg" / "data" / "particle_size.npz"
#: estimate bins [nm] for the stored interval quantiles (the last: bulk-like)
BIN_EDGES_NM = np.array([1.0, 1.75, 2.5, 4.0, 7.0, 12.0, 1e9])


def draw(n: int, rng: np.random.Generator, p_bulk: float = 0.25) -> dict[str, np.ndarray]:
    """Random measurement settings of ``n`` simulated curves."""
    d = np.exp(rng.uniform(math.log(1.3), math.log(40.0), n))
    d[rng.random(n) < p_bulk] = math.inf
    rmax = np.where(rng.random(n) < 0.3, rng.uniform(15.0, 30.0, n), 30.0)
    return {
        "diameter_nm": d,
        "qmax": rng.uniform(14.0, 27.0, n),
        "qdamp": rng.uniform(0.02, 0.06, n),
        "noise": rng.uniform(0.0, 0.03, n),
        "rmax": rmax,
    }


def features_of(r: np.ndarray, g: np.ndarray, rmax: np.ndarray) -> np.ndarray:
    """:func:`envelope_features` of each row of ``g`` cut at its ``rmax``."""
    from pdfsg.particle_size import envelope_features

    out = []
    for row, top in zip(g, rmax, strict=True):
        keep = r <= top
        out.append(envelope_features(r[keep], row[keep]))
    return np.asarray(out)


def simulated_set(paths: list[Path], split: int, copies: int, seed: int, step: int = 1):
    """Features, true diameters [nm] and settings of simulated particles of one split."""
    from pdfsg.datasets import read_dataset
    from pdfsg.particle_size import simulate_particles

    rng = np.random.default_rng(seed)
    feats, settings, groups = [], [], []
    for path in paths:
        ds = read_dataset(path)
        r = np.asarray(ds.r, dtype=np.float64)
        rows = np.flatnonzero(np.asarray(ds.split) == split)[::step]
        g = np.repeat(np.asarray(ds.G, dtype=np.float64)[rows], copies, axis=0)
        s = draw(g.shape[0], rng)
        sim = simulate_particles(r, g, s["diameter_nm"], s["qmax"], s["qdamp"], s["noise"], rng)
        feats.append(features_of(r, sim, s["rmax"]))
        settings.append(s)
        groups.append(np.repeat([f"{path.stem}:{i}" for i in rows], copies))
    s = {k: np.concatenate([x[k] for x in settings]) for k in settings[0]}
    return np.concatenate(feats), s, np.concatenate(groups)


def fit_network(x: np.ndarray, y: np.ndarray, seed: int, hidden: tuple[int, ...]):
    from sklearn.neural_network import MLPRegressor

    x_mean, x_scale = x.mean(0), x.std(0) + 1e-6
    y_mean, y_scale = float(y.mean()), float(y.std())
    net = MLPRegressor(
        hidden_layer_sizes=hidden, alpha=1e-4, learning_rate_init=2e-3, max_iter=200,
        early_stopping=True, n_iter_no_change=12, random_state=seed,
    )  # fmt: skip
    net.fit((x - x_mean) / x_scale, (y - y_mean) / y_scale)
    arrays = {"x_mean": x_mean, "x_scale": x_scale, "y_mean": y_mean, "y_scale": y_scale}
    arrays["n_layers"] = len(net.coefs_)
    for i, (w, b) in enumerate(zip(net.coefs_, net.intercepts_, strict=True)):
        arrays[f"W{i}"], arrays[f"b{i}"] = w, b
    return {k: np.asarray(v) for k, v in arrays.items()}


def interval_quantiles(
    d_true: np.ndarray, d_est: np.ndarray, rmax: np.ndarray
) -> dict[str, np.ndarray]:
    """10/90 % quantiles of true / estimated diameter (bulk: inf) per estimate bin, for
    data ending before :data:`pdfsg.particle_size.SHORT_RMAX` (row 0) and after (row 1)."""
    from pdfsg.particle_size import SHORT_RMAX

    centres = np.sqrt(BIN_EDGES_NM[:-1] * np.minimum(BIN_EDGES_NM[1:], 1000.0))
    q10 = np.full((2, centres.size), 0.5)
    q90 = np.full((2, centres.size), math.inf)
    for row, long in enumerate((False, True)):
        for k, (lo, hi) in enumerate(itertools.pairwise(BIN_EDGES_NM)):
            sel = (d_est >= lo) & (d_est < hi) & ((rmax >= SHORT_RMAX) == long)
            ratio = np.sort(d_true[sel] / d_est[sel])  # may hold inf (bulk): by rank
            if ratio.size > 20:
                q10[row, k] = ratio[int(0.1 * ratio.size)]
                q90[row, k] = ratio[int(0.9 * ratio.size)]
    return {"bin_centres_nm": centres, "ratio_q10": q10, "ratio_q90": q90}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("datasets", type=Path, nargs="+")
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--hidden", default="32,32")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    t0 = time.perf_counter()
    x, s, groups = simulated_set(args.datasets, 0, args.copies, args.seed)
    d = s["diameter_nm"]
    y = np.where(np.isfinite(d), 1.0 / d, 0.0)
    rng = np.random.default_rng(args.seed + 1)
    unique = np.unique(groups)
    held = np.isin(groups, rng.choice(unique, size=int(0.15 * unique.size), replace=False))
    hidden = tuple(int(h) for h in args.hidden.split(","))
    arrays = fit_network(x[~held], y[~held], args.seed, hidden)
    from pdfsg import particle_size

    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, **arrays, bin_centres_nm=[1.0], ratio_q10=[[1.0]] * 2, ratio_q90=[[1.0]] * 2)
    particle_size._weights.cache_clear()
    inv = particle_size.network_inverse_diameter(x[held])
    est = np.where(inv > 1e-3, 1.0 / np.maximum(inv, 1e-3), 1000.0)
    quant = interval_quantiles(d[held], est, s["rmax"][held])
    np.savez(args.out, **arrays, **quant)
    particle_size._weights.cache_clear()
    finite = np.isfinite(d[held])
    rel = np.abs(est - d[held])[finite] / d[held][finite]
    bulk_share = {
        f"{t:g} nm": {
            "bulk_called_bulk": float(np.mean(est[~finite] > t)),
            "3-7 nm called bulk": float(np.mean(est[(d[held] > 3) & (d[held] < 7)] > t)),
        }
        for t in (6.0, 8.0, 10.0, 12.0, 15.0)
    }
    summary = {
        "bulk_threshold": bulk_share,
        "rows": int(x.shape[0]),
        "held_out_rows": int(held.sum()),
        "held_out_median_rel_error_below_10nm": float(np.median(rel[d[held][finite] < 10])),
        "quantiles": {k: v.tolist() for k, v in quant.items()},
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
