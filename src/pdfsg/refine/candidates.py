"""Candidate structures of a composition in given space groups.

For each group, in this order:

1. structures of the sample's reduced formula: the user's CIFs (``source = "file"``) and
   the library's (``"library"``), as they are;
2. structures of the same structure type (same anonymised formula, ``"ABC3"``) with the
   elements substituted: the elements of each stoichiometric amount are paired in order of
   electronegativity (the least electronegative replaces the least electronegative), and
   the cell volume is scaled by the ratio of the per-element volumes
   (:meth:`pdfsg.sources.stats.SyntheticStats.element_volume`) of the new and the old
   elements; among several, the closest substitution (smallest summed electronegativity
   and log-volume differences) first;
3. the classic prototypes of :data:`pdfsg.sources.prototypes.PROTOTYPES` (fcc, bcc, hcp, diamond,
   rock salt, zinc blende, wurtzite, perovskite, spinel, rutile, fluorite, …) of that type
   and group, made the same way: always tried besides the ``per_group`` of steps 1–2 (they
   are the likeliest types of simple compositions, and a library's representative of a
   formula type and group may be another structure).

The refinement then corrects the volume (:mod:`pdfsg.refine.fit` scans ±8 %).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pdfsg.errors import CompositionError, StructureError
from pdfsg.refine.fit import Candidate
from pdfsg.refine.library import MAX_ATOMS, LibraryEntry, StructureLibrary, make_entry

if TYPE_CHECKING:  # pragma: no cover
    from pymatgen.core import Structure

#: largest denominator tried when turning fractional amounts into an integer formula
MAX_MULTIPLE = 12
#: stand-in elements of the prototype roles (chosen so that the electronegativity order of
#: the roles is the usual one: A-site cation < B-site cation < anion)
_ROLE_STANDIN = {"M": "Ba", "N": "Ti", "D": "Si"}


@dataclass
class CandidateSet:
    """Candidates per group and, for groups without any, the reason."""

    by_group: dict[int, list[Candidate]] = field(default_factory=dict)
    missing: dict[int, str] = field(default_factory=dict)
    #: one line per user file that was not used (other composition, group not asked for)
    skipped_files: list[str] = field(default_factory=list)

    def all(self) -> list[Candidate]:
        return [c for cands in self.by_group.values() for c in cands]


def integer_formula(composition: Mapping[str, float], source: str = "composition") -> str:
    """The reduced formula of a composition whose amounts are (near) integer ratios, with
    at most :data:`~pdfsg.refine.library.MAX_ATOMS` atoms.

    Raises
    ------
    CompositionError
        The amounts are not small integer ratios (doped or mixed samples:
        ``La0.72Ca0.28MnO3``), for which no single ordered structure exists.
    """
    from pymatgen.core import Composition

    amounts = {el: float(n) for el, n in composition.items() if n > 0}
    if not amounts:
        raise CompositionError(f"{source}: empty composition")
    low = min(amounts.values())
    for k in range(1, MAX_MULTIPLE + 1):
        scaled = {el: n / low * k for el, n in amounts.items()}
        if sum(round(v) for v in scaled.values()) > MAX_ATOMS:
            break
        if all(abs(v - round(v)) < 0.02 * max(1.0, v) for v in scaled.values()):
            comp = Composition({el: round(v) for el, v in scaled.items()})
            return str(comp.reduced_formula)
    text = "".join(f"{el}{n:g}" for el, n in amounts.items())
    raise CompositionError(
        f"{source}: {text} is not an integer formula (doped or mixed sample); "
        "no ordered candidate structure has it"
    )


def _amount_classes(formula: str) -> dict[int, list[str]]:
    """Reduced amount -> elements with it, each list sorted by electronegativity."""
    from pymatgen.core import Composition

    from pdfsg.sources.stats import _rank_key

    comp = Composition(formula).reduced_composition
    out: dict[int, list[str]] = {}
    for el, n in comp.items():
        out.setdefault(int(round(n)), []).append(el.symbol)
    return {n: sorted(els, key=_rank_key) for n, els in out.items()}


def substitution(old_formula: str, new_formula: str) -> dict[str, str] | None:
    """Old element -> new element for two formulas of one anonymised formula (None if they
    differ): elements of equal amount paired in electronegativity order."""
    old, new = _amount_classes(old_formula), _amount_classes(new_formula)
    if sorted((n, len(v)) for n, v in old.items()) != sorted((n, len(v)) for n, v in new.items()):
        return None
    return {a: b for n in old for a, b in zip(old[n], new[n], strict=True)}


@functools.cache
def _element_volume(symbol: str) -> float:
    from pdfsg.sources.stats import load_stats

    return float(load_stats().element_volume(symbol))


def substitution_distance(mapping: Mapping[str, str]) -> float:
    """How far a substitution moves the chemistry: Σ |Δχ| + |Δ ln V| over the pairs."""
    from pdfsg.sources.stats import _electronegativity

    return sum(
        abs(_electronegativity(a) - _electronegativity(b))
        + abs(math.log(_element_volume(a) / _element_volume(b)))
        for a, b in mapping.items()
    )


def substituted(structure: Structure, mapping: Mapping[str, str]) -> Structure:
    """``structure`` with its elements replaced and its volume scaled by the elements'
    per-atom volumes."""
    s = structure.copy()
    old = sum(_element_volume(site.specie.symbol) for site in s)
    s.replace_species({k: v for k, v in mapping.items() if k != v})
    new = sum(_element_volume(site.specie.symbol) for site in s)
    s.scale_lattice(s.volume * new / old)
    return s


@functools.cache
def prototype_entries() -> tuple[LibraryEntry, ...]:
    """The classic prototypes of :data:`pdfsg.sources.prototypes.PROTOTYPES` as library
    entries, with stand-in elements (first anion of each role's list; Ba, Ti, Si for the
    metal and diamond roles) and the table's c/a."""
    from pymatgen.core import Lattice, Structure

    from pdfsg.sources.prototypes import PROTOTYPES

    out = []
    for name, (sg, kind, c_over_a, sites) in sorted(PROTOTYPES.items()):
        species = [_ROLE_STANDIN.get(role) or role.split()[0] for role, _, _ in sites]
        lattice = {
            "cubic": lambda: Lattice.cubic(4.0),
            "hexagonal": lambda r=c_over_a: Lattice.hexagonal(4.0, 4.0 * r),
            "tetragonal": lambda r=c_over_a: Lattice.tetragonal(4.0, 4.0 * r),
        }[kind]()
        s = Structure.from_spacegroup(sg, lattice, species, [xyz for _, xyz, _ in sites])
        s.scale_lattice(sum(_element_volume(site.specie.symbol) for site in s))
        out.append(make_entry(s, f"prototype:{name}"))
    return tuple(out)


def _user_entries(source: str | os.PathLike[str]) -> tuple[list[LibraryEntry], list[str]]:
    """The user's CIFs (a folder, a CIF or a CSV of CIFs) as entries, and one line per file
    that could not be read."""
    from pdfsg.refine.library import _entry_or_none
    from pdfsg.sources import iter_records

    entries, bad = [], []
    for record in iter_records(source):
        entry = _entry_or_none(record, 0.1, 10_000)
        if isinstance(entry, str):
            bad.append(entry)
        else:
            entries.append(dataclasses.replace(entry, id=record.where))
    return entries, bad


def read_user_candidates(source: str | os.PathLike[str]) -> tuple[list[LibraryEntry], list[str]]:
    """Read ``--candidates DIR_OR_CSV``; raises :class:`StructureError` when nothing in it
    can be read."""
    entries, bad = _user_entries(source)
    if not entries:
        first = f" ({bad[0]})" if bad else ""
        raise StructureError(f"{source}: no usable candidate structure{first}")
    return entries, bad


def find_candidates(
    composition: Mapping[str, float],
    groups: Sequence[int],
    *,
    library: StructureLibrary | None = None,
    user: Sequence[LibraryEntry] = (),
    per_group: int = 2,
    prototypes: bool = True,
    source: str = "composition",
) -> CandidateSet:
    """Candidates of ``composition`` in each of ``groups`` (the order of the module
    docstring): at most ``per_group`` from the files and the library, plus the prototypes.

    Raises
    ------
    CompositionError
        ``composition`` is not an integer formula (:func:`integer_formula`).
    """
    from pymatgen.core import Composition

    formula = integer_formula(composition, source)
    anon = Composition(formula).anonymized_formula
    out = CandidateSet()
    wanted = set(groups)
    for e in user:
        if e.space_group not in wanted:
            out.skipped_files.append(
                f"{e.id}: group {e.space_group} is not among the groups refined"
            )
        elif e.anonymous != anon:
            out.skipped_files.append(f"{e.id}: {e.formula} is not of the type of {formula}")
    for g in groups:
        exact = [(e, "file") for e in user if e.space_group == g and e.formula == formula]
        same = [(e, "file") for e in user if e.space_group == g and e.anonymous == anon]
        if library is not None:
            exact += [(e, "library") for e in library.exact(formula, g)]
            same += [(e, "library") for e in library.same_type(anon, g)]
        chosen = [_candidate(e, src, formula, None) for e, src in exact]
        seen = {(src, e.id) for e, src in exact}
        subs = []
        for e, src in same:
            if (src, e.id) in seen:
                continue
            mapping = substitution(e.formula, formula)
            if mapping is not None:
                subs.append((substitution_distance(mapping), e.id, e, src, mapping))
        chosen += [_candidate(e, src, formula, m) for _, _, e, src, m in sorted(subs)]
        chosen = [c for c in chosen if c is not None][:per_group]
        if prototypes:  # the classic types are few and cheap to refine: always tried
            for e in prototype_entries():
                if e.space_group == g and e.anonymous == anon:
                    mapping = substitution(e.formula, formula)
                    chosen.append(_candidate(e, "prototype", formula, mapping))
        chosen = [c for c in chosen if c is not None]
        if chosen:
            out.by_group[g] = chosen
        else:
            where = "your files, the library" if user else "the library"
            if prototypes:
                where += ", the prototypes"
            out.missing[g] = f"no candidate structure of {formula} ({anon}) in {where}"
    return out


def _candidate(
    entry: LibraryEntry, source: str, formula: str, mapping: Mapping[str, str] | None
) -> Candidate | None:
    try:
        s = entry.structure()
    except StructureError:
        return None
    note = "exact formula"
    if mapping is not None and any(k != v for k, v in mapping.items()):
        s = substituted(s, mapping)
        pairs = ", ".join(f"{v} for {k}" for k, v in mapping.items() if k != v)
        note = f"{entry.formula} with {pairs}"
    elif source == "prototype":
        note = "prototype"
    # the entry's CIF is already the standardised conventional cell of its group (a
    # substitution keeps both); the group is the entry's label, the one asked for
    name = entry.id.removeprefix("prototype:")
    return Candidate(structure=s, space_group=entry.space_group, source=source, id=name, note=note)


__all__ = [
    "CandidateSet",
    "find_candidates",
    "integer_formula",
    "prototype_entries",
    "read_user_candidates",
    "substituted",
    "substitution",
]
