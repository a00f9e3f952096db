"""Probabilities that mean what they say: temperature scaling, calibration error, and
conformal prediction sets.

*Temperature scaling* (Guo et al., ICML 2017) maps a model's class probabilities p to
softmax(log p / T), one scalar T > 1 softening an over-confident model; T is fitted by
minimising the negative log-likelihood on validation rows the model never trained on.  For
one network this is exactly logits / T; for an ensemble it acts on the averaged
probabilities.

*Expected calibration error* (ECE): rows binned by top-1 probability (15 equal-width
bins), ECE = Σ_b (n_b / n) |accuracy_b − mean confidence_b|.

*Split-conformal prediction sets* (Sadinle, Lei & Wasserman 2019, "least ambiguous set"):
on validation rows the score is s = 1 − p_true; with q the ⌈(n+1)(1−α)⌉-th smallest score,
the set {k : p_k ≥ 1 − q} holds the true group with probability ≥ 1 − α for exchangeable
new rows, and is the smallest such set on average.

*Top-label calibration* (Gupta & Ramdas, ICLR 2022, "Top-label calibration and multiclass-
to-binary reductions"): after temperature scaling, a monotone map c -> c' of the top-1
probability alone, fitted on whether the top-1 answer was right, the other classes rescaled
by (1 - c') / (1 - c) so that a row still sums to 1 and keeps its ranking.  ``"platt"`` is
c' = sigmoid(a logit c + b) (two numbers), ``"isotonic"`` a non-decreasing piecewise-linear
map through pooled-adjacent-violators blocks, ``"histogram"`` equal-mass bins.  A manifest's
mode record ``{"temperature": T}`` (every manifest before this map) applies exactly as
before; one with ``"top_label": {...}`` applies the map after the temperature
(:func:`calibrate_proba`).

No heavy imports: this module is on the prediction path (scipy only inside the fit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_EPS = 1e-12


def apply_temperature(proba: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T) row by row; T = 1 returns the probabilities unchanged."""
    proba = np.asarray(proba, dtype=np.float64)
    if temperature == 1.0:
        return proba
    z = np.log(np.clip(proba, _EPS, None)) / float(temperature)
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def negative_log_likelihood(proba: np.ndarray, y: np.ndarray) -> float:
    """Mean −log p_true."""
    p = np.asarray(proba)[np.arange(len(y)), np.asarray(y)]
    return float(-np.mean(np.log(np.clip(p, _EPS, None))))


def fit_temperature(proba: np.ndarray, y: np.ndarray) -> float:
    """The T in [0.05, 20] that minimises the NLL of softmax(log p / T) on (proba, y)."""
    from scipy.optimize import minimize_scalar

    if len(y) == 0:
        raise ValueError("fit_temperature needs at least one validation row")
    res = minimize_scalar(
        lambda log_t: negative_log_likelihood(apply_temperature(proba, math.exp(log_t)), y),
        bounds=(math.log(0.05), math.log(20.0)),
        method="bounded",
        options={"xatol": 1e-4},
    )
    return float(math.exp(res.x))


TOP_LABEL_METHODS = ("platt", "isotonic", "histogram")
_CONF_CLIP = 1e-6  # top-1 probabilities are kept in [_CONF_CLIP, 1 - _CONF_CLIP] by the map


def _logit(c: np.ndarray) -> np.ndarray:
    c = np.clip(c, _CONF_CLIP, 1 - _CONF_CLIP)
    return np.log(c) - np.log1p(-c)


def _top_right(proba: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Top-1 probability of each row and whether it was right (``y = -1``: a row whose
    group the model lacks, always wrong)."""
    proba = np.asarray(proba, dtype=np.float64)
    return proba.max(axis=1), proba.argmax(axis=1) == np.asarray(y)


def _fit_platt(conf: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """(a, b) of P(right) = sigmoid(a logit(conf) + b) by Newton's method on the log-loss
    of (soft) targets in [0, 1]."""
    x = _logit(conf)
    t = np.asarray(target, dtype=np.float64)
    w = np.array([1.0, 0.0])
    design = np.stack([x, np.ones_like(x)], axis=1)
    for _ in range(100):
        q = 1.0 / (1.0 + np.exp(-(design @ w)))
        grad = design.T @ (q - t)
        hess = (design * (q * (1 - q))[:, None]).T @ design + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return float(w[0]), float(w[1])


def _pav(values: np.ndarray, weights: np.ndarray) -> tuple[list[float], list[float], list[int]]:
    """Pooled adjacent violators: non-decreasing block means of ``values`` (in the given
    order), their weights and first indices."""
    means: list[float] = []
    wsum: list[float] = []
    start: list[int] = []
    for i, (v, w) in enumerate(zip(values, weights, strict=True)):
        means.append(float(v))
        wsum.append(float(w))
        start.append(i)
        while len(means) > 1 and means[-2] >= means[-1]:
            w2 = wsum[-2] + wsum[-1]
            means[-2] = (means[-2] * wsum[-2] + means[-1] * wsum[-1]) / w2
            wsum[-2] = w2
            del means[-1], wsum[-1], start[-1]
    return means, wsum, start


def fit_top_label(
    proba: np.ndarray,
    y: np.ndarray,
    method: str = "isotonic",
    n_bins: int = 10,
    prior_rows: float = 10.0,
) -> dict:
    """A monotone map of the top-1 probability, fitted on ``(proba, y)`` (already
    temperature-scaled; ``y = -1`` for a row whose group the model lacks: a wrong answer).

    Parameters
    ----------
    method : str
        ``"platt"``, ``"isotonic"`` or ``"histogram"`` (see the module docstring).
    n_bins : int
        Equal-mass bins of ``"histogram"``.
    prior_rows : float
        Shrinkage to no change: each isotonic block's or bin's accuracy is pulled to its
        mean confidence as if it held ``prior_rows`` more rows answered at exactly their
        confidence; ``"platt"`` is fitted to targets pulled so, ``prior_rows`` spread over
        all rows.

    Returns
    -------
    dict
        JSON-serialisable parameters for :func:`apply_top_label` (``"method"`` and either
        ``"a"``, ``"b"`` or the knots ``"confidence"`` -> ``"calibrated"``).
    """
    conf, right = _top_right(proba, y)
    if conf.size == 0:
        raise ValueError("fit_top_label needs at least one row")
    if method == "platt":
        share = prior_rows / conf.size
        a, b = _fit_platt(conf, (right + share * conf) / (1 + share))
        if a <= 0:  # not monotone: keep the identity
            a, b = 1.0, 0.0
        return {"method": "platt", "a": round(a, 6), "b": round(b, 6), "rows": int(conf.size)}
    order = np.argsort(conf, kind="stable")
    c, r = conf[order], right[order].astype(np.float64)
    if method == "isotonic":
        means, wsum, _ = _pav(r, np.ones_like(r))
        counts = np.round(wsum).astype(int)
    elif method == "histogram":
        counts = np.diff(np.linspace(0, c.size, min(n_bins, c.size) + 1).round().astype(int))
        counts = counts[counts > 0]
        means = [float(v.mean()) for v in np.split(r, np.cumsum(counts)[:-1])]
    else:
        raise ValueError(f"unknown top-label method {method!r}; one of {TOP_LABEL_METHODS}")
    blocks = np.split(c, np.cumsum(counts)[:-1])
    x = np.array([float(v.mean()) for v in blocks])
    acc = np.asarray(means)
    shrunk = (acc * counts + x * prior_rows) / (counts + prior_rows)
    shrunk = np.clip(np.maximum.accumulate(shrunk), _CONF_CLIP, 1 - _CONF_CLIP)
    out = {"method": method, "rows": int(conf.size), "prior_rows": prior_rows}
    if method == "histogram":  # piecewise constant between the bins' upper edges
        out["edges"] = [round(float(v[-1]), 6) for v in blocks[:-1]]
    out["confidence"] = [round(float(v), 6) for v in x]
    out["calibrated"] = [round(float(v), 6) for v in shrunk]
    return out


def top_label_map(conf: np.ndarray, params: dict) -> np.ndarray:
    """The calibrated top-1 probability c' of top-1 probabilities ``conf``."""
    conf = np.asarray(conf, dtype=np.float64)
    method = params["method"]
    if method == "platt":
        z = float(params["a"]) * _logit(conf) + float(params["b"])
        return 1.0 / (1.0 + np.exp(-z))
    values = np.asarray(params["calibrated"], dtype=np.float64)
    if method == "histogram":
        edges = np.asarray(params["edges"], dtype=np.float64)
        return values[np.searchsorted(edges, conf, side="left")]
    if method == "isotonic":
        return np.interp(conf, np.asarray(params["confidence"], dtype=np.float64), values)
    raise ValueError(f"unknown top-label method {method!r}; one of {TOP_LABEL_METHODS}")


def apply_top_label(proba: np.ndarray, params: dict) -> np.ndarray:
    """Rows with their top-1 probability mapped by ``params`` (:func:`fit_top_label`) and
    the other classes rescaled by (1 - c') / (1 - c): each row sums to 1 and keeps its
    ranking (c' is kept at least as large as the rescaled second probability)."""
    proba = np.array(proba, dtype=np.float64, copy=True)
    if proba.size == 0:
        return proba
    rows = np.arange(proba.shape[0])
    top = proba.argmax(axis=1)
    conf = proba[rows, top]
    new = np.clip(top_label_map(conf, params), _CONF_CLIP, 1 - _CONF_CLIP)
    rest = 1.0 - conf
    second = np.partition(proba, -2, axis=1)[:, -2] if proba.shape[1] > 1 else np.zeros_like(conf)
    # c' >= p2 (1 - c') / (1 - c)  <=>  c' >= p2 / (1 - c + p2): the ranking is unchanged
    with np.errstate(divide="ignore", invalid="ignore"):
        floor = np.where(rest + second > 0, second / (rest + second), 0.0)
    new = np.maximum(new, floor * (1 + 1e-9) + 1e-12)  # strictly: no tie with the second
    others_sum = proba.sum(axis=1) - conf
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(others_sum > 0, (1.0 - new) / others_sum, 0.0)
    proba *= scale[:, None]
    proba[rows, top] = new
    return proba


def calibrate_proba(proba: np.ndarray, record: dict | None) -> np.ndarray:
    """One input mode's calibration record (a manifest's ``calibration.modes[mode]``):
    temperature scaling, then the top-label map if the record has one.  A record with only
    a temperature (every manifest before top-label maps) gives what it always gave."""
    proba = np.asarray(proba, dtype=np.float64)
    if not record:
        return proba
    t = float(record.get("temperature", 1.0))
    out = apply_temperature(proba, t) if t != 1.0 else proba
    if record.get("top_label"):
        out = apply_top_label(out, record["top_label"])
    return out


@dataclass(frozen=True)
class Reliability:
    """Per-bin counts, accuracy and mean confidence of the top-1 answer, and the ECE."""

    edges: np.ndarray
    count: np.ndarray
    accuracy: np.ndarray
    confidence: np.ndarray
    ece: float

    def to_dict(self) -> dict:
        return {
            "edges": [round(float(e), 4) for e in self.edges],
            "count": [int(c) for c in self.count],
            "accuracy": [
                None if c == 0 else round(float(a), 4)
                for a, c in zip(self.accuracy, self.count, strict=True)
            ],
            "confidence": [
                None if c == 0 else round(float(a), 4)
                for a, c in zip(self.confidence, self.count, strict=True)
            ],
            "ece": round(self.ece, 5),
        }


def reliability(proba: np.ndarray, y: np.ndarray, n_bins: int = 15) -> Reliability:
    """Reliability-diagram data and the expected calibration error of the top-1 answer."""
    proba = np.asarray(proba)
    conf = proba.max(axis=1)
    right = proba.argmax(axis=1) == np.asarray(y)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    b = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    count = np.bincount(b, minlength=n_bins)
    acc = np.bincount(b, weights=right, minlength=n_bins) / np.maximum(count, 1)
    mean_conf = np.bincount(b, weights=conf, minlength=n_bins) / np.maximum(count, 1)
    ece = float(np.sum(count / max(len(conf), 1) * np.abs(acc - mean_conf)))
    return Reliability(edges, count, acc, mean_conf, ece)


def conformal_threshold(proba: np.ndarray, y: np.ndarray, alpha: float = 0.1) -> float:
    """Probability threshold t: the set {k : p_k >= t} covers the truth with >= 1 - alpha
    (split conformal, least-ambiguous sets) for rows like (proba, y)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    scores = 1.0 - np.asarray(proba)[np.arange(len(y)), np.asarray(y)]
    n = scores.size
    if n == 0:
        raise ValueError("conformal_threshold needs at least one validation row")
    k = min(n, math.ceil((n + 1) * (1 - alpha)))
    q = float(np.sort(scores)[k - 1])
    return max(0.0, 1.0 - q)


def prediction_set(proba_row: np.ndarray, threshold: float) -> np.ndarray:
    """Class indices of one row's conformal set, most probable first (never empty)."""
    proba_row = np.asarray(proba_row)
    order = np.argsort(-proba_row, kind="stable")
    keep = order[proba_row[order] >= threshold]
    return keep if keep.size else order[:1]


def in_share(identifier: str, fraction: float, seed: int | str = 0) -> bool:
    """Whether a structure id falls in a ``fraction`` share chosen by hash (sha256 of
    ``"{seed}:{id}"``): the same answer in every run, r range and session, so held-out rows
    can be named by a rule instead of a list.  Augmented ids (``mp-1#aug2``) follow their
    parent."""
    if fraction <= 0:
        return False
    import hashlib

    parent = str(identifier).split("#", 1)[0]
    h = hashlib.sha256(f"{seed}:{parent}".encode()).digest()
    return int.from_bytes(h[:8], "little") / 2**64 < fraction


def used_for_calibration(manifest: dict, identifiers) -> np.ndarray:
    """Mask of the rows (by id) that a model's calibration was fitted on: test rows used so
    must be left out of every reported metric.  All False for a model calibrated on rows of
    its own validation split (those are not test rows)."""
    rule = (manifest.get("calibration") or {}).get("held_out_test_rows")
    ids = [str(i) for i in identifiers]
    if not rule:
        return np.zeros(len(ids), dtype=bool)
    return np.array([in_share(i, float(rule["fraction"]), rule["seed"]) for i in ids])
