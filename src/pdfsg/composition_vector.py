"""The composition vector a composition-aware network reads beside G(r).

A composition (element → amount, any scale) becomes one fixed-length float32 vector:

====================  =====  ==========================================================
block                 size   what
====================  =====  ==========================================================
element fractions     103    x_Z = n_Z / Σ n, Z = 1 (H) … 103 (Lr)
group fractions       19     Σ x_Z over the elements of each periodic-table group 1–18,
                             and the f block (La–Lu, Ac–Lr) as a 19th
period fractions      7      Σ x_Z over each period 1–7
number of species     8      one-hot 1 … 7, and 8 or more
anonymised formula    8      the fractions sorted high to low (AB2C4 → 4/7, 2/7, 1/7),
                             zero-padded
known                 1      1 when a composition is given
====================  =====  ==========================================================

"Composition unknown" is the all-zero vector (``encode(None)``), so one network serves both
modes: training withholds the composition for a share of rows.  The group and period blocks
let the network carry what it learned about one element to its chemical neighbours, the
anonymised block carries the stoichiometry alone.

:func:`perturb` is the training-time augmentation that makes a network read the nominal
compositions users give (dopants, solid solutions, off-stoichiometry) like their parent
compound: small jitter of the amounts, part of one element swapped for a chemical neighbour
(Ir → Ir0.8Rh0.2), a dopant-level element added.

No heavy imports: this module is on the prediction path.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping

import numpy as np

from pdfsg.composition import ELEMENTS as _ALL_ELEMENTS
from pdfsg.composition import formula_compositions

#: element symbols the vector covers, Z = 1 (H) … 103 (Lr): the parser's table, cut
ELEMENTS: tuple[str, ...] = _ALL_ELEMENTS[:103]
Z_OF: dict[str, int] = {s: i + 1 for i, s in enumerate(ELEMENTS)}

N_ELEMENTS = len(ELEMENTS)
N_GROUPS = 19
N_PERIODS = 7
N_SPECIES_BINS = 8
N_SORTED = 8
COMPOSITION_DIM = N_ELEMENTS + N_GROUPS + N_PERIODS + N_SPECIES_BINS + N_SORTED + 1

_PERIOD_ENDS = (2, 10, 18, 36, 54, 86, 118)


def period_and_group(z: int) -> tuple[int, int]:
    """(period 1–7, group 1–18, or 19 for the f block) of element number ``z``."""
    period = next(p for p, end in enumerate(_PERIOD_ENDS, 1) if z <= end)
    first = 1 if period == 1 else _PERIOD_ENDS[period - 2] + 1
    k = z - first  # 0-based position in the period
    if period == 1:
        return period, 1 if z == 1 else 18
    if period <= 3:
        return period, k + 1 if k < 2 else k + 11
    if period <= 5:
        return period, k + 1
    if 2 <= k <= 16:  # La…Lu, Ac…Lr
        return period, 19
    return period, k + 1 if k < 2 else k - 13


_PERIOD_OF = np.array([period_and_group(z)[0] - 1 for z in range(1, N_ELEMENTS + 1)])
_GROUP_OF = np.array([period_and_group(z)[1] - 1 for z in range(1, N_ELEMENTS + 1)])


def _as_items(composition: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """(0-based element indices, fractions) of a composition; symbols must be known."""
    idx, amt = [], []
    for symbol, amount in composition.items():
        z = Z_OF.get(symbol)
        if z is None:
            raise ValueError(f"unknown element {symbol!r} (known: H … Lr)")
        if not amount > 0:
            raise ValueError(f"amount of {symbol} must be > 0, got {amount!r}")
        idx.append(z - 1)
        amt.append(float(amount))
    if not idx:
        raise ValueError("empty composition")
    a = np.asarray(amt)
    return np.asarray(idx), a / a.sum()


def encode(composition: Mapping[str, float] | None) -> np.ndarray:
    """The composition vector (float32, length :data:`COMPOSITION_DIM`); all zeros for
    ``None`` (unknown).  Amounts are on any scale; the same element twice is not allowed
    (a Mapping cannot hold it)."""
    v = np.zeros(COMPOSITION_DIM, dtype=np.float32)
    if composition is None:
        return v
    idx, frac = _as_items(composition)
    o = 0
    np.add.at(v, o + idx, frac)
    o += N_ELEMENTS
    np.add.at(v, o + _GROUP_OF[idx], frac)
    o += N_GROUPS
    np.add.at(v, o + _PERIOD_OF[idx], frac)
    o += N_PERIODS
    v[o + min(len(idx), N_SPECIES_BINS) - 1] = 1.0
    o += N_SPECIES_BINS
    top = np.sort(frac)[::-1][:N_SORTED]
    v[o : o + top.size] = top
    o += N_SORTED
    v[o] = 1.0
    return v


def encode_many(compositions: list[Mapping[str, float] | None]) -> np.ndarray:
    """(n, COMPOSITION_DIM) float32 of :func:`encode` per composition."""
    out = np.zeros((len(compositions), COMPOSITION_DIM), dtype=np.float32)
    for i, c in enumerate(compositions):
        if c is not None:
            out[i] = encode(c)
    return out


def encode_formulas(formulas: Iterable[object]) -> np.ndarray:
    """(n, COMPOSITION_DIM) vectors of formulas (e.g. a dataset's reduced formulas)."""
    return encode_many(formula_compositions(formulas))


@functools.cache
def _neighbours(z: int) -> tuple[int, ...]:
    """Element numbers that commonly replace ``z`` in a crystal: the same group one period
    up or down (for the f block: the element 32 places away), and the next element on
    either side in the same period."""
    period, group = period_and_group(z)
    out = []
    for other in range(1, N_ELEMENTS + 1):
        p, g = period_and_group(other)
        if other != z and (
            (g == group and abs(p - period) == 1 and (g != 19 or abs(other - z) == 32))
            or (p == period and abs(other - z) == 1)
        ):
            out.append(other)
    return tuple(out)


#: elements users most often dope with (a dopant drawn at random from these)
_DOPANTS = tuple(
    Z_OF[s]
    for s in "Li Na Mg Al Si Ca Ti V Cr Mn Fe Co Ni Cu Zn Ga Sr Y Zr Nb Sn Sb Ba La Ce Nd "
    "Eu Gd Bi".split()
)


def perturb(
    composition: Mapping[str, float],
    rng: np.random.Generator,
    *,
    p_exact: float = 0.5,
    jitter: float = 0.05,
    p_substitute: float = 0.3,
    max_substitute: float = 0.3,
    p_dopant: float = 0.2,
    max_dopant: float = 0.03,
) -> dict[str, float]:
    """A nominal-composition version of ``composition`` for training (see module docstring).

    With probability ``p_exact`` the composition comes back unchanged; otherwise each amount
    is multiplied by exp(N(0, jitter)); with probability ``p_substitute`` a fraction
    U(0.02, max_substitute) of one element's amount goes to a chemical neighbour not already
    present; with probability ``p_dopant`` a dopant element not present is added at a
    fraction U(0.005, max_dopant) of the total.
    """
    comp = {k: float(v) for k, v in composition.items()}
    if rng.random() < p_exact:
        return comp
    for k in comp:
        comp[k] *= float(np.exp(rng.normal(0.0, jitter)))
    total = sum(comp.values())
    present = {Z_OF[k] for k in comp}
    if rng.random() < p_substitute:
        host = list(comp)[int(rng.integers(len(comp)))]
        options = [z for z in _neighbours(Z_OF[host]) if z not in present]
        if options:
            guest = ELEMENTS[options[int(rng.integers(len(options)))] - 1]
            moved = comp[host] * float(rng.uniform(0.02, max_substitute))
            comp[host] -= moved
            comp[guest] = moved
            present.add(Z_OF[guest])
    if rng.random() < p_dopant:
        options = [z for z in _DOPANTS if z not in present]
        if options:
            dopant = ELEMENTS[options[int(rng.integers(len(options)))] - 1]
            comp[dopant] = total * float(rng.uniform(0.005, max_dopant))
    return comp
