"""Distances and symmetry of one crystal, for the synthetic generator and its statistics.

Shortest distances between atoms over all periodic images (:func:`pair_min_distances`), the
smallest distance relative to the sum of covalent radii (:func:`min_distance_ratio`, with
PyXtal's radii: the radii PyXtal places atoms with) and the space group spglib finds
(:func:`space_group_of`, 0 when none; :func:`pdfsg.structures.label_space_group` is the
labelling that raises instead).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np

from pdfsg.errors import ParamsError

if TYPE_CHECKING:  # pragma: no cover
    from pymatgen.core import Structure

__all__ = ["min_distance_ratio", "pair_min_distances", "space_group_of"]


# --------------------------------------------------------------------------- radii


@functools.cache
def _covalent_radius(symbol: str) -> float:
    """PyXtal's covalent radius [Å] (the radius its distance tolerances use)."""
    from pyxtal.database.element import Element

    try:
        r = Element(symbol).covalent_radius
    except Exception as exc:  # pyxtal raises bare errors for unknown symbols
        raise ParamsError(f"unknown element {symbol!r}") from exc
    if r is None:
        raise ParamsError(f"element {symbol!r} has no covalent radius in PyXtal's table")
    return float(r)


# --------------------------------------------------------------------------- distances


def _nearest_images(structure: Structure) -> tuple[list[str], np.ndarray]:
    """Element symbols and the (n, n) matrix of shortest distances [Å] between atoms i and j
    over all periodic images (diagonal: distance to the nearest image of itself).

    The cell is Niggli-reduced and the minimum-image difference of every pair is checked
    against the 27 neighbouring cells, which finds the nearest image in a reduced cell.
    """
    reduced = structure.get_reduced_structure(reduction_algo="niggli")
    lattice = np.asarray(reduced.lattice.matrix, dtype=np.float64)
    frac = np.asarray(reduced.frac_coords, dtype=np.float64)
    symbols = [s.specie.symbol for s in reduced]
    return symbols, _image_distances(lattice, frac)


def _image_distances(lattice: np.ndarray, frac: np.ndarray) -> np.ndarray:
    diff = frac[None, :, :] - frac[:, None, :]
    diff -= np.round(diff)
    cart = diff @ lattice
    shifts = np.stack(np.meshgrid(*[np.arange(-1, 2)] * 3, indexing="ij"), -1).reshape(-1, 3)
    best = np.full(diff.shape[:2], np.inf)
    for t in shifts @ lattice:
        d = np.linalg.norm(cart + t, axis=-1)
        best = np.minimum(best, np.where(d > 1e-8, d, np.inf))
    return best


def min_distance_ratio(structure: Structure) -> float:
    """Smallest d_ij / (r_i + r_j) over all atom pairs (periodic images included), with r
    PyXtal's covalent radii."""
    symbols, d = _nearest_images(structure)
    radii = np.array([_covalent_radius(e) for e in symbols])
    return float(np.min(d / (radii[:, None] + radii[None, :])))


def _pair_key(a: str, b: str) -> str:
    return f"{a} {b}" if a <= b else f"{b} {a}"


def pair_min_distances(structure: Structure) -> dict[str, float]:
    """Shortest distance [Å] between atoms of each pair of elements (``"Cl Na"``, ``"O O"``)."""
    symbols, d = _nearest_images(structure)
    out: dict[str, float] = {}
    arr = np.array(symbols)
    elements = sorted(set(symbols))
    for i, a in enumerate(elements):
        for b in elements[i:]:
            key = _pair_key(a, b)
            out[key] = float(np.min(d[np.ix_(arr == a, arr == b)]))
    return out


def space_group_of(structure: Structure, symprec: float = 0.1) -> int:
    """Space-group number that spglib finds, 0 when it finds none
    (:func:`pdfsg.structures.label_space_group` without the error)."""
    from pdfsg.errors import StructureError
    from pdfsg.structures import label_space_group

    try:
        return label_space_group(structure, symprec)
    except StructureError:
        return 0
