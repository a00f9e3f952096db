"""Is this a PDF at all? Checks on the measured signal itself, before any model.

A reduced PDF is the sine Fourier transform of F(Q) = Q[S(Q) − 1] up to the measurement's
Qmax, so it holds no power above Qmax: on a grid finer than π/Qmax its spectrum stops there.
Noise without structure (a file of random numbers, a detector read-out without sample)
spreads its power evenly up to the grid's Nyquist frequency π/Δr.  The share of the
curve's power above 1.1·Qmax is therefore ~0 for real measurements (below 0.002 on every
file of ``../shared/data/experimental``, even against the model's Qmax of 23 1/Å) and ~0.9
for white noise on a 0.01 Å grid.  Curves already on a grid near π/Qmax cannot be checked
this way (their Nyquist frequency is Qmax itself); the check then says nothing.

``benchmarks/input_checks.py`` measures detection and false-alarm rates.
"""

from __future__ import annotations

import functools
import math

import numpy as np

#: out-of-band power share above which a warning says the curve is noisy
NOISY = 0.1
#: out-of-band power share above which the curve is called mostly noise
MOSTLY_NOISE = 0.5
#: the check needs a grid whose Nyquist frequency π/Δr is at least this many times Qmax
MIN_OVERSAMPLING = 1.5


def out_of_band_fraction(r: np.ndarray, g: np.ndarray, qmax: float) -> float | None:
    """Share of the power of G(r) (linear trend removed, Hann-windowed) at Q > 1.1·qmax, or
    None when the grid is too coarse to tell (π/Δr < 1.5·qmax) or too short (< 32 points)."""
    r = np.asarray(r, dtype=np.float64)
    g = np.asarray(g, dtype=np.float64)
    if r.size < 32:
        return None
    h = float(np.median(np.diff(r)))
    if not (h > 0 and math.pi / h >= MIN_OVERSAMPLING * qmax):
        return None
    power = np.abs(np.fft.rfft(_detrended(r, g) * _hann(r.size))) ** 2
    total = float(power.sum())
    if total <= 0:
        return None
    q = 2 * math.pi * np.fft.rfftfreq(r.size, d=h)
    return float(power[q > 1.1 * qmax].sum() / total)


def _detrended(r: np.ndarray, g: np.ndarray) -> np.ndarray:
    """g minus its least-squares line in r (closed form: np.polyfit's answer, 5x faster)."""
    rc = r - r.mean()
    gc = g - g.mean()
    return gc - (rc @ gc) / (rc @ rc) * rc


@functools.lru_cache(maxsize=8)
def _hann(n: int) -> np.ndarray:
    """The Hann window of ``n`` points (read-only; a series shares its length)."""
    w = np.hanning(n)
    w.flags.writeable = False
    return w


def noise_warning(r: np.ndarray, g: np.ndarray, qmax: float, source: str) -> str | None:
    """A one-line warning when most (or much) of the curve's power lies above ``qmax``
    [1/Å]: noise, not a PDF band-limited at that Qmax."""
    frac = out_of_band_fraction(r, g, qmax)
    if frac is None or frac < NOISY:
        return None
    if frac >= MOSTLY_NOISE:
        return (
            f"{source}: {frac:.0%} of the curve's power lies above Qmax = {qmax:g} 1/Å: it "
            "is mostly noise, not a PDF; the ranking below means nothing"
        )
    return (
        f"{source}: {frac:.0%} of the curve's power lies above Qmax = {qmax:g} 1/Å: the data "
        "are noisy; the ranking is less reliable than its probabilities say"
    )
