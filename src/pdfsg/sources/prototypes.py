"""The ``prototypes:N[,seed=S]`` source: classic structure types with random elements.

:data:`PROTOTYPES` lists structure types every PDF lab meets (fcc, bcc, hcp, diamond, rock
salt, perovskite, spinel...); :func:`make_prototype` builds one with random elements and a
volume from the per-element volumes of a statistics table (:mod:`pdfsg.sources.stats`), and
:func:`prototype_records` is the source that ``pdfsg dataset build`` reads.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from pdfsg.errors import ParamsError
from pdfsg.sources import StructureRecord, count_and_options
from pdfsg.sources.stats import SyntheticStats, load_stats

if TYPE_CHECKING:  # pragma: no cover
    from pymatgen.core import Structure

__all__ = ["PROTOTYPES", "make_prototype", "prototype_records"]

#: Structure types every PDF lab meets (elements and classic binaries/ternaries), which the
#: Materials Project subsets of the shared data lack or hold few of (e.g. no elemental
#: crystal at all).  name -> (space group, lattice kind, c/a, sites).  A site is (role, frac
#: coords, free): ``free`` is the direction in which the site's free parameter moves (or
#: None).  Roles: M and N are (different) metals, D a diamond-forming element, and any other
#: role is a space-separated list of the elements to choose from.
_HALIDES = "F Cl Br I"
PROTOTYPES: dict[str, tuple[str, str, float, list[tuple[str, tuple, tuple | None]]]] = {
    "fcc": ("Fm-3m", "cubic", 1.0, [("M", (0, 0, 0), None)]),
    "bcc": ("Im-3m", "cubic", 1.0, [("M", (0, 0, 0), None)]),
    "hcp": ("P6_3/mmc", "hexagonal", 1.63, [("M", (1 / 3, 2 / 3, 0.25), None)]),
    # the one elemental simple-cubic crystal is alpha-Po: a random metal here taught the
    # networks that one element with an fcc-like PDF is Pm-3m (L1_2 ordering needs two)
    "sc": ("Pm-3m", "cubic", 1.0, [("Po", (0, 0, 0), None)]),
    # Fd-3m and I4_1/amd in pymatgen's default setting (origin choice 1)
    "diamond": ("Fd-3m", "cubic", 1.0, [("D", (0, 0, 0), None)]),
    "rocksalt": (
        "Fm-3m",
        "cubic",
        1.0,
        [("M", (0, 0, 0), None), ("O S Se Te N " + _HALIDES, (0.5, 0.5, 0.5), None)],
    ),
    "cscl": ("Pm-3m", "cubic", 1.0, [("M", (0, 0, 0), None), ("N", (0.5, 0.5, 0.5), None)]),
    "zincblende": (
        "F-43m",
        "cubic",
        1.0,
        [("M", (0, 0, 0), None), ("S Se Te N P As Sb", (0.25, 0.25, 0.25), None)],
    ),
    "wurtzite": (
        "P6_3mc",
        "hexagonal",
        1.63,
        [("M", (1 / 3, 2 / 3, 0), None), ("O S Se N", (1 / 3, 2 / 3, 0.375), (0, 0, 1))],
    ),
    "fluorite": ("Fm-3m", "cubic", 1.0, [("M", (0, 0, 0), None), ("F O Cl", (0.25,) * 3, None)]),
    "perovskite": (
        "Pm-3m",
        "cubic",
        1.0,
        [("M", (0, 0, 0), None), ("N", (0.5, 0.5, 0.5), None), ("O F Cl Br", (0.5, 0.5, 0), None)],
    ),
    "L12": ("Pm-3m", "cubic", 1.0, [("M", (0, 0, 0), None), ("N", (0, 0.5, 0.5), None)]),
    "rutile": (
        "P4_2/mnm",
        "tetragonal",
        0.64,
        [("M", (0, 0, 0), None), ("O F", (0.305, 0.305, 0), (1, 1, 0))],
    ),
    "nias": (
        "P6_3/mmc",
        "hexagonal",
        1.35,
        [("M", (0, 0, 0), None), ("S Se Te As Sb", (1 / 3, 2 / 3, 0.25), None)],
    ),
    "cdi2": (
        "P-3m1",
        "hexagonal",
        1.6,
        [("M", (0, 0, 0), None), ("S Se Te Cl Br I", (1 / 3, 2 / 3, 0.25), (0, 0, 1))],
    ),
    "spinel": (
        "Fd-3m",
        "cubic",
        1.0,
        [
            ("M", (0, 0, 0), None),
            ("N", (0.625, 0.625, 0.625), None),
            ("O S Se", (0.385, 0.385, 0.385), (1, 1, 1)),
        ],
    ),
    "anatase": (
        "I4_1/amd",
        "tetragonal",
        2.51,
        [("M", (0, 0, 0), None), ("O", (0, 0, 0.208), (0, 0, 1))],
    ),
}
_METALS = (
    "Li Na K Rb Cs Be Mg Ca Sr Ba Sc Y La Ce Nd Ti Zr Hf V Nb Ta Cr Mo W Mn Fe Co Ni "
    "Cu Ag Au Zn Cd Al Ga In Tl Sn Pb Pd Pt Rh Ir Ru Os Re Bi"
).split()
_DIAMOND = "C Si Ge Sn".split()


@functools.cache
def _space_group(symbol: str):
    """pymatgen's SpaceGroup of ``symbol``, built once (building one takes 0.3 s)."""
    from pymatgen.symmetry.groups import SpaceGroup

    return SpaceGroup(symbol)


def _from_space_group(symbol: str, lattice, species: list[str], coords: list) -> Structure:
    """``Structure.from_spacegroup`` with the group built once: the same orbits (tol 1e-5)."""
    from pymatgen.core import Structure

    group = _space_group(symbol)
    all_species, all_coords = [], []
    for element, xyz in zip(species, coords, strict=True):
        orbit = group.get_orbit(np.asarray(xyz, dtype=np.float64), tol=1e-5)
        all_species.extend([element] * len(orbit))
        all_coords.extend(orbit)
    return Structure(lattice, all_species, all_coords)


def make_prototype(name: str, rng: np.random.Generator, stats: SyntheticStats) -> Structure:
    """A crystal of structure type ``name`` with random elements, a volume from the per-element
    volumes of ``stats`` (log-normal scatter), c/a and free coordinates jittered."""
    from pymatgen.core import Lattice

    if name not in PROTOTYPES:
        raise ParamsError(f"unknown prototype {name!r}; choose from {sorted(PROTOTYPES)}")
    sg, kind, c_over_a, sites = PROTOTYPES[name]
    species, coords = [], []
    used: set[str] = set()
    for role, xyz, free in sites:
        pool = {"M": _METALS, "N": _METALS, "D": _DIAMOND}.get(role) or role.split()
        options = [e for e in pool if e not in used] or list(pool)
        element = str(rng.choice(options))
        used.add(element)
        species.append(element)
        c = np.array(xyz, dtype=float)
        if free is not None:
            c += rng.normal(0, 0.01) * np.array(free, dtype=float)
        coords.append(c)
    ratio = c_over_a * float(np.exp(rng.normal(0, 0.03)))
    if kind == "cubic":
        lattice = Lattice.cubic(1.0)
    elif kind == "hexagonal":
        lattice = Lattice.hexagonal(1.0, ratio)
    else:
        lattice = Lattice.tetragonal(1.0, ratio)
    s = _from_space_group(sg, lattice, species, coords)
    volume = sum(stats.element_volume(sp.symbol) for sp in s.species)
    s.scale_lattice(volume * float(np.exp(rng.normal(0, 0.08))))
    return s


def prototype_records(spec: str) -> Iterator[StructureRecord]:
    """The ``prototypes:N[,seed=S]`` source of ``pdfsg dataset build``: N crystals cycling
    through :data:`PROTOTYPES` (labels come from spglib, as for any structure)."""
    n, opts = count_and_options("prototypes", spec, spec)
    try:
        seed = int(opts.pop("seed", 0))
    except ValueError as exc:
        raise ParamsError(f"bad prototypes source spec {spec!r}: {exc}") from None
    if opts or n <= 0:
        raise ParamsError(f"bad prototypes source spec {spec!r}: want N > 0 and seed=S only")
    stats = load_stats()
    names = sorted(PROTOTYPES)
    for k in range(n):
        name = names[k % len(names)]
        rng = np.random.default_rng([seed, k, 1361])
        yield StructureRecord(
            id=f"proto-{name}-{k:06d}",
            structure=make_prototype(name, rng, stats),
            origin=f"prototype {name} #{k} (seed {seed})",
        )
