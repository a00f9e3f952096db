"""Measurement realism: one function per effect that makes a simulated PDF look measured.

Measured PDFs differ from the paper's fixed Table 2 settings.  Each effect below is one
function with its range as arguments; :class:`AugmentConfig` collects the ranges and
:func:`augmented_pdfs` applies a random draw of all of them to one structure (used at
dataset build time).  The effects:

- instrument / sample settings that change the simulation itself, drawn per copy by
  :func:`draw_params`: Qmax (data with Qmax above the model's are band-limited to it by
  :mod:`pdfsg.preprocess`, so draws above it are clipped), Qdamp, Qbroad, ADP (Uiso), X-ray
  vs neutron weights;
- :func:`strain_cell`: isotropic lattice strain (± a few %);
- :func:`particle_envelope`: the spherical-particle envelope of a nanoparticle of diameter d;
- :func:`add_noise`: Gaussian noise, relative to max|G|;
- :func:`add_baseline`: a small linear baseline slope;
- data that stop before the model's rmax are handled by models trained on a shorter grid
  (see :mod:`pdfsg.predict`), not here.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from pdfsg.errors import ParamsError
from pdfsg.params import PdfParams
from pdfsg.pdf import CellArrays, simulate_cell


def _check_range(name: str, lo_hi: tuple[float, float], lower: float | None = None) -> None:
    lo, hi = lo_hi
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ParamsError(f"augmentation range {name} must be finite, got {lo_hi}")
    if lo > hi:
        raise ParamsError(f"augmentation range {name} has min > max: {lo} > {hi}")
    if lower is not None and lo < lower:
        raise ParamsError(f"augmentation range {name} must be >= {lower}, got {lo}")


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the measurement effects (uniform draws unless noted).

    Attributes
    ----------
    qmax : (min, max) [1/Å]; values above the model grid's qmax are clipped to it
    qdamp : (min, max) [1/Å]
    qbroad : (min, max) [1/Å]
    uiso : (min, max) [Å²]
    strain : (min, max), fractional isotropic lattice strain
    particle_diameter : (min, max) [Å], log-uniform; applied with probability ``p_particle``
    p_particle : probability that a copy is a finite spherical particle (else bulk)
    noise : (min, max) Gaussian noise sigma relative to max|G|
    baseline : (min, max) slope of an added linear baseline, relative to max|G| per 30 Å
    p_neutron : probability of neutron scattering weights instead of X-ray
    copies : augmented copies per structure (the clean paper-setting curve is extra)
    """

    qmax: tuple[float, float] = (14.0, 35.0)
    qdamp: tuple[float, float] = (0.01, 0.08)
    qbroad: tuple[float, float] = (0.0, 0.03)
    uiso: tuple[float, float] = (0.002, 0.03)
    strain: tuple[float, float] = (-0.03, 0.03)
    particle_diameter: tuple[float, float] = (15.0, 500.0)
    p_particle: float = 0.3
    noise: tuple[float, float] = (0.0, 0.04)
    baseline: tuple[float, float] = (-0.05, 0.05)
    p_neutron: float = 0.2
    copies: int = 4
    pool_size: int = 24

    def __post_init__(self) -> None:
        _check_range("qmax", self.qmax, lower=1.0)
        _check_range("qdamp", self.qdamp, lower=0.0)
        _check_range("qbroad", self.qbroad, lower=0.0)
        _check_range("uiso", self.uiso, lower=0.0)
        _check_range("strain", self.strain, lower=-0.5)
        _check_range("particle_diameter", self.particle_diameter, lower=1.0)
        _check_range("noise", self.noise, lower=0.0)
        _check_range("baseline", self.baseline)
        for name in ("p_particle", "p_neutron"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ParamsError(f"augmentation probability {name} must be in [0, 1], got {p}")
        if self.copies < 0:
            raise ParamsError(f"augmentation copies must be >= 0, got {self.copies}")
        if self.pool_size < 1:
            raise ParamsError(f"augmentation pool_size must be >= 1, got {self.pool_size}")

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


def draw_params(base: PdfParams, cfg: AugmentConfig, rng: np.random.Generator) -> PdfParams:
    """Random instrument/sample settings on ``base``'s r grid (rmin, rmax, rstep, qmin kept).

    Qmax is clipped to ``base.qmax``: the model's grid is Nyquist-sampled for it, and
    measured data with a higher Qmax are band-limited down to it before prediction.
    """
    qmax = min(float(rng.uniform(*cfg.qmax)), base.qmax)
    return base.replace(
        qmax=max(qmax, base.qmin + 1.0),
        qdamp=float(rng.uniform(*cfg.qdamp)),
        qbroad=float(rng.uniform(*cfg.qbroad)),
        uiso=max(float(rng.uniform(*cfg.uiso)), 1e-4),
        radiation="neutron" if rng.random() < cfg.p_neutron else "xray",
    )


def strain_cell(cell: CellArrays, strain: float) -> CellArrays:
    """Scale every length of the cell by (1 + strain)."""
    if strain <= -1:
        raise ParamsError(f"strain must be > -1, got {strain}")
    f = 1.0 + strain
    return CellArrays(
        lattice=cell.lattice * f, cart=cell.cart * f, weights=cell.weights, species=cell.species
    )


def particle_envelope(r: np.ndarray, diameter: float) -> np.ndarray:
    """Spherical-particle shape function: 1 - 3r/2d + r³/2d³ for r < d, else 0 (d in Å)."""
    if diameter <= 0:
        raise ParamsError(f"particle diameter must be > 0, got {diameter}")
    x = np.asarray(r, dtype=np.float64) / diameter
    return np.where(x < 1.0, 1.0 - 1.5 * x + 0.5 * x**3, 0.0)


def add_noise(g: np.ndarray, sigma_rel: float, rng: np.random.Generator) -> np.ndarray:
    """Add Gaussian noise of standard deviation ``sigma_rel * max|G|``."""
    if sigma_rel < 0:
        raise ParamsError(f"noise level must be >= 0, got {sigma_rel}")
    scale = sigma_rel * float(np.max(np.abs(g)))
    return g + rng.normal(0.0, scale, size=np.shape(g)) if scale > 0 else np.array(g, copy=True)


def add_baseline(g: np.ndarray, r: np.ndarray, slope_rel: float) -> np.ndarray:
    """Add a linear baseline rising by ``slope_rel * max|G|`` per 30 Å, zero at r[0]."""
    scale = slope_rel * float(np.max(np.abs(g))) / 30.0
    return g + scale * (np.asarray(r) - r[0])


class ParamsPool:
    """A fixed pool of drawn settings, so each worker builds a few cached operators only."""

    def __init__(self, base: PdfParams, cfg: AugmentConfig, seed: int) -> None:
        rng = np.random.default_rng([seed, 7919])
        self.params = [draw_params(base, cfg, rng) for _ in range(cfg.pool_size)]

    def choose(self, rng: np.random.Generator) -> PdfParams:
        return self.params[int(rng.integers(len(self.params)))]


def augmented_pdfs(
    cell_xray: CellArrays,
    cell_neutron: CellArrays | None,
    base: PdfParams,
    cfg: AugmentConfig,
    rng: np.random.Generator,
    pool: ParamsPool,
) -> Iterator[tuple[np.ndarray, dict]]:
    """Yield ``cfg.copies`` augmented G(r) on ``base.r_grid()`` with what was drawn for each.

    ``cell_neutron`` carries neutron weights (None when an element has no tabulated length:
    then X-ray weights are used for that copy).
    """
    r = base.r_grid()
    for _ in range(cfg.copies):
        p = pool.choose(rng)
        cell = (
            cell_neutron if (p.radiation == "neutron" and cell_neutron is not None) else cell_xray
        )
        strain = float(rng.uniform(*cfg.strain))
        g = simulate_cell(strain_cell(cell, strain), p)
        diameter = math.inf
        if rng.random() < cfg.p_particle:
            lo, hi = cfg.particle_diameter
            diameter = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
            g = g * particle_envelope(r, diameter)
        slope = float(rng.uniform(*cfg.baseline))
        g = add_baseline(g, r, slope)
        noise = float(rng.uniform(*cfg.noise))
        g = add_noise(g, noise, rng)
        yield (
            g,
            {
                "qmax": p.qmax,
                "qdamp": p.qdamp,
                "qbroad": p.qbroad,
                "uiso": p.uiso,
                "radiation": p.radiation if cell is cell_neutron else "xray",
                "strain": strain,
                "diameter": diameter,
                "noise": noise,
                "baseline": slope,
            },
        )


# --------------------------------------------------------------------------- on the fly


def lower_qmax(g: np.ndarray, r: np.ndarray, qmax: float) -> np.ndarray:
    """Band-limit curves G(r) (rows) on the uniform grid ``r`` to ``qmax``: the termination
    of a measurement with a lower Qmax (sine-transform filter, G odd in r)."""
    from pdfsg.pdf import band_pass_matrix

    step = float(r[1] - r[0])
    # the curve is known from r[0]; below it G ~ -4πρ0 r is smooth and tends to 0
    fine = np.arange(step, r[0], step)
    r_all = np.concatenate([fine, r])
    k = band_pass_matrix(r, r_all, step, 0.0, qmax)
    g = np.atleast_2d(g)
    lead = g[:, :1] * (fine / r[0])[None, :]  # linear to 0 at r = 0
    return np.concatenate([lead, g], axis=1) @ k.T


@functools.lru_cache(maxsize=32)
def _qmax_filter(r_bytes: bytes, qmax: float) -> np.ndarray:
    r = np.frombuffer(r_bytes)
    return lower_qmax(np.eye(r.size), r, qmax)  # row i: filtered unit vector i


def _lower_qmax_cached(r_bytes: bytes, qmax: float, g: np.ndarray) -> np.ndarray:
    return g @ _qmax_filter(r_bytes, qmax)


def extra_qdamp(g: np.ndarray, r: np.ndarray, qdamp: float, qdamp_base: float) -> np.ndarray:
    """Damp curves simulated with ``qdamp_base`` as if measured with a larger ``qdamp``."""
    if qdamp <= qdamp_base:
        return np.array(g, copy=True)
    return g * np.exp(-0.5 * (qdamp**2 - qdamp_base**2) * np.asarray(r) ** 2)


def strain_curve(g: np.ndarray, r: np.ndarray, strain: float) -> np.ndarray:
    """Stretch a curve in r by (1 + strain) (peaks move outwards for strain > 0)."""
    return np.interp(np.asarray(r) / (1.0 + strain), r, g)


def on_the_fly(
    cfg: AugmentConfig, params: PdfParams, share: float = 1.0
) -> Callable[..., np.ndarray]:
    """A ``train(..., augment=...)`` callable: the effects that act on a finished curve
    (lower Qmax, extra Qdamp, strain, particle envelope, baseline, noise) applied to a batch
    of raw G simulated with ``params``.  Effects that need the structure (ADP, Qbroad,
    neutron weights) belong to dataset build (:func:`augmented_pdfs`).

    ``share`` (0 < share <= 1) is the chance that a row of a batch gets the effects; the
    other rows pass unchanged, so a model still sees clean curves (e.g. rows that are
    clean-only, like structure-type variants, seen measured-like a ``share`` of the time).
    The callable's ``description`` (a dict) says what it does, for the training manifest.
    """
    if not 0.0 < share <= 1.0:
        raise ParamsError(f"on-the-fly augmentation share must be in (0, 1], got {share}")
    r = params.r_grid()
    # Qmax draws are rounded to a few levels so the filters can be cached
    levels = np.linspace(max(cfg.qmax[0], 1.0), params.qmax, 6)[:-1]

    def apply(batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = np.array(batch, dtype=np.float64, copy=True)
        for i in range(out.shape[0]):
            if share < 1.0 and rng.random() >= share:
                continue
            g = out[i]
            q = float(rng.uniform(*cfg.qmax))
            if q < params.qmax:
                g = _lower_qmax_cached(r.tobytes(), float(levels[np.argmin(np.abs(levels - q))]), g)
            g = extra_qdamp(g, r, float(rng.uniform(*cfg.qdamp)), params.qdamp)
            g = strain_curve(g, r, float(rng.uniform(*cfg.strain)))
            if rng.random() < cfg.p_particle:
                lo, hi = cfg.particle_diameter
                g = g * particle_envelope(
                    r, float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
                )
            g = add_baseline(g, r, float(rng.uniform(*cfg.baseline)))
            out[i] = add_noise(g, float(rng.uniform(*cfg.noise)), rng)
        return out

    apply.description = {  # type: ignore[attr-defined]
        "kind": "on the fly (pdfsg.augment.on_the_fly)",
        "share_of_rows": share,
        "config": cfg.to_dict(),
    }
    return apply
