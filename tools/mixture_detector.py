"""Train the two-phase detector of :mod:`pdfsg.mixture` and write
``src/pdfsg/data/mixture_detector.npz`` (plain arrays, no pickle).

Training curves come from the **train** split only (``mp_paper45`` training rows, which hold
``mpts52``'s, and ``wbm_paper45``): a library of ``--library`` of their structures, and
``--n`` simulated measurements (half single-phase, half two-phase, :func:`pdfsg.mixture.
simulate`) from the *other* training structures, so no training curve has itself in the
library.  The threshold is the score that ``--false-alarm`` of ``--n-test`` single-phase
curves simulated the same way from the **test** split exceed.

Usage::

    python tools/mixture_detector.py [--n 150000] [--library 1500] [--false-alarm 0.03]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def training_rows(work: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(G, formula) of the training rows and of the test rows, on the detector's grid."""
    from pdfsg.datasets import read_dataset
    from pdfsg.mixture import detector_grid

    n = detector_grid().size
    mp = read_dataset(work / "mp_paper45.h5")
    wbm = read_dataset(work / "wbm_paper45.h5")
    train_g = np.concatenate([mp.train().G, wbm.train().G])[:, :n].astype(np.float64)
    train_f = np.concatenate([mp.train().formula, wbm.train().formula])
    return train_g, train_f, mp.test().G[:, :n].astype(np.float64), mp.test().formula


def main() -> None:
    from sklearn.metrics import roc_auc_score
    from sklearn.neural_network import MLPClassifier

    from pdfsg import mixture

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, default=ROOT / "work")
    ap.add_argument("--n", type=int, default=150_000, help="simulated training curves")
    ap.add_argument("--n-test", type=int, default=10_000, help="simulated test curves")
    ap.add_argument("--library", type=int, default=1500, help="library curves")
    ap.add_argument("--hidden", type=int, nargs="+", default=[128, 64])
    ap.add_argument("--false-alarm", type=float, default=0.03)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "src/pdfsg/data" / mixture.DATA_FILE)
    args = ap.parse_args()
    t0 = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    train_g, train_f, test_g, test_f = training_rows(args.work)
    order = rng.permutation(len(train_g))
    lib_rows, sim_rows = order[: args.library], order[args.library :]
    library = mixture.standardise(train_g[lib_rows])
    library /= np.linalg.norm(library, axis=1, keepdims=True)
    library = library.astype(np.float16).astype(np.float64)  # as stored
    library /= np.linalg.norm(library, axis=1, keepdims=True)

    def simulated(g, f, n, seed, p_mixture=0.5):
        pairs = list(mixture.simulate(g, f, n, np.random.default_rng(seed), p_mixture=p_mixture))
        return np.stack([c for c, _ in pairs]), np.array([w for _, w in pairs])

    x, w = simulated(train_g[sim_rows], train_f[sim_rows], args.n, args.seed + 1)
    feats = mixture.features(x, library)
    mean, scale = feats.mean(axis=0), feats.std(axis=0) + 1e-9
    clf = MLPClassifier(
        tuple(args.hidden), alpha=1e-3, max_iter=200, early_stopping=True,
        random_state=args.seed,
    )  # fmt: skip
    clf.fit((feats - mean) / scale, (w > 0).astype(int))
    det = mixture.MixtureDetector(
        library=library,
        mean=mean,
        scale=scale,
        weights=tuple(np.asarray(c, dtype=np.float64) for c in clf.coefs_),
        biases=tuple(np.asarray(b, dtype=np.float64) for b in clf.intercepts_),
        threshold=1.0,
        false_alarm_rate=args.false_alarm,
    )
    xt, wt = simulated(test_g, test_f, args.n_test, args.seed + 2)
    s = det.scores(xt)
    threshold = float(np.quantile(s[wt == 0], 1.0 - args.false_alarm))
    det = dataclasses.replace(det, threshold=threshold)
    det.save(args.out)
    print(f"AUC {roc_auc_score(wt > 0, s):.3f}, threshold {threshold:.3f}")
    for lo, hi in ((0.05, 0.15), (0.15, 0.3), (0.3, 0.5)):
        sel = (wt >= lo) & (wt < hi)
        print(f"minor weight {lo:.2f}-{hi:.2f}: detected {np.mean(s[sel] >= threshold):.1%}")
    print(f"wrote {args.out} in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
