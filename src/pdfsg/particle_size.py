"""Particle diameter from how G(r) dies out.

The PDF of a spherical particle of diameter d is the bulk G(r) times the sphere's
characteristic function f(r, d) = 1 − 3r/2d + r³/2d³ (r < d, else 0;
:func:`pdfsg.augment.particle_envelope`).  The instrument damps it too, by
exp(−Qdamp² r²/2), so an amplitude that falls with r is not by itself a small particle:
a fit of f alone reads 30–45 % high below 3 nm.  Here the amplitude envelope is measured
as the RMS of G in 2 Å windows from 2 to 30 Å (each window's mean removed), as logs
relative to the 2–8 Å windows, and mapped to 1/d by a small network trained on simulated
particles of the train rows of the mp and mpts52 datasets (diameters 1.5–30 nm and bulk,
Qmax 14–27 1/Å, Qdamp 0.02–0.06 1/Å, 0–3 % noise, data ending at 15–30 Å;
``tools/particle_size_model.py``).  Its weights are ``pdfsg/data/particle_size.npz``
(plain arrays; the forward pass is NumPy).  ``benchmarks/particle_size.py`` measures it
on the test rows, against the envelope fit :func:`fit_envelope` that models Qdamp jointly.

Bulk is not a diameter: with data to 30 Å the envelope of a crystal cannot be told from
that of a particle much above ~10 nm (the crystal's own amplitude varies with r by
±25 % per 10 Å from one structure to another), so an estimate above
:data:`BULK_ABOVE_NM` is reported as "bulk, or larger than the data can tell".
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from importlib.resources import files

import numpy as np

#: edges of the amplitude windows [Å]
EDGES = np.arange(2.0, 30.0 + 1e-9, 2.0)
#: the first windows (2–8 Å) are the reference the others are measured against
N_REF = 3
#: the data must cover the windows up to this r [Å] for an estimate
MIN_RMAX = 14.0
#: log amplitudes are clipped to this range (a window of pure noise or zeros)
LOG_CLIP = (-8.0, 2.0)
#: a window counts when the data reach its right edge less this much [Å]
COVER_SLACK = 0.2
#: a diameter [nm] whose interval reaches above this is reported as bulk (the data cannot
#: tell it from a crystal)
BULK_ABOVE_NM = 10.0
#: data ending before this r [Å] have their own (wider) intervals
SHORT_RMAX = 25.0
WEIGHTS = "particle_size.npz"


@dataclass(frozen=True)
class DiameterEstimate:
    """A particle diameter from the envelope of G(r).

    Attributes
    ----------
    diameter_nm : float or None  [nm]
        The estimate; None when the curve looks like bulk (or a particle larger than
        :data:`BULK_ABOVE_NM`, which data to 30 Å cannot tell from bulk).
    low_nm, high_nm : float  [nm]
        The 10–90 % interval (from the estimator's errors on simulated test particles);
        ``high_nm`` is ``math.inf`` when bulk cannot be excluded (then ``diameter_nm`` is
        None and ``low_nm`` says how small the particle could still be).
    method : str
        ``"envelope network"`` or ``"envelope fit"``.
    """

    diameter_nm: float | None
    low_nm: float
    high_nm: float
    method: str = "envelope network"
    #: the network's own estimate [nm] even when reported as bulk (capped at 1000)
    point_nm: float = math.nan

    @property
    def bulk(self) -> bool:
        return self.diameter_nm is None

    def text(self) -> str:
        """``"a particle of about 3.1 nm (2.6–3.7)"`` or ``"bulk, or a particle larger than
        about 4 nm (the data cannot tell)"``."""
        if self.diameter_nm is None:
            return (
                f"bulk, or a particle larger than about {self.low_nm:.2g} nm (the data cannot tell)"
            )
        return (
            f"a particle of about {self.diameter_nm:.2g} nm ({self.low_nm:.2g}–{self.high_nm:.2g})"
        )

    def to_dict(self) -> dict[str, float | str | bool | None]:
        return {
            "diameter_nm": None if self.diameter_nm is None else round(self.diameter_nm, 3),
            "low_nm": round(self.low_nm, 3),
            "high_nm": None if math.isinf(self.high_nm) else round(self.high_nm, 3),
            "bulk": self.bulk,
            "method": self.method,
        }


# --------------------------------------------------------------------------- amplitudes


def rms_between(
    r: np.ndarray, g: np.ndarray, lo: float, hi: float, *, closed: bool = True
) -> float:
    """RMS of G over lo <= r <= hi [Å] (r < hi unless ``closed``; mean not removed); nan
    when no point lies there."""
    r = np.asarray(r)
    sel = np.asarray(g)[(r >= lo) & ((r <= hi) if closed else (r < hi))]
    return float(np.sqrt(np.mean(sel**2))) if sel.size else math.nan


def window_rms(r: np.ndarray, g: np.ndarray, edges: np.ndarray = EDGES) -> np.ndarray:
    """RMS of G about its mean in each window [edges[k], edges[k+1]) [Å]; nan for windows
    with fewer than 3 points or beyond the data's last r (+ :data:`COVER_SLACK`).  ``g``
    may be 2-D (curves as rows)."""
    r = np.asarray(r, dtype=np.float64)
    g = np.asarray(g, dtype=np.float64)
    idx = np.searchsorted(r, edges)
    zero = np.zeros((*g.shape[:-1], 1))
    s1 = np.concatenate([zero, np.cumsum(g, axis=-1)], axis=-1)
    s2 = np.concatenate([zero, np.cumsum(g * g, axis=-1)], axis=-1)
    n = np.diff(idx).astype(np.float64)
    a, b = idx[:-1], idx[1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        m1 = (s1[..., b] - s1[..., a]) / n
        var = (s2[..., b] - s2[..., a]) / n - m1 * m1
    out = np.sqrt(np.maximum(var, 0.0))
    covered = (n >= 3) & (edges[1:] <= (r[-1] if r.size else -np.inf) + COVER_SLACK)
    return np.where(covered, out, np.nan)


def envelope_features(r: np.ndarray, g: np.ndarray) -> np.ndarray:
    """The network's input: log window RMS relative to the 2–8 Å windows (clipped; 0 where
    a window lies beyond the data), then a 0/1 mask of the windows covered."""
    amp = window_rms(r, g)
    ref = np.nanmean(amp[..., :N_REF], axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        logs = np.log(np.maximum(amp, 1e-300) / ref)
    mask = np.isfinite(logs)
    logs = np.where(mask, np.clip(np.nan_to_num(logs, nan=0.0), *LOG_CLIP), 0.0)
    return np.concatenate([logs[..., N_REF:], mask[..., N_REF:].astype(np.float64)], axis=-1)


# --------------------------------------------------------------------------- estimates


@functools.lru_cache(maxsize=1)
def _weights() -> dict[str, np.ndarray]:
    path = files("pdfsg") / "data" / WEIGHTS
    with path.open("rb") as fh, np.load(fh, allow_pickle=False) as z:
        return {k: np.array(z[k]) for k in z.files}


def network_inverse_diameter(features: np.ndarray) -> np.ndarray:
    """1/d [1/nm] from :func:`envelope_features` (rows): the shipped network's forward
    pass (standardise, ReLU layers, linear output)."""
    w = _weights()
    h = (np.atleast_2d(features) - w["x_mean"]) / w["x_scale"]
    n_layers = int(w["n_layers"])
    for i in range(n_layers):
        h = h @ w[f"W{i}"] + w[f"b{i}"]
        if i < n_layers - 1:
            h = np.maximum(h, 0.0)
    return h[:, 0] * float(w["y_scale"]) + float(w["y_mean"])


def _usable(r: np.ndarray, g: np.ndarray) -> bool:
    return (
        r.ndim == 1
        and r.shape == g.shape
        and r.size >= 16
        and bool(np.all(np.isfinite(r)))
        and bool(np.all(np.isfinite(g)))
        and r[0] <= EDGES[0] + 0.5
        and r[-1] >= MIN_RMAX
        and bool(np.all(np.diff(r) > 0))
    )


def _interval(inv_d: float, rmax: float) -> tuple[float | None, float, float]:
    """Estimate and 10–90 % interval [nm] from a network output, with the stored error
    quantiles of the estimate's bin (for data ending before / after :data:`SHORT_RMAX`).
    The estimate is None (bulk, or larger than the data can tell) when the interval
    reaches above :data:`BULK_ABOVE_NM`: a particle is claimed only when bulk is unlikely."""
    w = _weights()
    d = 1.0 / inv_d if inv_d > 1.0 / 1000 else 1000.0
    k = int(np.argmin(np.abs(np.log(w["bin_centres_nm"]) - math.log(d))))
    row = int(rmax >= SHORT_RMAX)
    low = d * float(w["ratio_q10"][row, k])
    high = d * float(w["ratio_q90"][row, k])
    if d > BULK_ABOVE_NM or not high <= BULK_ABOVE_NM:
        return None, min(low, BULK_ABOVE_NM), math.inf
    return d, low, high


def estimate_diameter(
    r: np.ndarray,
    g: np.ndarray,
    qmax: float | None = None,
    qdamp: float | None = None,
) -> DiameterEstimate | None:
    """The diameter [nm] of a spherical particle whose G(r) this is, from the envelope of
    G over 2–30 Å (data beyond 30 Å are not used).

    Parameters
    ----------
    r : np.ndarray  [Å]
        Increasing r values, from at most 2.5 Å to at least :data:`MIN_RMAX`.
    g : np.ndarray  [Å⁻²]
        G(r) (any scale).
    qmax, qdamp : float or None  [1/Å]
        Accepted for the envelope fit's sake; the network is trained over Qmax 14–27 and
        Qdamp 0.02–0.06 and does not need them.

    Returns
    -------
    DiameterEstimate or None
        None when the curve cannot tell (too short an r range, non-finite values, no
        signal at 2–8 Å); ``diameter_nm is None`` when it looks like bulk.
    """
    del qmax, qdamp  # the network marginalises over both
    r = np.asarray(r, dtype=np.float64)
    g = np.asarray(g, dtype=np.float64)
    if not _usable(r, g):
        return None
    feats = envelope_features(r, g)
    amp = window_rms(r, g)
    if not (np.nanmean(amp[:N_REF]) > 0):
        return None
    inv_d = float(network_inverse_diameter(feats[None, :])[0])
    d, lo, hi = _interval(inv_d, float(r[-1]))
    return DiameterEstimate(d, lo, hi, point_nm=1.0 / max(inv_d, 1e-3))


def diameters_nm(r: np.ndarray, curves: np.ndarray) -> np.ndarray:
    """Per row of ``curves`` (G(r) on the grid ``r``, any scale) the diameter [nm] that
    :func:`estimate_diameter` finds, NaN where it says bulk or cannot tell: what
    :class:`pdfsg.predict.Predictor` passes to a model's ``predict_proba(..., diameters=)``."""
    out = np.full(len(curves), math.nan)
    for i, g in enumerate(curves):
        est = estimate_diameter(r, g)
        if est is not None and est.diameter_nm is not None:
            out[i] = est.diameter_nm
    return out


# --------------------------------------------------------------------------- the fit


@functools.lru_cache(maxsize=4)
def _fit_table(qdamps: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """log window RMS of f(r, d)·exp(−q²r²/2) for the diameter grid (rows, plus bulk) and
    each Qdamp (second axis), relative to the reference windows (fine 0.01 Å sampling)."""
    from pdfsg.augment import particle_envelope

    rf = np.arange(EDGES[0], EDGES[-1], 0.01)
    diam = np.r_[np.geomspace(8.0, 600.0, 120), math.inf]
    idx = np.searchsorted(rf, EDGES)
    out = np.empty((diam.size, len(qdamps), EDGES.size - 1))
    for i, d in enumerate(diam):
        f = particle_envelope(rf, d) if math.isfinite(d) else np.ones_like(rf)
        for j, q in enumerate(qdamps):
            e2 = (f * np.exp(-0.5 * q * q * rf * rf)) ** 2
            s = np.add.reduceat(e2, idx[:-1]) / np.diff(idx)
            out[i, j] = 0.5 * np.log(np.maximum(s, 1e-300))
    out -= np.log(np.exp(out[..., :N_REF]).mean(-1, keepdims=True))
    return diam / 10.0, out


def fit_envelope(
    r: np.ndarray, g: np.ndarray, qdamp: float | None = None, noise_floor: float = -4.0
) -> float:
    """Diameter [nm] (``math.inf`` for bulk) of the sphere envelope times the Qdamp damping
    that best matches the log window RMS of G (least squares in the logs; Qdamp the given
    value, else the best of 0.02–0.06 1/Å); windows whose amplitude is below
    exp(``noise_floor``) of the reference count only when the model lies above them."""
    qd = (float(qdamp),) if qdamp is not None else tuple(np.round(np.linspace(0.02, 0.06, 9), 4))
    diam_nm, table = _fit_table(qd)
    feats = envelope_features(r, g)
    nw = EDGES.size - 1 - N_REF
    y, m = feats[:nw], feats[nw:] > 0
    model = table[..., N_REF:]
    resid = y - model
    floor = y <= noise_floor
    live = m & ~floor
    # the crystal's own amplitude at 8–30 Å relative to 2–8 Å: a free offset
    offset = np.sum(np.where(live, resid, 0.0), -1, keepdims=True) / max(int(live.sum()), 1)
    resid = resid - offset
    resid = np.where(floor & (resid > 0), 0.0, resid)  # a dead window: only a bound
    cost = np.sum(np.where(m, resid**2, 0.0), axis=-1)
    i, _ = np.unravel_index(int(np.argmin(cost)), cost.shape)
    return float(diam_nm[i])


# --------------------------------------------------------------------------- simulation


@functools.lru_cache(maxsize=32)
def _qmax_filter(r_bytes: bytes, qmax: float) -> np.ndarray:
    from pdfsg.augment import lower_qmax

    r = np.frombuffer(r_bytes)
    return lower_qmax(np.eye(r.size), r, qmax).T  # g @ this = g band-limited to qmax


def simulate_particles(
    r: np.ndarray,
    g: np.ndarray,
    diameter_nm: np.ndarray,
    qmax: np.ndarray,
    qdamp: np.ndarray,
    noise: np.ndarray,
    rng: np.random.Generator,
    *,
    qmax_base: float = 23.0,
    qdamp_base: float = 0.04,
) -> np.ndarray:
    """Nanoparticle curves from bulk ones (rows of ``g`` on the uniform grid ``r`` [Å],
    simulated with ``qmax_base``, ``qdamp_base`` [1/Å]): the sphere envelope of
    ``diameter_nm`` (inf: bulk), Qdamp changed to ``qdamp`` (exp(−(q² − q_base²) r²/2), so
    also below the base), Qmax lowered to ``qmax`` when below the base (rounded to 0.5 1/Å
    so the filters are shared) and Gaussian noise of ``noise`` × max|G| (per row)."""
    from pdfsg.augment import particle_envelope

    r = np.asarray(r, dtype=np.float64)
    out = np.array(g, dtype=np.float64, copy=True)
    for i in range(out.shape[0]):
        row = out[i] * np.exp(-0.5 * (qdamp[i] ** 2 - qdamp_base**2) * r * r)
        if math.isfinite(diameter_nm[i]):
            row = row * particle_envelope(r, 10.0 * diameter_nm[i])
        q = round(2.0 * float(qmax[i])) / 2.0
        if q < qmax_base:
            row = row @ _qmax_filter(r.tobytes(), q)
        out[i] = row + noise[i] * np.abs(row).max() * rng.normal(size=r.size)
    return out
