r"""Does this curve hold more than one crystalline phase?  A detector on the signal itself.

A physical mixture's reduced PDF is, to a good approximation, the weighted sum of its phases'
PDFs, :math:`G(r) = \sum_i w_i G_i(r)` (:math:`w_i` ∝ phase fraction × scattering power).
A single-phase model ranks such a curve as one structure, mixing the phases' answers.

:func:`mixture_score` (0…1) is a small neural network (two ReLU layers, NumPy forward) on

* the curve itself over 1.5–20 Å (the range every shipped model covers), mean removed and
  scaled to unit standard deviation (so the file's scale and units do not matter), and
* four numbers from a library of single-phase curves (training-split structures): the
  best and the mean of the 5 best correlations with a library curve, how well the best
  library curve explains what the best one leaves (a second phase), and the norm of that
  residual.  A mixture of two simple phases (Si + Ni) is matched by two library curves much
  better than by one.

It was trained on curves simulated from the training split only (``tools/mixture_detector.py``:
single phases and two-phase sums with minor-phase weight 0.05–0.5, each with a random Qmax,
extra Qdamp and thermal broadening, baseline, noise and, for 30 % of the phases, a
nanoparticle envelope).  Its threshold :data:`THRESHOLD` (in the data file) is the score that
3 % of single-phase test-split curves, simulated the same way, exceed.
``benchmarks/mixtures.py`` measures detection per minor-phase weight and false alarms on
simulated and measured files.  The weights live in ``pdfsg/data/mixture_detector.npz`` (plain
arrays, no pickle).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np

#: the detector's r grid: the shipped models' grid (rmin 1.5 Å, step π/23 Å) up to RMAX
RMIN = 1.5
RSTEP = math.pi / 23.0
RMAX = 20.0
#: the data file of the shipped detector
DATA_FILE = "mixture_detector.npz"


def detector_grid() -> np.ndarray:
    """r [Å] of the detector's input: 1.5 Å to 20 Å in steps of π/23 Å (136 points)."""
    n = int(math.floor((RMAX - RMIN) / RSTEP + 1e-9)) + 1
    return RMIN + RSTEP * np.arange(n)


@dataclass(frozen=True)
class MixtureDetector:
    """The trained detector: library, input scaling, network weights and threshold."""

    library: np.ndarray  # (L, n) unit-norm single-phase curves on detector_grid()
    mean: np.ndarray  # (n + 4,) input centring
    scale: np.ndarray  # (n + 4,) input scaling
    weights: tuple[np.ndarray, ...]  # W1, W2, W3 of the network
    biases: tuple[np.ndarray, ...]
    threshold: float
    false_alarm_rate: float

    @classmethod
    def load(cls, path: str | Path | None = None) -> MixtureDetector:
        """Read the detector from ``path`` (default: the shipped ``pdfsg/data`` file)."""
        return _load(str(path) if path is not None else None)

    def save(self, path: str | Path) -> None:
        """Write the detector as plain arrays (``np.savez``, readable without pickle)."""
        arrays = {f"W{i}": w for i, w in enumerate(self.weights)}
        arrays |= {f"b{i}": b for i, b in enumerate(self.biases)}
        np.savez_compressed(
            path,
            library=self.library.astype(np.float16),
            mean=self.mean,
            scale=self.scale,
            threshold=np.float64(self.threshold),
            false_alarm_rate=np.float64(self.false_alarm_rate),
            **arrays,
        )

    def scores(self, curves: np.ndarray) -> np.ndarray:
        """Scores (0…1) of curves (rows) already on :func:`detector_grid`."""
        h = (features(curves, self.library) - self.mean) / self.scale
        for w, b in zip(self.weights[:-1], self.biases[:-1], strict=True):
            h = np.maximum(h @ w + b, 0.0)
        logit = (h @ self.weights[-1] + self.biases[-1])[:, 0]
        return 1.0 / (1.0 + np.exp(-np.clip(logit, -50, 50)))


@functools.lru_cache(maxsize=4)
def _load(path: str | None) -> MixtureDetector:
    source = Path(path) if path else Path(str(files("pdfsg") / "data" / DATA_FILE))
    with np.load(source, allow_pickle=False) as z:
        n_layers = sum(1 for k in z.files if k.startswith("W"))
        lib = z["library"].astype(np.float64)
        return MixtureDetector(
            library=lib / np.linalg.norm(lib, axis=1, keepdims=True),
            mean=z["mean"],
            scale=z["scale"],
            weights=tuple(z[f"W{i}"] for i in range(n_layers)),
            biases=tuple(z[f"b{i}"] for i in range(n_layers)),
            threshold=float(z["threshold"]),
            false_alarm_rate=float(z["false_alarm_rate"]),
        )


def standardise(curves: np.ndarray) -> np.ndarray:
    """Rows minus their mean, divided by their standard deviation (constant rows: zeros)."""
    g = np.atleast_2d(np.asarray(curves, dtype=np.float64))
    g = g - g.mean(axis=1, keepdims=True)
    sd = g.std(axis=1, keepdims=True)
    return g / np.where(sd > 0, sd, 1.0)


def library_features(curves: np.ndarray, library: np.ndarray) -> np.ndarray:
    """(m, 4): best correlation with a library curve, mean of the 5 best, the best
    correlation of what the best one leaves with a library curve, and that residual's norm.

    ``curves`` on :func:`detector_grid` (rows), ``library`` unit-norm rows on the same grid.
    """
    z = standardise(curves) / math.sqrt(library.shape[1])
    lib_t = _transposed(library)
    c = (z.astype(np.float32) @ lib_t).astype(np.float64)
    k = min(5, c.shape[1])
    top = -np.partition(-c, k - 1, axis=1)[:, :k]
    best = np.argmax(c, axis=1)
    rows = np.arange(z.shape[0])
    c_best = c[rows, best]
    res = z - c_best[:, None] * library[best]
    norm = np.sqrt(np.einsum("ij,ij->i", res, res))
    second = np.max(np.abs(res.astype(np.float32) @ lib_t), axis=1) / np.where(norm > 0, norm, 1.0)
    return np.stack([c_best, top.mean(axis=1), second, norm], axis=1)


def _transposed(library: np.ndarray) -> np.ndarray:
    """``library.T`` in C order and float32 (the stored library is float16; half the memory
    traffic of float64), kept for the library last used."""
    cached = _LIB_T.get(id(library))
    if cached is None or cached[0] is not library:
        cached = (library, np.ascontiguousarray(library.T, dtype=np.float32))
        _LIB_T.clear()
        _LIB_T[id(library)] = cached
    return cached[1]


_LIB_T: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def features(curves: np.ndarray, library: np.ndarray) -> np.ndarray:
    """The detector's input: the standardised curve and :func:`library_features`."""
    return np.hstack([standardise(curves), library_features(curves, library)])


def on_detector_grid(r: np.ndarray, g: np.ndarray) -> np.ndarray | None:
    """G on :func:`detector_grid` from a curve already band-limited to ~23 1/Å (a prepared
    model input); the points themselves when ``r`` starts with that grid, else linear
    interpolation.  None when the curve does not span 1.5–20 Å."""
    r = np.asarray(r, dtype=np.float64)
    g = np.asarray(g, dtype=np.float64)
    grid = detector_grid()
    if r.size < 2 or r[0] > grid[0] + 1e-6 or r[-1] < grid[-1] - 1e-6:
        return None
    n = grid.size
    if r.size >= n and abs(r[0] - grid[0]) < 1e-6 and abs(r[n - 1] - grid[-1]) < 1e-6:
        return g[:n]
    return np.interp(grid, r, g)


def mixture_score(r: np.ndarray, g: np.ndarray, detector: MixtureDetector | None = None):
    """How much a curve looks like more than one phase (0…1; :data:`MixtureDetector.threshold`
    separates single phases at a 3 % false-alarm rate), or None when it does not span
    1.5–20 Å.

    ``r`` [Å], ``g`` [Å⁻²]: a curve band-limited to about 23 1/Å, e.g. the ``r`` and ``g``
    of :class:`pdfsg.preprocess.PreparedInput`.
    """
    on_grid = on_detector_grid(r, g)
    if on_grid is None or not np.all(np.isfinite(on_grid)) or np.ptp(on_grid) <= 0:
        return None
    det = detector or MixtureDetector.load()
    return float(det.scores(on_grid[None, :])[0])


def mixture_warning(
    r: np.ndarray, g: np.ndarray, source: str, detector: MixtureDetector | None = None
) -> str | None:
    """A one-line warning when :func:`mixture_score` is above the detector's threshold."""
    det = detector or MixtureDetector.load()
    score = mixture_score(r, g, det)
    if score is None or score < det.threshold:
        return None
    return (
        f"{source}: looks like more than one phase (score {score:.2f}): the ranking mixes "
        "them; try --refine or a two-phase fit"
    )


# --------------------------------------------------------------------------- simulation

#: Qmax levels [1/Å] the simulated measurements are band-limited to
QMAX_LEVELS = (14.0, 16.0, 18.0, 20.0, 23.0)


@dataclass(frozen=True)
class MixtureSimulation:
    """Ranges of the simulated measurements (uniform draws unless noted)."""

    weight: tuple[float, float] = (0.05, 0.95)  # the second phase's weight in the sum
    qdamp: tuple[float, float] = (0.04, 0.08)  # [1/Å], from the arrays' 0.04
    broadening: tuple[float, float] = (0.0, 0.006)  # extra Uiso [Å²] of every pair
    noise: tuple[float, float] = (0.0, 0.04)  # sigma relative to max|G|
    baseline: tuple[float, float] = (-0.05, 0.05)  # relative to max|G| per 30 Å
    p_particle: float = 0.3  # per phase
    particle_diameter: tuple[float, float] = (15.0, 500.0)  # [Å], log-uniform


@functools.lru_cache(maxsize=16)
def _qmax_filter(n: int, qmax: float) -> np.ndarray:
    from pdfsg.augment import lower_qmax

    r = RMIN + RSTEP * np.arange(n)
    return lower_qmax(np.eye(n), r, qmax)


@functools.lru_cache(maxsize=16)
def _broadening_filter(n: int, du: float, qmax: float = 23.0) -> np.ndarray:
    """Matrix M with G_out = G_in @ M: F(Q) multiplied by exp(-du Q²) (a Debye-Waller
    factor of extra Uiso ``du`` [Å²] on every pair) for G band-limited to ``qmax`` on the
    grid from 1.5 Å, G taken odd in r and linear to 0 below 1.5 Å (as
    :func:`pdfsg.augment.lower_qmax` does)."""
    r = RMIN + RSTEP * np.arange(n)
    fine = np.arange(RSTEP, RMIN, RSTEP)
    r_all = np.concatenate([fine, r])
    q = np.linspace(0.0, qmax, 2048)
    wq = np.exp(-du * q**2) * (q[1] - q[0])
    wq[[0, -1]] *= 0.5
    k = (2.0 / math.pi) * RSTEP * (np.sin(np.outer(r, q)) * wq) @ np.sin(np.outer(q, r_all))
    m = k[:, fine.size :].copy()
    m[:, 0] += k[:, : fine.size] @ (fine / r[0])
    return m.T


def simulate(
    g: np.ndarray,
    formula: np.ndarray,
    n: int,
    rng: np.random.Generator,
    *,
    p_mixture: float = 0.5,
    config: MixtureSimulation = MixtureSimulation(),
) -> Iterator[tuple[np.ndarray, float]]:
    """Simulated measurements from curves ``g`` (rows: raw G on the shipped grid from 1.5 Å,
    Qmax 23, e.g. ``Dataset.G``): yields ``(curve, w)`` with ``w`` the minor phase's weight
    (0 for a single phase; a mixture, with probability ``p_mixture``, sums two rows of
    different ``formula``: ``(1 - w) G_i + w G_j``)."""
    from pdfsg.augment import add_baseline, add_noise, extra_qdamp, particle_envelope

    npts = g.shape[1]
    r = RMIN + RSTEP * np.arange(npts)
    lo, hi = config.particle_diameter

    def phase(i: int) -> np.ndarray:
        out = np.asarray(g[i], dtype=np.float64)
        if rng.random() < config.p_particle:
            d = math.exp(rng.uniform(math.log(lo), math.log(hi)))
            out = out * particle_envelope(r, d)
        return out

    for _ in range(n):
        i = int(rng.integers(len(g)))
        curve = phase(i)
        w = 0.0
        if rng.random() < p_mixture:
            j = int(rng.integers(len(g)))
            while formula[j] == formula[i]:
                j = int(rng.integers(len(g)))
            a = float(rng.uniform(*config.weight))
            curve = (1.0 - a) * curve + a * phase(j)
            w = min(a, 1.0 - a)
        q = QMAX_LEVELS[int(rng.integers(len(QMAX_LEVELS)))]
        if q < 23.0:
            curve = curve @ _qmax_filter(npts, q)
        du = round(float(rng.uniform(*config.broadening)), 3)
        if du > 0:
            curve = curve @ _broadening_filter(npts, du)
        curve = extra_qdamp(curve, r, float(rng.uniform(*config.qdamp)), 0.04)
        curve = add_baseline(curve, r, float(rng.uniform(*config.baseline)))
        yield add_noise(curve, float(rng.uniform(*config.noise)), rng), w
