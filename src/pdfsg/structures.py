"""Structures: parse CIFs into pymatgen Structures, label them, drop duplicates.

The collections they come from (folders of CIFs, CSVs of CIFs, generators) are the sources
of :mod:`pdfsg.sources`; :func:`record_structure` turns one of their records into a
Structure.

Symmetry information
--------------------
A CIF must say how its atom list relates to the crystal: either symmetry operations
(``_symmetry_equiv_pos_as_xyz`` / ``_space_group_symop_operation_xyz``) or a space-group name
or number (``_symmetry_space_group_name_H-M``, ``_space_group_name_H-M_alt``, Hall symbol,
``_symmetry_Int_Tables_number``, ``_space_group_IT_number``).  A P1 CIF written by pymatgen
carries ``'x, y, z'`` and is fine.  A CIF with neither is refused (:class:`StructureError`)
rather than read as P1 as pymatgen would: if it lists only the asymmetric unit, reading it
as P1 gives a different crystal and a wrong label, and nothing in the file says which.

Labels and duplicates
---------------------
:func:`label_space_group` gives the space-group number found by spglib (default
``symprec`` 0.1 Å, as used for the shared data counts).  :func:`deduplicate` removes
entries with the same composition *and* the same structure (Liu et al. 2019, section 2):
same reduced formula, same space group, and a match of pymatgen's ``StructureMatcher``.
"""

from __future__ import annotations

import dataclasses
import io
import os
import warnings
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pdfsg.errors import StructureError
from pdfsg.sources.collections import _check_path, _read_text

if TYPE_CHECKING:  # pragma: no cover
    from pymatgen.core import Structure

    from pdfsg.sources import StructureRecord

__all__ = [
    "DEFAULT_SYMPREC",
    "DedupeResult",
    "StructureReadError",
    "deduplicate",
    "label_space_group",
    "parse_structure",
    "read_structure",
    "record_structure",
]

DEFAULT_SYMPREC = 0.1
SYMOP_KEYS = ("_symmetry_equiv_pos_as_xyz", "_space_group_symop_operation_xyz")
SPACE_GROUP_KEYS = (
    "_symmetry_space_group_name_h-m",
    "_space_group_name_h-m_alt",
    "_symmetry_space_group_name_hall",
    "_space_group_name_hall",
    "_symmetry_int_tables_number",
    "_space_group_it_number",
)
POSITION_KEYS = ("_atom_site_fract_x", "_atom_site_cartn_x")


class StructureReadError(StructureError):
    """A structure that cannot be used, with a short machine-readable ``reason``.

    Reasons: ``not_cif``, ``no_symmetry``, ``partial_occupancy``, ``no_atoms``,
    ``unreadable``, ``label_failed``.
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


# --------------------------------------------------------------------------- parsing


def _first_block(cif_text: str, name: str) -> dict[str, Any]:
    from pymatgen.io.cif import CifFile

    if "data_" not in cif_text:
        raise StructureReadError(f"{name}: not a CIF (no data_ block)", "not_cif")
    try:
        cif = CifFile.from_str(cif_text)
    except Exception as exc:  # pymatgen raises a variety of errors on garbage
        raise StructureReadError(f"{name}: not a readable CIF ({exc})", "not_cif") from exc
    if not cif.data:
        raise StructureReadError(f"{name}: not a CIF (no data_ block)", "not_cif")
    block = next(iter(cif.data.values()))
    return {k.lower(): v for k, v in block.data.items()}


def parse_structure(cif_text: str, name: str = "<cif>") -> Structure:
    """Parse the first data block of a CIF into an ordered pymatgen Structure.

    Parameters
    ----------
    cif_text : the CIF file's text
    name : file name or id, used in error messages

    Raises
    ------
    StructureReadError (a StructureError)
        not a CIF, no symmetry information (see the module docstring), no atoms, partial
        occupancies, or another parse failure; the message is one line naming ``name``.
    """
    from pymatgen.io.cif import CifParser

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = _first_block(cif_text, name)
        if not any(k in data for k in POSITION_KEYS):
            raise StructureReadError(f"{name}: CIF has no atom positions (no atoms)", "no_atoms")
        if not any(k in data for k in SYMOP_KEYS + SPACE_GROUP_KEYS):
            raise StructureReadError(
                f"{name}: CIF has no symmetry information (neither symmetry operations nor a "
                "space group); add _symmetry_equiv_pos_as_xyz 'x, y, z' if it lists every atom",
                "no_symmetry",
            )
        try:
            parser = CifParser(io.StringIO(cif_text), check_cif=False)
            structures = parser.parse_structures(primitive=False, on_error="raise")
        except Exception as exc:
            msg = " ".join(str(exc).split()) or type(exc).__name__
            if "no structures" in msg.lower():
                raise StructureReadError(f"{name}: CIF has no readable atoms", "no_atoms") from exc
            if "occupanc" in msg.lower():
                raise StructureReadError(
                    f"{name}: bad site occupancies ({msg})", "partial_occupancy"
                ) from exc
            raise StructureReadError(f"{name}: cannot parse CIF ({msg})", "unreadable") from exc
    if not structures or len(structures[0]) == 0:
        raise StructureReadError(f"{name}: CIF has no atoms", "no_atoms")
    structure = structures[0]
    if not structure.is_ordered:
        raise StructureReadError(
            f"{name}: structure has partial occupancies (disordered sites are not supported)",
            "partial_occupancy",
        )
    return structure


def read_structure(path: str | os.PathLike[str]) -> Structure:
    """Read one CIF file (see :func:`parse_structure`)."""
    path = Path(path)
    _check_path(path)
    if path.is_dir():
        raise StructureError(f"{path}: is a folder, not a CIF file")
    return parse_structure(_read_text(path), str(path))


def record_structure(record: StructureRecord) -> Structure:
    """The Structure of a record: parsed from its CIF, the one it carries, or built by its
    ``make`` callable (generated crystals)."""
    if record.structure is None and record.make is not None:
        built = record.make()
        if built is None:
            raise StructureReadError(
                f"{record.where}: generation failed (all attempts rejected)", "generation_failed"
            )
        record = dataclasses.replace(record, structure=built)
    if record.structure is not None:
        if len(record.structure) == 0:
            raise StructureReadError(f"{record.where}: structure has no atoms", "no_atoms")
        if not record.structure.is_ordered:
            raise StructureReadError(
                f"{record.where}: structure has partial occupancies", "partial_occupancy"
            )
        return record.structure
    if record.cif is None:
        raise StructureReadError(
            f"{record.where}: record has neither CIF nor structure", "no_atoms"
        )
    return parse_structure(record.cif, record.where)


# --------------------------------------------------------------------------- labels


def label_space_group(
    structure: Structure, symprec: float = DEFAULT_SYMPREC, name: str | None = None
) -> int:
    """Space-group number (1..230) of ``structure`` found by spglib.

    Parameters
    ----------
    structure : ordered pymatgen Structure
    symprec : float  [Å]
        spglib's distance tolerance.
    name : used in the error message (defaults to the reduced formula)

    Raises
    ------
    StructureReadError (reason ``label_failed``)
        spglib finds no symmetry (e.g. overlapping atoms).
    """
    import spglib

    cell = (
        np.asarray(structure.lattice.matrix, dtype=np.float64),
        np.asarray(structure.frac_coords, dtype=np.float64),
        np.asarray([site.specie.Z for site in structure], dtype=np.intc),
    )
    detail = ""
    try:
        with warnings.catch_warnings():  # spglib 2.5+: DeprecationWarning on error handling
            warnings.simplefilter("ignore")
            dataset = spglib.get_symmetry_dataset(cell, symprec=symprec)
            if dataset is None and hasattr(spglib, "get_error_message"):
                detail = spglib.get_error_message()
    except Exception as exc:  # spglib >= 2.5 may raise SpglibError
        where = name or structure.composition.reduced_formula
        raise StructureReadError(f"{where}: spglib failed ({exc})", "label_failed") from exc
    number = int(getattr(dataset, "number", 0) or 0) if dataset is not None else 0
    if not 1 <= number <= 230:
        where = name or structure.composition.reduced_formula
        raise StructureReadError(
            f"{where}: spglib found no space group at symprec={symprec} ({detail or 'no detail'})",
            "label_failed",
        )
    return number


# --------------------------------------------------------------------------- duplicates


@dataclass(frozen=True)
class DedupeResult:
    """Outcome of :func:`deduplicate`.

    Attributes
    ----------
    kept : keys kept, in input order
    duplicates : dropped key -> the kept key it duplicates
    """

    kept: list[Hashable]
    duplicates: dict[Hashable, Hashable]


def deduplicate(
    items: Iterable[tuple[Hashable, Structure, int]],
    *,
    ltol: float = 0.2,
    stol: float = 0.3,
    angle_tol: float = 5.0,
) -> DedupeResult:
    """Drop structures with the same composition and the same structure as an earlier one.

    Two items are duplicates when they have the same reduced formula, the same space-group
    label, and pymatgen's ``StructureMatcher`` (tolerances ``ltol``, ``stol``, ``angle_tol``,
    volumes scaled) matches them.  Only items of one (formula, label) group are compared, so
    this is cheap for collections of mostly distinct compounds.  The first item of each
    family is kept.

    Parameters
    ----------
    items : (key, structure, space-group number) triples; keys must be unique
    """
    from pymatgen.analysis.structure_matcher import StructureMatcher

    order: list[Hashable] = []
    groups: dict[tuple[str, int], list[tuple[Hashable, Structure]]] = {}
    for key, structure, label in items:
        order.append(key)
        groups.setdefault((structure.composition.reduced_formula, int(label)), []).append(
            (key, structure)
        )
    if len(set(order)) != len(order):
        raise ValueError("deduplicate: keys must be unique")
    matcher = StructureMatcher(ltol=ltol, stol=stol, angle_tol=angle_tol)
    duplicates: dict[Hashable, Hashable] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for members in groups.values():
            if len(members) < 2:
                continue
            representatives: list[tuple[Hashable, Structure]] = []
            for key, structure in members:
                for rep_key, rep in representatives:
                    if matcher.fit(rep, structure):
                        duplicates[key] = rep_key
                        break
                else:
                    representatives.append((key, structure))
    kept = [k for k in order if k not in duplicates]
    return DedupeResult(kept=kept, duplicates=duplicates)
