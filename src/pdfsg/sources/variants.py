"""The ``variants:K:SOURCE`` source: K structure-type variants of every structure of a collection.

A variant keeps its parent's space group and structure type and changes what a real family of
compounds changes:

* **elements** — each element of the parent is replaced, with probability 0.6 (at least one
  per variant), by an element that replaces it in real crystals.  The weights are the ionic
  substitution probabilities of Hautier et al., Inorg. Chem. 50, 656 (2011), as pymatgen ships
  them (:mod:`pymatgen.analysis.structure_prediction`), summed over the oxidation states of
  the element's role in the parent (cation or anion, :func:`element_roles`).  Distinct
  elements stay distinct, so no two sites merge.
* **size** — the cell is rescaled to the new elements' volumes per atom (the fitted volumes of
  :func:`pdfsg.sources.stats.load_stats`), with a 3 % log-normal scatter;
* **shape** — a small strain (2 %, and 1° on free angles) of only the lattice parameters the
  group leaves free (none for cubic, c/a for tetragonal, trigonal and hexagonal, ...);
* **coordinates** — every atom moves by a random 0.03 Å, then the cell is symmetrised by
  spglib (tolerance 0.2 Å), so free coordinates move and atoms on special positions stay.

Every variant is checked: spglib (symprec 0.1) must find the parent's group in it, and no two
atoms may come closer, relative to the sum of their covalent radii, than 0.85 times the
parent's closest pair (or 0.6).  A variant that fails is drawn again, up to
:data:`MAX_ATTEMPTS` times, then skipped (reason ``generation_failed``).

Records are generated where they are processed (a Dask worker), like the synthetic source: each
carries ``make = partial(make_variant, parent_id, parent_cif, k, seed)``.  The id of variant k
of parent P is ``P~var<k>``; :func:`parent_id` recovers P, and a dataset build splits
train/test by parent, so variants of a test structure never train a model.

Spec: ``variants:K[,seed=S][,first=F][,train-of=DATASET.h5]:SOURCE`` — SOURCE is any
structure source (a CSV/CIF collection or another ``KIND:SPEC``); with ``train-of`` only the
parents in the training split of that dataset file get variants (the recipe of the shipped model
uses this so that its test structures have none).  ``first=F`` makes variants F .. F+K-1, so a
second build extends an earlier one (``variants:12`` then ``variants:8,first=12``) without
repeating a variant or reusing an id.
"""

from __future__ import annotations

import functools
import os
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from pdfsg.errors import ParamsError

if TYPE_CHECKING:  # pragma: no cover
    from pymatgen.core import Structure

    from pdfsg.sources import StructureRecord

#: separator between a parent's id and the variant number in a variant's id
VARIANT_SEP = "~var"
#: chance that each element of the parent is substituted (at least one always is)
P_SUBSTITUTE = 0.6
#: log-normal scatter of the rescaled volume, relative strain of free lengths, free angles [deg]
VOLUME_SCATTER = 0.03
STRAIN = 0.02
ANGLE_STRAIN_DEG = 1.0
#: random displacement of every atom before symmetrisation [Å]
JITTER_A = 0.03
SYMPREC = 0.1
#: tolerance [Å] of the symmetrisation after the jitter (looser than the jitter's spread)
SYMMETRISE_PREC = 0.2
MAX_ATTEMPTS = 6
#: elements never substituted in (noble gases, short-lived radioactive elements)
_EXCLUDED = set(
    "He Ne Ar Kr Xe Rn Tc Pm Po At Fr Ra Ac Pa Np Pu Am Cm Bk Cf Es Fm Md No Lr".split()
)


def parent_id(ident: str) -> str:
    """The parent's id of a variant id (``"mp-1~var3"`` -> ``"mp-1"``); other ids unchanged."""
    return ident.split(VARIANT_SEP, 1)[0]


#: elements that are anions in a compound holding any element outside this set
_ANION_FORMERS = set("C N P As O S Se Te F Cl Br I".split())


def element_roles(elements: list[str]) -> dict[str, int]:
    """+1 (cation) or -1 (anion) for each element of a compound: the anion formers are anions
    when any other element is present (O in SiO2, Se in PrYbSe3); in a compound of anion
    formers only (CS2, P4S3) the most electronegative one is the anion; everything else,
    intermetallics included, is a cation."""
    from pymatgen.core import Element

    anions = [e for e in elements if e in _ANION_FORMERS]
    if len(anions) == len(elements) and elements:
        anions = [max(elements, key=lambda e: Element(e).X)]
    return {e: (-1 if e in anions else 1) for e in elements}


@functools.cache
def substitution_table() -> dict[tuple[str, int], tuple[tuple[str, ...], np.ndarray]]:
    """(element, +1 cation / -1 anion) -> (replacement elements, their probabilities), from
    pymatgen's Hautier et al. ionic substitution probabilities summed over the oxidation
    states of that sign of both elements (cations replace cations, anions replace anions)."""
    from pymatgen.analysis.structure_prediction.substitution_probability import (
        SubstitutionProbability,
    )

    sp = SubstitutionProbability()
    species = [s for s in sp.species if s.symbol not in _EXCLUDED and s.oxi_state != 0]
    weight: dict[tuple[str, int], dict[str, float]] = {}
    for a in species:
        sign = 1 if a.oxi_state > 0 else -1
        for b in species:
            if a.symbol == b.symbol or (b.oxi_state > 0) != (sign > 0):
                continue
            row = weight.setdefault((a.symbol, sign), {})
            row[b.symbol] = row.get(b.symbol, 0.0) + sp.prob(a, b)
    table = {}
    for key, row in weight.items():
        names = tuple(sorted(row, key=lambda e: -row[e]))
        p = np.array([row[e] for e in names], dtype=np.float64)
        if p.sum() > 0:
            table[key] = (names, p / p.sum())
    return table


def _substitution(
    elements: list[str], rng: np.random.Generator, table: dict
) -> dict[str, str] | None:
    """A map old -> new element, injective, changing at least one element (None: impossible)."""
    roles = element_roles(elements)
    candidates = [e for e in elements if (e, roles[e]) in table]
    if not candidates:
        return None
    chosen = [e for e in candidates if rng.random() < P_SUBSTITUTE] or [
        candidates[int(rng.integers(len(candidates)))]
    ]
    mapping = {e: e for e in elements}
    taken = set(elements) - set(chosen)
    for old in chosen:
        names, p = table[(old, roles[old])]
        free = np.array([n not in taken for n in names])
        if not free.any():
            return None
        q = p * free
        new = names[int(rng.choice(len(names), p=q / q.sum()))]
        mapping[old] = new
        taken.add(new)
    return mapping


def _strained_parameters(
    abc: np.ndarray, angles: np.ndarray, number: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Lattice lengths and angles strained within the freedom of space group ``number`` (the
    cell in spglib's standard setting: unique axis b for monoclinic, hexagonal axes for
    trigonal groups)."""
    a, b, c = abc
    al, be, ga = angles
    e = lambda: float(np.exp(rng.normal(0.0, STRAIN)))  # noqa: E731
    d = lambda: float(rng.normal(0.0, ANGLE_STRAIN_DEG))  # noqa: E731
    if number >= 195:  # cubic
        pass
    elif number >= 75:  # tetragonal, trigonal, hexagonal: c/a is free
        c *= e()
    elif number >= 16:  # orthorhombic
        a, b, c = a * e(), b * e(), c * e()
    elif number >= 3:  # monoclinic
        a, b, c, be = a * e(), b * e(), c * e(), be + d()
    else:  # triclinic
        a, b, c, al, be, ga = a * e(), b * e(), c * e(), al + d(), be + d(), ga + d()
    return np.array([a, b, c]), np.array([al, be, ga])


def _lattice_from_parameters(abc: np.ndarray, angles: np.ndarray) -> np.ndarray:
    from pymatgen.core import Lattice

    return np.array(Lattice.from_parameters(*abc, *angles).matrix)


@functools.lru_cache(maxsize=8)
def _parent(ident: str, cif: str) -> tuple[int, tuple, float, list[str]]:
    """The parsed parent: its group, its standardised idealised cell, its closest-pair ratio
    and its elements (cached: a worker makes a parent's variants one after another)."""
    import spglib

    from pdfsg.sources.geometry import min_distance_ratio
    from pdfsg.structures import parse_structure

    structure = parse_structure(cif, ident)
    cell = (
        np.asarray(structure.lattice.matrix),
        np.asarray(structure.frac_coords),
        [site.specie.Z for site in structure],
    )
    ds = spglib.get_symmetry_dataset(cell, symprec=SYMPREC)
    if ds is None:
        return 0, (), 0.0, []
    std = (np.asarray(ds.std_lattice), np.asarray(ds.std_positions), np.asarray(ds.std_types))
    elements = sorted({site.specie.symbol for site in structure})
    return int(ds.number), std, min_distance_ratio(structure), elements


def _attempt(
    number: int, std: tuple, ratio_limit: float, elements: list[str], rng: np.random.Generator
) -> Structure | None:
    import spglib
    from pymatgen.core import Element, Lattice, Structure

    from pdfsg.sources.geometry import min_distance_ratio
    from pdfsg.sources.stats import load_stats

    mapping = _substitution(elements, rng, substitution_table())
    if mapping is None:
        return None
    lattice, frac, types = std
    old = [Element.from_Z(int(z)).symbol for z in types]
    new = [mapping[e] for e in old]
    stats = load_stats()
    scale = sum(stats.element_volume(e) for e in new) / sum(stats.element_volume(e) for e in old)
    pm = Lattice(lattice)
    abc, angles = _strained_parameters(np.array(pm.abc), np.array(pm.angles), number, rng)
    strained = _lattice_from_parameters(abc, angles)
    target = abs(np.linalg.det(lattice)) * scale * float(np.exp(rng.normal(0.0, VOLUME_SCATTER)))
    strained *= (target / abs(np.linalg.det(strained))) ** (1 / 3)
    cart = frac @ strained + rng.normal(0.0, JITTER_A, size=frac.shape)
    jittered = (strained, cart @ np.linalg.inv(strained), [Element(e).Z for e in new])
    prim = spglib.standardize_cell(
        jittered, to_primitive=True, no_idealize=False, symprec=SYMMETRISE_PREC
    )
    if prim is None:
        return None
    check = spglib.get_symmetry_dataset(prim, symprec=SYMPREC)
    if check is None or int(check.number) != number:
        return None
    structure = Structure(
        Lattice(prim[0]), [Element.from_Z(int(z)) for z in prim[2]], prim[1] % 1.0
    )
    if min_distance_ratio(structure) < ratio_limit:
        return None
    return structure


def make_variant(ident: str, cif: str, k: int, seed: int) -> Structure | None:
    """Variant ``k`` of the parent (``ident``, ``cif``): deterministic in its arguments; None
    when the parent has no symmetry or no element can be substituted, or every attempt failed
    the checks.  Picklable with functools.partial (runs on dataset-build workers)."""
    os.environ.setdefault("SPGLIB_WARNING", "OFF")
    number, std, parent_ratio, elements = _parent(ident, cif)
    if number == 0:
        return None
    ratio_limit = min(0.6, 0.85 * parent_ratio)
    for attempt in range(MAX_ATTEMPTS):
        rng = np.random.default_rng([seed, k, attempt, zlib.crc32(ident.encode("utf-8"))])
        structure = _attempt(number, std, ratio_limit, elements, rng)
        if structure is not None:
            return structure
    return None


def _train_ids(path: str) -> set[str]:
    from pdfsg.datasets import read_dataset

    ds = read_dataset(path)
    return {str(i) for i in ds.train().ids}


def parse_spec(spec: str) -> tuple[int, int, str | None, str, int]:
    """``K[,seed=S][,first=F][,train-of=DATASET]:SOURCE`` -> (K, seed, train-of path or None,
    SOURCE, F)."""
    from pdfsg.sources import count_and_options

    head, sep, source = spec.partition(":")
    k, opts = count_and_options("variants", head, spec)
    try:
        seed = int(opts.pop("seed", 0))
        first = int(opts.pop("first", 0))
    except ValueError as exc:
        raise ParamsError(f"bad variants source spec {spec!r}: {exc}") from None
    train_of = opts.pop("train-of", None)
    if opts:
        raise ParamsError(f"bad variants source spec {spec!r}: unknown {sorted(opts)}")
    if not sep or not source:
        raise ParamsError(f"bad variants source spec {spec!r}: want K[,seed=S]:SOURCE")
    if k <= 0:
        raise ParamsError(f"bad variants source spec {spec!r}: K must be > 0")
    if first < 0:
        raise ParamsError(f"bad variants source spec {spec!r}: first must be >= 0")
    return k, seed, train_of, source, first


def variant_records(spec: str) -> Iterator[StructureRecord]:
    """The records of ``variants:K[,seed=S][,first=F][,train-of=DATASET]:SOURCE`` (see the
    module)."""
    from pdfsg.sources import StructureRecord, iter_records

    count, seed, train_of, source, first = parse_spec(spec)
    keep = _train_ids(train_of) if train_of else None
    for parent in iter_records(source):
        if keep is not None and parent.id not in keep:
            continue
        if parent.cif is None:
            if parent.structure is None:
                raise ParamsError(
                    f"variants: {parent.where} has neither CIF nor structure; "
                    "a generated source cannot have variants"
                )
            cif = parent.structure.to(fmt="cif")
        else:
            cif = parent.cif
        for k in range(first, first + count):
            yield StructureRecord(
                id=f"{parent.id}{VARIANT_SEP}{k}",
                origin=f"variant {k} of {parent.where} (seed {seed})",
                make=functools.partial(make_variant, parent.id, cif, k, seed),
            )
