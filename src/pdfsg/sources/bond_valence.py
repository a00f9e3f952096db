r"""Bond valences of one crystal: how well its cation–anion distances satisfy each ion's valence.

Pauling's second rule, in Brown's bond-valence form: a bond of length d between cation i and
anion j carries valence s_ij = exp((R0_ij − d) / B) with B = 0.37 Å, and the valences of an
ion's bonds add up to its oxidation state, Σ_j s_ij ≈ |V_i|.  R0 of any cation–anion pair comes
from the element parameters of Brese & O'Keeffe (Acta Cryst. B 47, 192, 1991; pymatgen's
``bvparam_1991.yaml``, 75 elements):

    R0_ij = r_i + r_j − r_i r_j (√c_i − √c_j)² / (c_i r_i + c_j r_j).

Oxidation states come from pymatgen's most probable charge-balanced guess for the
composition (:meth:`~pymatgen.core.Composition.oxi_state_guesses`); anions are the elements
with a negative one, and a composition needs one of those that pymatgen's bond-valence
analyser allows as anions (H, B, C, Si, N, P, As, Sb, O, S, Se, Te, halogens).  A
composition with no charge-balanced guess (random crystals often have none) gets typical
valences instead, scaled to balance (:func:`_typical_valences`): the bonds are then as long
as such ions' bonds are, which is what the PDF sees.  A composition without anions, with
an element lacking parameters or without a charge-balanced guess has no bond-valence model
(:func:`ionic_model` returns None): intermetallics are left to the generator's contact energy.

The synthetic generator's relaxation (:func:`pdfsg.sources.synthetic._relax`) moves free
Wyckoff parameters to lower the squared relative deviations of the bond-valence sums (the
global instability index, squared and relative), so that random coordinates become
coordination polyhedra with real bond lengths.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from pymatgen.core import Structure

__all__ = [
    "BOND_SOFTNESS",
    "IonicModel",
    "bond_valence_scale",
    "bond_valence_sums",
    "ionic_model",
    "pair_r0",
    "valence_deviations",
]

#: B [Å] of s = exp((R0 − d) / B), Brown & Altermatt 1985
BOND_SOFTNESS = 0.37
#: bonds longer than R0 + this [Å] are ignored (s < 0.02)
BOND_CUTOFF = 1.5
#: largest ratio of cation to anion charge (or its inverse) that typical valences are scaled
#: to balance
MAX_IMBALANCE = 1.5
#: most atoms in a reduced formula that pymatgen's oxidation-state search is given
_MAX_FORMULA_SITES = 40


@dataclass(frozen=True)
class IonicModel:
    """Per element of a composition: oxidation state and, per cation–anion pair, R0 [Å]."""

    valence: dict[str, float]
    r0: dict[tuple[str, str], float]  # (a, b) -> R0, both orders; only cation-anion pairs

    def arrays(self, symbols: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """For atoms with these symbols: |valence| (n,) and R0 (n, n), NaN where no bond."""
        v = np.array([abs(self.valence[s]) for s in symbols], float)
        r0 = np.array([[self.r0.get((a, b), np.nan) for b in symbols] for a in symbols], float)
        return v, r0


@functools.cache
def _element_params() -> tuple[dict[str, tuple[float, float]], frozenset[str]]:
    from pymatgen.analysis.bond_valence import BV_PARAMS, ELECTRONEG

    params = {el.symbol: (float(p["r"]), float(p["c"])) for el, p in BV_PARAMS.items()}
    return params, frozenset(el.symbol for el in ELECTRONEG)


def pair_r0(a: str, b: str) -> float:
    """Brese–O'Keeffe R0 [Å] of a bond between elements a and b."""
    params, _ = _element_params()
    (r1, c1), (r2, c2) = params[a], params[b]
    return r1 + r2 - r1 * r2 * (np.sqrt(c1) - np.sqrt(c2)) ** 2 / (c1 * r1 + c2 * r2)


@functools.lru_cache(maxsize=4096)
def _ionic_model(formula: tuple[tuple[str, float], ...]) -> IonicModel | None:
    import warnings

    from pymatgen.core import Composition

    params, anion_like = _element_params()
    elements = [e for e, _ in formula]
    if not any(e in anion_like for e in elements) or any(e not in params for e in elements):
        return None
    comp = Composition(dict(formula)).reduced_composition
    guesses = []
    if comp.num_atoms <= _MAX_FORMULA_SITES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                guesses = comp.oxi_state_guesses(max_sites=-1)
            except ValueError:  # non-integer amounts
                guesses = []
    if guesses:
        valence = {e: float(guesses[0].get(e, 0.0)) for e in elements}
    else:
        valence = _typical_valences(dict(formula))
    if not valence or any(v == 0.0 for v in valence.values()) or min(valence.values()) > 0:
        return None
    r0 = {}
    for a in elements:
        for b in elements:
            if valence[a] * valence[b] < 0:
                r0[(a, b)] = float(pair_r0(a, b))
    return IonicModel(valence, r0)


def _typical_valences(counts: dict[str, float]) -> dict[str, float]:
    """Valences of a composition without a charge-balanced guess: the most electronegative
    element is the anion (with its common negative state), the others cations (mean of
    their common positive states); both sides are scaled by one geometric-mean factor so
    that the charges balance.  {} when an element has no such state or when the common
    states' charges differ by more than ``MAX_IMBALANCE`` times (no ionic crystal is near)."""
    from pymatgen.core import Element

    _, anion_like = _element_params()
    anion = max(counts, key=lambda e: Element(e).X)
    if anion not in anion_like:
        return {}
    states = {}
    for e in counts:
        common = Element(e).common_oxidation_states
        wanted = [q for q in common if (q < 0) == (e == anion)]
        if not wanted:
            return {}
        states[e] = float(max(wanted) if e == anion else np.mean(wanted))
    positive = sum(counts[e] * q for e, q in states.items() if q > 0)
    negative = -sum(counts[e] * q for e, q in states.items() if q < 0)
    if not 1 / MAX_IMBALANCE <= positive / max(negative, 1e-9) <= MAX_IMBALANCE:
        return {}
    total = np.sqrt(positive * negative)
    return {e: q * total / (positive if q > 0 else negative) for e, q in states.items()}


def ionic_model(counts: dict[str, float]) -> IonicModel | None:
    """Oxidation states and R0 of a composition (element -> atoms), or None (see module)."""
    return _ionic_model(tuple(sorted((str(e), float(n)) for e, n in counts.items())))


def bond_valence_sums(d: np.ndarray, r0: np.ndarray) -> np.ndarray:
    """Σ_j s_ij per atom i, from distances d (..., n, n) over images (leading axes summed)
    and R0 (n, n) (NaN: no bond)."""
    with np.errstate(invalid="ignore"):
        s = np.exp((r0 - d) / BOND_SOFTNESS)
        s = np.where(d < r0 + BOND_CUTOFF, s, 0.0)
    s = np.nan_to_num(s, nan=0.0)
    axes = (*range(s.ndim - 2), s.ndim - 1)
    return s.sum(axis=axes)


def _bonds(
    structure: Structure, model: IonicModel, reach: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every cation-anion pair of ``structure`` closer than ``reach`` [Å], periodic images
    included: (atom index, R0 [Å], distance [Å]) arrays, one entry per bond end."""
    neighbours = structure.get_all_neighbors(reach)
    atom, r0, d = [], [], []
    for i, site in enumerate(structure):
        for nb in neighbours[i]:
            key = (site.specie.symbol, nb.specie.symbol)
            if key in model.r0:
                atom.append(i)
                r0.append(model.r0[key])
                d.append(nb.nn_distance)
    return np.array(atom, int), np.array(r0, float), np.array(d, float)


def _deviations(
    bonds: tuple[np.ndarray, np.ndarray, np.ndarray], valence: np.ndarray, scale: float
) -> np.ndarray:
    atom, r0, d = bonds
    s = np.where(scale * d < r0 + BOND_CUTOFF, np.exp((r0 - scale * d) / BOND_SOFTNESS), 0.0)
    return (np.bincount(atom, s, minlength=len(valence)) - valence) / valence


def valence_deviations(structure: Structure, model: IonicModel) -> np.ndarray:
    """(S_i - |V_i|) / |V_i| per atom of ``structure``: its bond-valence sum against its
    oxidation state, relative."""
    valence = np.array([abs(model.valence[site.specie.symbol]) for site in structure])
    reach = max(model.r0.values(), default=0.0) + BOND_CUTOFF
    return _deviations(_bonds(structure, model, reach), valence, 1.0)


def bond_valence_scale(structure: Structure, model: IonicModel, spread: float = 0.2) -> float:
    """The isotropic length factor λ (within exp(±spread)) whose cell, λ × the structure's
    with the same fractional coordinates, brings the bond-valence sums closest to the
    valences (least squares of the relative deviations; a grid of 0.2 % steps)."""
    reach = max(model.r0.values(), default=0.0) + BOND_CUTOFF
    bonds = _bonds(structure, model, reach * np.exp(spread))
    if not len(bonds[0]):
        return 1.0
    valence = np.array([abs(model.valence[site.specie.symbol]) for site in structure])
    scales = np.exp(np.linspace(-spread, spread, int(round(2 * spread / 0.002)) + 1))
    best, best_error = 1.0, np.inf
    for lam in scales:
        error = float(np.sum(_deviations(bonds, valence, lam) ** 2))
        if error < best_error:
            best, best_error = float(lam), error
    return best
