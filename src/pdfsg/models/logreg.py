r"""Multinomial logistic regression with an elastic-net penalty on X or X² (paper section 3.1).

Features
    ``"x"``: the normalised PDF X (eq. 4), d = npoints values.
    ``"x2"``: the quadratic feature of eq. 5, :math:`X^2 = \{X_i X_j,\ j > i\}`, d(d-1)/2
    values (21,736 for 209 points), computed in row batches as float32
    (:func:`quadratic_features`).

Penalty (appendix A, eq. S6)
    .. math:: \frac{1}{n}\sum_m \ell_m(\beta) + \alpha\,\big(\Lambda \|\beta\|_1
              + \tfrac{1-\Lambda}{2}\|\beta\|_2^2\big)

    with α the strength and Λ (``l1_ratio``) the L1 share, as scikit-learn's SGD-style
    ``alpha`` / ``l1_ratio`` define them (the paper's best: α = 1e-5 with Λ = 0.75 on X and
    Λ = 1.0 on X²).

Solvers (:attr:`LogRegConfig.solver`)
    ``"saga"``: scikit-learn's ``LogisticRegression`` (multinomial softmax), which minimises
    ``C Σ ℓ + Λ‖β‖₁ + (1-Λ)/2 ‖β‖²``, the same problem for ``C = 1 / (α n)``.  Exact, but
    slow on the 21,736 features of X².
    ``"sgd"``: scikit-learn's ``SGDClassifier(loss="log_loss", penalty="elasticnet")``,
    the estimator whose ``alpha`` / ``l1_ratio`` the paper's (α, Λ) name — in 2018 the only
    elastic-net logistic regression scikit-learn had.  It is one-vs-rest: K binary
    logistic regressions, probabilities σ(z_k) / Σ_j σ(z_j) (:attr:`LogRegFit.multiclass`
    ``"ovr"``).  Each epoch costs O(n d K), tens of times less than saga on X².

α and Λ are chosen by stratified k-fold cross-validation on (a subsample of) the training
split over a small grid (:class:`LogRegConfig`); the grid, every fold score and the choice
are recorded in :attr:`LogRegFit.cv`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "FEATURES",
    "MULTICLASS",
    "SOLVERS",
    "LogRegConfig",
    "LogRegFit",
    "feature_dim",
    "fit_logreg",
    "logreg_predict_proba",
    "quadratic_features",
]

log = logging.getLogger(__name__)

FEATURES = ("x", "x2")
SOLVERS = ("saga", "sgd")
#: how class scores become probabilities: softmax (saga) or normalised sigmoids (sgd, OvR)
MULTICLASS = {"saga": "multinomial", "sgd": "ovr"}


def feature_dim(npoints: int, feature: str) -> int:
    """Number of features for ``npoints`` grid points: d (``"x"``) or d(d-1)/2 (``"x2"``)."""
    if feature == "x":
        return npoints
    if feature == "x2":
        return npoints * (npoints - 1) // 2
    raise ValueError(f"unknown logistic-regression feature {feature!r}; choose 'x' or 'x2'")


def quadratic_features(X: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """The quadratic feature X² of eq. 5: products X_i X_j for j > i, row by row.

    Parameters
    ----------
    X : np.ndarray, shape (n, d)
        Normalised PDFs.
    batch_size : int
        Rows per batch (bounds the temporary memory to batch_size × d² floats).

    Returns
    -------
    np.ndarray, float32, shape (n, d(d-1)/2)
        Pairs in row-major upper-triangle order (i = 0: j = 1..d-1, then i = 1, ...).
    """
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError(f"quadratic_features expects a 2-D array, got {X.ndim}-D")
    n, d = X.shape
    iu, ju = np.triu_indices(d, k=1)
    out = np.empty((n, iu.size), dtype=np.float32)
    for start in range(0, n, batch_size):
        xb = X[start : start + batch_size]
        np.multiply(xb[:, iu], xb[:, ju], out=out[start : start + batch_size])
    return out


def _features(X: np.ndarray, feature: str, batch_size: int = 1024) -> np.ndarray:
    feature_dim(2, feature)  # validates the name
    if feature == "x":
        return np.asarray(X, dtype=np.float32)
    return quadratic_features(X, batch_size)


@dataclass(frozen=True)
class LogRegConfig:
    """Settings of the elastic-net logistic regression and its cross-validation.

    Parameters
    ----------
    feature : str
        ``"x"`` or ``"x2"`` (eq. 5).
    alphas : tuple of float
        Penalty strengths α tried by cross-validation.
    l1_ratios : tuple of float
        L1 shares Λ tried by cross-validation (0 = ridge, 1 = lasso).
    cv_folds : int
        Stratified folds; 0 or 1 skips cross-validation and uses the first grid point.
    cv_max_samples : int
        Cross-validation uses at most this many training rows (a stratified random subset)
        to keep the grid search affordable; 0 means all rows.
    solver : str
        ``"saga"`` (multinomial, exact) or ``"sgd"`` (one-vs-rest stochastic gradient, the
        paper's scikit-learn estimator; fast on X²).
    max_iter : int
        Epochs for each fit.
    tol : float
        Stopping tolerance.
    n_jobs : int
        Threads for ``"sgd"`` (one binary problem per class runs in parallel).
    class_weight : str or None
        ``None`` (the paper's LR has no class weights) or ``"balanced"``.
    seed : int
        Seeds the CV subsample, the folds and saga's sampling.
    """

    feature: str = "x"
    alphas: tuple[float, ...] = (1e-5, 1e-4, 1e-3)
    l1_ratios: tuple[float, ...] = (0.5, 0.75, 1.0)
    cv_folds: int = 3
    cv_max_samples: int = 6000
    solver: str = "saga"
    max_iter: int = 100
    tol: float = 1e-3
    n_jobs: int = 1
    class_weight: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        feature_dim(2, self.feature)
        object.__setattr__(self, "alphas", tuple(float(a) for a in self.alphas))
        object.__setattr__(self, "l1_ratios", tuple(float(v) for v in self.l1_ratios))
        if not self.alphas or min(self.alphas) <= 0:
            raise ValueError("LogRegConfig.alphas must be positive and not empty")
        if not self.l1_ratios or not all(0 <= v <= 1 for v in self.l1_ratios):
            raise ValueError("LogRegConfig.l1_ratios must lie in [0, 1]")
        if self.class_weight not in (None, "balanced"):
            raise ValueError("LogRegConfig.class_weight must be None or 'balanced'")
        if self.solver not in SOLVERS:
            raise ValueError(f"LogRegConfig.solver must be one of {SOLVERS}, got {self.solver!r}")
        if self.n_jobs < 1:
            raise ValueError("LogRegConfig.n_jobs must be at least 1")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["alphas"] = list(self.alphas)
        d["l1_ratios"] = list(self.l1_ratios)
        return d


@dataclass
class LogRegFit:
    """A fitted model: ``coef`` (K, n_features), ``intercept`` (K,), the chosen α and Λ,
    ``multiclass`` (``"multinomial"`` or ``"ovr"``: how scores become probabilities, see
    :func:`logreg_predict_proba`) and the cross-validation record ``cv`` (grid, mean/std
    accuracy per point, choice)."""

    feature: str
    multiclass: str
    coef: np.ndarray
    intercept: np.ndarray
    alpha: float
    l1_ratio: float
    n_iter: int
    converged: bool
    cv: dict[str, Any] = field(default_factory=dict)
    fit_seconds: float = 0.0


def _sk_model(alpha: float, l1_ratio: float, n: int, cfg: LogRegConfig, seed: int):
    if cfg.solver == "sgd":
        from sklearn.linear_model import SGDClassifier

        return SGDClassifier(
            loss="log_loss",
            penalty="elasticnet",
            alpha=alpha,
            l1_ratio=l1_ratio,
            max_iter=cfg.max_iter,
            tol=cfg.tol,
            class_weight=cfg.class_weight,
            n_jobs=cfg.n_jobs,
            random_state=seed,
        )
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(
        C=1.0 / (alpha * n),
        l1_ratio=l1_ratio,
        solver="saga",
        max_iter=cfg.max_iter,
        tol=cfg.tol,
        class_weight=cfg.class_weight,
        random_state=seed,
    )


def _fit_one(F: np.ndarray, y: np.ndarray, alpha: float, l1_ratio: float, cfg, seed: int):
    from sklearn.exceptions import ConvergenceWarning

    model = _sk_model(alpha, l1_ratio, F.shape[0], cfg, seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(F, y)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return model, converged


def _stratified_subset(y: np.ndarray, n_max: int, rng: np.random.Generator) -> np.ndarray:
    """Row indices of a random subset of at most ``n_max`` rows keeping class proportions."""
    if n_max <= 0 or y.size <= n_max:
        return np.arange(y.size)
    keep: list[np.ndarray] = []
    frac = n_max / y.size
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        k = max(1, int(round(frac * rows.size)))
        keep.append(rng.choice(rows, size=min(k, rows.size), replace=False))
    return np.sort(np.concatenate(keep))


def fit_logreg(
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    config: LogRegConfig,
    progress: Callable[[str, int, int], None] | None = None,
) -> LogRegFit:
    """Choose (α, Λ) by cross-validation, then fit on all of ``X``.

    Parameters
    ----------
    X : np.ndarray, shape (n, npoints)
        Normalised training PDFs.
    y : np.ndarray of int, shape (n,)
        Class indices 0..n_classes-1.
    n_classes : int
        Number of labels; classes absent from ``y`` get coefficient rows of zero and an
        intercept of -30 (probability ~ 0).
    config : LogRegConfig
    progress : callable, optional
        ``progress(stage, done, total)`` with stage ``"cv"`` or ``"fit"``.

    Returns
    -------
    LogRegFit
    """
    from sklearn.model_selection import StratifiedKFold

    cfg = config
    y = np.asarray(y, dtype=np.int64)
    rng = np.random.default_rng(cfg.seed)
    grid = [(a, r) for a in cfg.alphas for r in cfg.l1_ratios]
    cv: dict[str, Any] = {
        "alphas": list(cfg.alphas),
        "l1_ratios": list(cfg.l1_ratios),
        "folds": cfg.cv_folds,
        "scoring": "top-1 accuracy",
        "points": [],
    }
    t0 = time.perf_counter()
    rows = _stratified_subset(y, cfg.cv_max_samples, rng)
    counts = np.bincount(y[rows])
    folds = int(min(cfg.cv_folds, counts[counts > 0].min()))
    if folds >= 2 and len(grid) > 1:
        ys = y[rows]
        F = _features(X[rows], cfg.feature)
        cv["n_samples"] = int(rows.size)
        cv["folds"] = folds
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=cfg.seed)
        splits = list(splitter.split(F, ys))
        total = len(grid) * folds
        done = 0
        for alpha, l1 in grid:
            scores = []
            for tr, va in splits:
                model, _ = _fit_one(F[tr], ys[tr], alpha, l1, cfg, cfg.seed)
                scores.append(float((model.predict(F[va]) == ys[va]).mean()))
                done += 1
                if progress:
                    progress("cv", done, total)
            cv["points"].append(
                {
                    "alpha": alpha,
                    "l1_ratio": l1,
                    "mean_accuracy": float(np.mean(scores)),
                    "std_accuracy": float(np.std(scores)),
                    "fold_accuracy": scores,
                }
            )
            log.info("logreg CV alpha=%g l1_ratio=%g: %.4f", alpha, l1, np.mean(scores))
        del F
        best = max(cv["points"], key=lambda p: (p["mean_accuracy"], p["alpha"]))
        alpha, l1 = best["alpha"], best["l1_ratio"]
    else:
        alpha, l1 = grid[0]
        cv["folds"] = 0
        why = "one grid point" if len(grid) == 1 else "cv_folds < 2 or a class has < 2 rows"
        cv["note"] = f"cross-validation skipped ({why}); first grid point used"
    cv["chosen"] = {"alpha": alpha, "l1_ratio": l1}
    cv["seconds"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    F = _features(X, cfg.feature)
    model, converged = _fit_one(F, y, alpha, l1, cfg, cfg.seed)
    if progress:
        progress("fit", 1, 1)
    n_features = F.shape[1]
    del F
    coef = np.zeros((n_classes, n_features), dtype=np.float32)
    intercept = np.full(n_classes, -30.0, dtype=np.float32)
    classes = np.asarray(model.classes_, dtype=np.int64)
    multiclass = MULTICLASS[cfg.solver]
    if classes.size == 2:  # sklearn's binary case: one row z for class 1
        # softmax of (z/2, -z/2) and σ(z) / (σ(z) + σ(-z)) both give class 1 σ(z)
        half = 2.0 if multiclass == "multinomial" else 1.0
        coef[classes[1]] = model.coef_[0] / half
        coef[classes[0]] = -model.coef_[0] / half
        intercept[classes[1]] = model.intercept_[0] / half
        intercept[classes[0]] = -model.intercept_[0] / half
    else:
        coef[classes] = model.coef_
        intercept[classes] = model.intercept_
    return LogRegFit(
        feature=cfg.feature,
        multiclass=multiclass,
        coef=coef,
        intercept=intercept,
        alpha=float(alpha),
        l1_ratio=float(l1),
        n_iter=int(np.max(model.n_iter_)),
        converged=bool(converged),
        cv=cv,
        fit_seconds=time.perf_counter() - t1,
    )


def logreg_predict_proba(
    X: np.ndarray,
    coef: np.ndarray,
    intercept: np.ndarray,
    feature: str,
    batch_size: int = 1024,
    multiclass: str = "multinomial",
) -> np.ndarray:
    """Class probabilities from the scores z = F(X) βᵀ + β₀, computed in row batches.

    ``multiclass="multinomial"``: softmax(z).  ``"ovr"`` (one-vs-rest, the ``sgd``
    solver): σ(z_k) / Σ_j σ(z_j), as scikit-learn's ``SGDClassifier.predict_proba``.

    Returns
    -------
    np.ndarray, float64, shape (n, K)
    """
    if multiclass not in ("multinomial", "ovr"):
        raise ValueError(f"multiclass must be 'multinomial' or 'ovr', got {multiclass!r}")
    X = np.asarray(X, dtype=np.float32)
    coef = np.asarray(coef, dtype=np.float32)
    out = np.empty((X.shape[0], coef.shape[0]), dtype=np.float64)
    for start in range(0, X.shape[0], batch_size):
        F = _features(X[start : start + batch_size], feature, batch_size)
        z = (F @ coef.T).astype(np.float64) + intercept
        if multiclass == "ovr":
            # log σ(z) = -log(1 + e^-z): keeps the order of very negative scores, which σ
            # itself would round to the same 0 (L1-sparse classes score far below -40)
            z = -np.logaddexp(0.0, -z)
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        out[start : start + batch_size] = z / z.sum(axis=1, keepdims=True)
    return out
