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
