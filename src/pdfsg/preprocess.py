r"""Turn a G(r) curve into model input: band-limit, resample onto the model's r grid, normalise.

:func:`prepare_input` is the one function that training and prediction both call, so that a
measured curve reaches a model exactly the way the simulated training curves did.

Resampling (:func:`resample_to_grid`)
    A measured G(r) is the truncated sine transform of F(Q),

    .. math:: G(r) = \frac{2}{\pi}\int_0^{Q_\mathrm{max}} F(Q)\sin(Qr)\,dQ,

    usually on a grid much finer (0.01 Å) than the model's (π/23 ≈ 0.137 Å) and often with a
    larger Qmax than the model was trained with.  Picking the nearest points would alias the
    information above the model's Qmax into its input.  Instead the curve is first
    band-limited to :math:`q_c = \min(Q_\mathrm{max,target}, Q_\mathrm{max,data}, \pi/\Delta r)`
    with the kernel of an ideal Fourier cut, treating G as odd in r (G(-r) = -G(r)):

    .. math::

        G_{q_c}(r) = \int_0^{\infty} G(r')\,K(r, r')\,dr', \qquad
        K(r, r') = \frac{1}{\pi}\left[\frac{\sin q_c(r-r')}{r-r'}
                                    - \frac{\sin q_c(r+r')}{r+r'}\right],

    evaluated directly at the output points (a sum over the data samples: for a curve
    band-limited below the Nyquist frequency of its grid this sum is exact, Whittaker-Shannon).
    This is the same filter that :mod:`pdfsg.pdf` uses to put termination ripples into the
    simulated training curves, so a curve measured to Qmax = 40 1/Å becomes, up to effects
    at the end of its range, the curve that would have been measured to Qmax = 23 1/Å.

Normalisation (:func:`normalize_minmax`)
    eq. 4 of Liu et al. (2019): X = (G - min G) / (max G - min G).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from pdfsg.errors import PdfFileError
from pdfsg.params import PdfParams

__all__ = [
    "MAX_START_GAP",
    "MIN_DATA_RMAX",
    "NYQUIST_TOLERANCE",
    "PreparedInput",
    "UnusableDataError",
    "check_sampling",
    "normalize_minmax",
    "prepare_input",
    "resample_to_grid",
]

#: smallest upper end [Å] of a measured curve that is still worth classifying
MIN_DATA_RMAX = 10.0
#: largest gap [Å] allowed between the model grid's rmin and the first usable data point
MAX_START_GAP = 1.0
#: extension [Å] beyond the end of the data, filled with the last value, that softens the
#: edge effect of the Fourier filter at the last covered points
EDGE_PAD = 1.5
#: entries of the filter matrix built at a time (bounds the memory to some 100 MB)
_BLOCK_ENTRIES = 2_000_000
#: relative tolerance for "the same r" and "a uniform grid"
_RTOL_GRID = 1e-3
#: how much coarser than the Nyquist step π/Qmax the data's r spacing may be (rounded steps
#: such as 0.14 Å for π/23 = 0.1366 Å pass)
NYQUIST_TOLERANCE = 0.05
#: data that end at or below this r [Å] while G oscillates look like r given in nm
NM_SUSPECT_RMAX = 3.5


class UnusableDataError(PdfFileError, ValueError):
    """A curve given as arrays cannot be turned into model input (too short, NaN...).

    It is both a :class:`~pdfsg.errors.PdfFileError` (so the CLI reports it as a user error in
    one line) and a :class:`ValueError` (the usual type for bad array arguments).
    """


@dataclass(frozen=True)
class PreparedInput:
    """A curve on a model's r grid, ready for the model.

    All arrays cover the same contiguous run of grid points, those inside the data range.

    Attributes
    ----------
    x : np.ndarray  [dimensionless, 0..1]
        Min-max normalised G (eq. 4 of the paper) over the covered grid points.
    g : np.ndarray  [Å⁻²]
        The band-limited, resampled G at the covered grid points (before normalisation).
    r : np.ndarray  [Å]
        The covered grid points: ``params.r_grid()[start_index:start_index + n_covered]``.
    covered_rmax : float  [Å]
        r of the last covered grid point.
    n_covered : int
        Number of covered grid points (``len(x)``).
    start_index : int
        Index in ``params.r_grid()`` of the first covered point (0 unless the data start
        after ``params.rmin``).
    warnings : list[str]
        One-line notes for the user (data end before the grid, Qmax lower than the model's...).
    """

    x: np.ndarray
    g: np.ndarray
    r: np.ndarray
    covered_rmax: float
    n_covered: int
    start_index: int = 0
    warnings: list[str] = field(default_factory=list)


def normalize_minmax(g: np.ndarray) -> np.ndarray:
    """Min-max normalise a curve (1-D) or each row of a 2-D array: eq. 4 of the paper.

    Parameters
    ----------
    g : np.ndarray  [Å⁻²], shape (n,) or (m, n)
        G(r) values; every row must be finite and not constant.

    Returns
    -------
    np.ndarray  [dimensionless], same shape
        ``(g - min g) / (max g - min g)`` per row, in [0, 1].  Floating input keeps its dtype
        (float32 datasets stay float32); other input becomes float64.

    Raises
    ------
    ValueError
        For an empty array, more than 2 dimensions, a non-finite value, or a constant row.
    """
    a = np.asarray(g)
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
    if a.ndim not in (1, 2):
        raise ValueError(f"normalize_minmax expects a 1-D or 2-D array, got {a.ndim}-D")
    if a.size == 0 or a.shape[-1] == 0:
        raise ValueError("normalize_minmax got an empty array")
    rows = a.reshape(1, -1) if a.ndim == 1 else a
    finite = np.isfinite(rows).all(axis=1)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        where = "" if a.ndim == 1 else f" in row {bad}"
        raise ValueError(f"normalize_minmax: non-finite value{where}")
    lo = rows.min(axis=1, keepdims=True)
    hi = rows.max(axis=1, keepdims=True)
    span = hi - lo
    flat = (span[:, 0] <= 0) | ~np.isfinite(span[:, 0])
    if flat.any():
        bad = int(np.flatnonzero(flat)[0])
        where = "the curve is" if a.ndim == 1 else f"row {bad} is"
        raise ValueError(f"normalize_minmax: {where} constant; cannot normalise")
    out = (rows - lo) / span
    return out.reshape(a.shape)


def _check_curve(r: np.ndarray, g: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(r, dtype=np.float64)
    g = np.asarray(g, dtype=np.float64)
    if r.ndim != 1 or g.ndim != 1:
        raise UnusableDataError(f"{what}: r and g must be 1-D arrays")
    if r.shape != g.shape:
        raise UnusableDataError(f"{what}: r and g differ in length ({r.size} vs {g.size})")
    if r.size < 2:
        raise UnusableDataError(f"{what}: need at least 2 points, got {r.size}")
    if not (np.isfinite(r).all() and np.isfinite(g).all()):
        raise UnusableDataError(f"{what}: r or g has a non-finite value")
    steps = np.diff(r)
    if (steps <= 0).any():
        i = int(np.flatnonzero(steps <= 0)[0]) + 1
        how = "duplicated" if steps[i - 1] == 0 else "not increasing"
        raise UnusableDataError(f"{what}: r is {how} at point {i} (r = {r[i]:g} Å)")
    if r[0] < 0:
        raise UnusableDataError(f"{what}: r starts below 0 ({r[0]:g} Å)")
    return r, g


def _sinc_pi(q: float, u: np.ndarray) -> np.ndarray:
    """sin(q u) / (π u), with its limit q/π at u = 0."""
    out = np.empty_like(u)
    small = np.abs(u) < 1e-12
    big = ~small
    out[big] = np.sin(q * u[big]) / (np.pi * u[big])
    out[small] = q / np.pi
    return out


@functools.lru_cache(maxsize=4)
def _filter_matrix(x_bytes: bytes, ru_bytes: bytes, qc: float) -> np.ndarray:
    """The filter kernel K(x_i, ru_j) at ``qc`` (read-only).  Cached: the files of a series
    share their r grid, so the matrix (at most ``_BLOCK_ENTRIES`` entries) is built once."""
    x = np.frombuffer(x_bytes)
    ru = np.frombuffer(ru_bytes)
    kernel = _kernel_by_angle_sums(x, ru, qc)
    kernel.flags.writeable = False
    return kernel


def _kernel_by_angle_sums(x: np.ndarray, ru: np.ndarray, qc: float) -> np.ndarray:
    """K(x_i, ru_j) = sinc_π(qc, x − u) − sinc_π(qc, x + u) with one sine and cosine per
    point: sin(qc(x ∓ u)) = sin(qc x) cos(qc u) ∓ cos(qc x) sin(qc u) (as :func:`_filter_long`;
    3–4× faster than a sine per entry).  Where |x ∓ u| < 1e-3 Å, where that difference of
    products would lose digits, the entry is the direct sinc (and its limit qc/π at 0)."""
    sx, cx = np.sin(qc * x)[:, None], np.cos(qc * x)[:, None]
    su, cu = np.sin(qc * ru)[None, :], np.cos(qc * ru)[None, :]
    minus = x[:, None] - ru[None, :]
    plus = x[:, None] + ru[None, :]
    a, b = sx * cu, cx * su
    with np.errstate(divide="ignore", invalid="ignore"):
        kernel = (a - b) / minus
        kernel -= (a + b) / plus
    kernel /= np.pi
    for diff, sign in ((minus, 1.0), (plus, -1.0)):
        near = np.abs(diff) < 1e-3
        if near.any():
            i, j = np.nonzero(near)
            other = plus[i, j] if sign > 0 else minus[i, j]
            kernel[i, j] = sign * (_sinc_pi(qc, diff[i, j]) - _sinc_pi(qc, other))
    return kernel


def _uniform_from_zero(r: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """The curve on a uniform grid k*h, k = 0..n-1 (G(0) = 0), and h [Å].

    A uniform grid whose points are whole multiples of its step (the usual 0, 0.01, 0.02...
    or 0.01, 0.02...) is used as is; anything else is put onto one by cubic interpolation.
    Below the first data point G is continued linearly to G(0) = 0 (below the nearest-neighbour
    distance G is close to the line -4πρ0 r), which only matters to the filter near r = 0.
    """
    n = r.size
    h = (r[-1] - r[0]) / (n - 1)
    uniform = bool(np.max(np.abs(r - (r[0] + h * np.arange(n)))) <= 1e-2 * h)
    k0 = r[0] / h
    if uniform and abs(k0 - round(k0)) <= 1e-2:
        k0i = int(round(k0))
        head = h * np.arange(k0i, dtype=np.float64)
        head_g = g[0] * head / r[0] if k0i > 0 else head
        return h * np.arange(k0i + n, dtype=np.float64), np.concatenate([head_g, g]), h
    h = float(np.median(np.diff(r)))
    from scipy.interpolate import CubicSpline

    m = int(math.floor(r[-1] / h + 1e-9)) + 1
    ru = h * np.arange(m, dtype=np.float64)
    gu = np.empty(m)
    inside = ru >= r[0]
    gu[inside] = CubicSpline(r, g)(ru[inside])
    gu[~inside] = g[0] * ru[~inside] / r[0] if r[0] > 0 else 0.0
    return ru, gu, h


def _pad_end(
    ru: np.ndarray, gu: np.ndarray, h: float, length: float
) -> tuple[np.ndarray, np.ndarray]:
    """Extend a uniform curve ``length`` Å past its end with its last value.

    The filter at the last points needs the curve on both sides; a short constant
    continuation halves the edge error compared with a step to zero (measured on pdffit2
    curves of Ni ending anywhere in 12-30 Å: mean error at the last grid point 1 % of the
    curve's amplitude instead of 2 %, worst case 2.4 % instead of 6 %; odd or even
    reflection did no better).
    """
    m = int(round(length / h))
    if m <= 0:
        return ru, gu
    return (
        np.concatenate([ru, ru[-1] + h * np.arange(1, m + 1)]),
        np.concatenate([gu, np.full(m, gu[-1])]),
    )


def resample_to_grid(
    r: np.ndarray,
    g: np.ndarray,
    r_out: np.ndarray,
    *,
    qmax_target: float,
    qmax_data: float | None = None,
) -> np.ndarray:
    """Put a G(r) curve onto another r grid, band-limited to ``qmax_target`` first.

    The curve is low-passed at ``qc = min(qmax_target, qmax_data, π/Δr)`` with the kernel of
    an ideal Fourier cut of an odd function (see the module docstring) and evaluated at
    ``r_out``; nothing is picked or linearly interpolated.  When the curve holds no
    information above ``qmax_target`` (its Nyquist frequency π/Δr or its ``qmax_data`` is not
    above it) and every ``r_out`` point is one of its points, those values are returned
    unchanged (the simulated-training-curve case).

    Parameters
    ----------
    r : np.ndarray  [Å]
        Strictly increasing, >= 0; any spacing (uniform grids from ~0 are the exact case).
    g : np.ndarray  [Å⁻²]
        G(r) at ``r``.
    r_out : np.ndarray  [Å]
        Where the band-limited curve is wanted (e.g. ``PdfParams.r_grid()``).
    qmax_target : float  [1/Å]
        The Qmax the output should correspond to (the model's ``params.qmax``).
    qmax_data : float or None  [1/Å]
        Qmax of the measurement when known (from the file header); None means unknown, and
        the curve's own sampling limit π/Δr is used.

    Returns
    -------
    np.ndarray  [Å⁻²], shape of ``r_out``
        The band-limited G at ``r_out``; NaN at points outside ``[r[0], r[-1]]`` (never
        extrapolated: the caller decides what to do with them).

    Raises
    ------
    UnusableDataError
        (a ValueError) for bad arrays: different lengths, non-finite values, r not strictly
        increasing or negative; also for a non-positive ``qmax_target`` or ``qmax_data``.
    """
    r, g = _check_curve(r, g, "resample_to_grid")
    r_out = np.asarray(r_out, dtype=np.float64)
    if not np.isfinite(r_out).all():
        raise UnusableDataError("resample_to_grid: r_out has a non-finite value")
    if not (math.isfinite(qmax_target) and qmax_target > 0):
        raise UnusableDataError(f"resample_to_grid: qmax_target must be > 0, got {qmax_target}")
    if qmax_data is not None and not (math.isfinite(qmax_data) and qmax_data > 0):
        raise UnusableDataError(f"resample_to_grid: qmax_data must be > 0, got {qmax_data}")

    flat_out = r_out.ravel()
    result = np.full(flat_out.shape, np.nan)
    h_data = float(np.median(np.diff(r)))
    tol = _RTOL_GRID * h_data
    inside = (flat_out >= r[0] - tol) & (flat_out <= r[-1] + tol)
    if not inside.any():
        return result.reshape(r_out.shape)
    x = flat_out[inside]

    band = math.pi / h_data if qmax_data is None else min(math.pi / h_data, qmax_data)
    if band <= qmax_target * (1 + 1e-6):
        idx = np.clip(np.searchsorted(r, x), 1, r.size - 1)
        nearest = np.where(np.abs(r[idx - 1] - x) <= np.abs(r[idx] - x), idx - 1, idx)
        if np.all(np.abs(r[nearest] - x) <= tol):
            result[inside] = g[nearest]
            return result.reshape(r_out.shape)

    ru, gu, h = _uniform_from_zero(r, g)
    qc = min(qmax_target, band, math.pi / h)
    ru, gu = _pad_end(ru, gu, h, EDGE_PAD)
    nx = max(1, min(x.size, _BLOCK_ENTRIES // 256))
    nr = max(256, _BLOCK_ENTRIES // nx)
    if x.size <= nx and ru.size <= nr:  # one block: the same product, its matrix cached
        result[inside] = h * (_filter_matrix(x.tobytes(), ru.tobytes(), qc) @ gu)
        return result.reshape(r_out.shape)
    result[inside] = h * _filter_long(x, ru, gu, qc, nx, nr)
    return result.reshape(r_out.shape)


def _filter_long(
    x: np.ndarray, ru: np.ndarray, gu: np.ndarray, qc: float, nx: int, nr: int
) -> np.ndarray:
    """Σ_j K(x_i, ru_j) gu_j for long inputs, in blocks, without a sine per matrix entry.

    With sin(qc(x ∓ u)) = sin(qc x) cos(qc u) ∓ cos(qc x) sin(qc u) the kernel sum becomes
    sin(qc x) Σ cos(qc u) g (1/(x−u) − 1/(x+u)) / π − cos(qc x) Σ sin(qc u) g (1/(x−u) +
    1/(x+u)) / π: one sine and cosine per point and divisions per entry (7× faster on a
    2-million-point curve, equal to the direct sum to ~1e-11).  Where x − u or x + u is 0 the
    term is its limit qc/π.
    """
    sx, cx = np.sin(qc * x), np.cos(qc * x)
    cg, sg = np.cos(qc * ru) * gu, np.sin(qc * ru) * gu
    acc = np.zeros(x.size)
    for i in range(0, x.size, nx):
        xb = x[i : i + nx, None]
        a = np.zeros(xb.shape[0])
        b = np.zeros(xb.shape[0])
        limit = np.zeros(xb.shape[0])
        for j in range(0, ru.size, nr):
            rb = ru[None, j : j + nr]
            with np.errstate(divide="ignore"):
                dm = 1.0 / (xb - rb)
                dp = 1.0 / (xb + rb)
            bad_m, bad_p = (
                ~np.isfinite(dm) | (np.abs(dm) > 1e12),
                ~np.isfinite(dp) | (np.abs(dp) > 1e12),
            )
            if bad_m.any() or bad_p.any():
                gb = gu[j : j + nr][None, :]
                limit += (bad_m * gb).sum(axis=1) - (bad_p * gb).sum(axis=1)
                dm[bad_m] = 0.0
                dp[bad_p] = 0.0
            a += (dm - dp) @ cg[j : j + nr]
            b += (dm + dp) @ sg[j : j + nr]
        acc[i : i + nx] = (sx[i : i + nx] * a - cx[i : i + nx] * b) / np.pi + limit * qc / np.pi
    return acc


def _oscillates(g: np.ndarray, min_crossings: int = 4) -> bool:
    """True when G crosses its mean at least ``min_crossings`` times (a curve with peaks)."""
    s = np.sign(g - np.mean(g))
    s = s[s != 0]
    return int(np.count_nonzero(s[1:] != s[:-1])) >= min_crossings


def check_sampling(r: np.ndarray, qmax: float, source: str = "data") -> None:
    """Refuse a curve whose r spacing cannot resolve ``qmax``.

    A curve band-limited to Qmax is fully described by samples Δr <= π/Qmax apart (Nyquist);
    coarser data have lost the peaks the model needs.  The spacing tested is the median step
    of ``r``; it may exceed π/Qmax by :data:`NYQUIST_TOLERANCE`.  ``qmax`` [1/Å] is the
    smaller of the model's Qmax and the data's (when known): data measured to a lower Qmax
    hold nothing finer than their own Nyquist step.

    Raises
    ------
    UnusableDataError
        One line naming ``source``, the spacing and the largest step allowed.
    """
    step = float(np.median(np.diff(r)))
    nyquist = math.pi / qmax
    if step > nyquist * (1 + NYQUIST_TOLERANCE):
        raise UnusableDataError(
            f"{source}: r spacing {step:.3g} Å is too coarse for Qmax = {qmax:g} 1/Å "
            f"(Nyquist step π/Qmax = {nyquist:.3g} Å); {r.size} points from {r[0]:g} to "
            f"{r[-1]:g} Å cannot be classified"
        )


def prepare_input(
    r: np.ndarray,
    g: np.ndarray,
    params: PdfParams,
    *,
    qmax_data: float | None = None,
    source: str | None = None,
) -> PreparedInput:
    """Turn a G(r) curve into the input of a model trained with ``params``.

    Resamples onto ``params.r_grid()`` band-limited to ``params.qmax``
    (:func:`resample_to_grid`), keeps the grid points inside the data range, and min-max
    normalises over them (eq. 4).  A simulated curve already on the grid passes through
    unchanged before normalisation.

    Parameters
    ----------
    r : np.ndarray  [Å]
        Strictly increasing r values of the curve.
    g : np.ndarray  [Å⁻²]
        G(r).
    params : PdfParams
        The model's settings (its grid and Qmax).
    qmax_data : float or None  [1/Å]
        Qmax of the measurement when known (``MeasuredPDF.qmax``).
    source : str or None
        Name of the curve's file, put at the start of error messages and warnings.

    Returns
    -------
    PreparedInput
        ``x``, ``g``, ``r`` on the covered grid points, ``covered_rmax``, ``n_covered``,
        ``start_index`` and one-line ``warnings`` (e.g. when the data end before
        ``params.rmax``: the predictor should then prefer a model trained for a shorter r
        range).

    Raises
    ------
    UnusableDataError
        (a PdfFileError and a ValueError) when the data end below :data:`MIN_DATA_RMAX`
        (asking whether r is in nm when they end below 3.5 Å with peaks), start more than
        :data:`MAX_START_GAP` after ``params.rmin``, are sampled too coarsely for the Qmax
        (:func:`check_sampling`), are constant on the grid, or are not a valid curve.
    """
    name = source or "data"
    r, g = _check_curve(r, g, name)
    if r[-1] < MIN_DATA_RMAX:
        hint = ""
        if r[-1] <= NM_SUSPECT_RMAX and _oscillates(g):
            hint = f"; is r in nm? (in Å the data would end at {10 * r[-1]:.1f} Å)"
        raise UnusableDataError(
            f"{name}: data end at r = {r[-1]:.2f} Å, below the minimum useful "
            f"{MIN_DATA_RMAX:g} Å{hint}"
        )
    known = qmax_data is not None and math.isfinite(qmax_data) and qmax_data > 0
    check_sampling(r, min(params.qmax, qmax_data) if known else params.qmax, name)
    if r[0] > params.rmin + MAX_START_GAP:
        raise UnusableDataError(
            f"{name}: data start at r = {r[0]:.2f} Å, more than {MAX_START_GAP:g} Å after the "
            f"model grid's rmin = {params.rmin:g} Å"
        )
    grid = params.r_grid()
    g_grid = resample_to_grid(r, g, grid, qmax_target=params.qmax, qmax_data=qmax_data)
    covered = np.flatnonzero(np.isfinite(g_grid))
    if covered.size < 2:
        raise UnusableDataError(f"{name}: data cover fewer than 2 points of the model grid")
    i0, i1 = int(covered[0]), int(covered[-1]) + 1
    g_cov = g_grid[i0:i1]
    r_cov = grid[i0:i1]
    try:
        x = normalize_minmax(g_cov)
    except ValueError as exc:
        raise UnusableDataError(f"{name}: G is constant on the model grid") from exc

    warnings: list[str] = []
    if i1 < grid.size:
        warnings.append(
            f"{name}: data end at r = {r[-1]:.2f} Å, before the model grid's last point "
            f"{grid[-1]:.2f} Å; {i1 - i0} of {grid.size} grid points covered"
        )
    if i0 > 0:
        warnings.append(
            f"{name}: data start at r = {r[0]:.2f} Å, after the model grid's rmin "
            f"{params.rmin:g} Å; the first {i0} grid points are not covered"
        )
    if qmax_data is not None and qmax_data < params.qmax * (1 - 1e-6):
        warnings.append(
            f"{name}: data Qmax = {qmax_data:g} 1/Å is below the model's {params.qmax:g} 1/Å "
            "(broader termination ripples than in training)"
        )
    return PreparedInput(
        x=x,
        g=g_cov,
        r=r_cov,
        covered_rmax=float(r_cov[-1]),
        n_covered=int(r_cov.size),
        start_index=i0,
        warnings=warnings,
    )
