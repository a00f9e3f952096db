"""Structure collections: read CIFs into pymatgen Structures, label them, drop duplicates.

Sources
-------
:func:`iter_records` reads a collection lazily, one :class:`StructureRecord` at a time:

* a folder of ``*.cif`` files (not recursive, sorted by name; the id is the file stem),
* a single ``.cif`` file,
* a ``.csv`` / ``.csv.gz`` table with a ``cif`` column (one full CIF text per row) and an id
  column (``material_id``, else ``id``, else the row number),
* an iterable of :class:`StructureRecord` (or pymatgen ``Structure``) objects, e.g. a
  generator of synthetic crystals,
* ``"KIND:SPEC"`` for a source kind added with :func:`register_source`.

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

import csv
import dataclasses
import gzip
import hashlib
import io
import os
import sys
import warnings
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pdfsg.errors import StructureError

if TYPE_CHECKING:  # pragma: no cover
    from pymatgen.core import Structure

__all__ = [
    "DEFAULT_SYMPREC",
    "DedupeResult",
    "StructureReadError",
    "StructureRecord",
    "count_records",
    "deduplicate",
    "iter_records",
    "label_space_group",
    "parse_structure",
    "read_structure",
    "record_structure",
    "register_source",
    "source_fingerprint",
]

DEFAULT_SYMPREC = 0.1
CIF_SUFFIXES = (".cif",)
CSV_SUFFIXES = (".csv", ".csv.gz")
ID_COLUMNS = ("material_id", "id")
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


@dataclass(frozen=True)
class StructureRecord:
    """One entry of a structure collection, not parsed yet.

    Attributes
    ----------
    id : identifier (material id, file stem, generator id)
    cif : CIF text, or None when ``structure`` is given
    structure : an already-built pymatgen Structure (generators), or None
    space_group : a label known in advance (e.g. the group a generator built the crystal
        in); when None the label comes from spglib
    origin : where the record came from, for error messages (file, file + row)
    make : a picklable callable that builds the structure where the record is processed
        (a Dask worker), for generators; returns None when generation failed
    """

    id: str
    cif: str | None = None
    structure: Structure | None = field(default=None, compare=False)
    space_group: int | None = None
    origin: str = ""
    make: Callable[[], Structure | None] | None = field(default=None, compare=False)

    @property
    def where(self) -> str:
        """``origin`` when set, else ``id``: the name used in error messages."""
        return self.origin or self.id

    def digest(self) -> str:
        """sha256 of the record's id and content (to check that a source has not changed)."""
        h = hashlib.sha256(self.id.encode("utf-8"))
        if self.cif is not None:
            h.update(self.cif.encode("utf-8"))
        elif self.structure is not None:
            s = self.structure
            h.update(np.ascontiguousarray(s.lattice.matrix, dtype=np.float64).tobytes())
            h.update(np.ascontiguousarray(s.frac_coords, dtype=np.float64).tobytes())
            h.update(" ".join(str(sp) for sp in s.species).encode("utf-8"))
        elif self.make is not None:
            h.update(repr(self.make).encode("utf-8"))
        h.update(str(self.space_group).encode("ascii"))
        return h.hexdigest()


# --------------------------------------------------------------------------- sources

SourceFactory = Callable[[str], Iterable[StructureRecord]]
_SOURCE_KINDS: dict[str, SourceFactory] = {}


def register_source(kind: str, factory: SourceFactory) -> None:
    """Make ``"KIND:SPEC"`` a source: ``factory(SPEC)`` yields its records.

    ``kind`` must be at least two characters long (so it cannot be a drive letter) and the
    factory must be deterministic in SPEC for a build from it to be resumable.
    """
    if len(kind) < 2 or not kind.isidentifier():
        raise ValueError(f"source kind must be an identifier of 2+ characters, got {kind!r}")
    _SOURCE_KINDS[kind] = factory


#: source kinds that pdfsg itself provides, imported only when used
_BUILTIN_KINDS = {
    "synthetic": ("pdfsg.synthetic", "records_from_spec"),
    "prototypes": ("pdfsg.synthetic", "prototype_records"),
}


def _registered(source: str) -> tuple[SourceFactory, str] | None:
    kind, sep, spec = source.partition(":")
    if sep and kind not in _SOURCE_KINDS and kind in _BUILTIN_KINDS:
        import importlib

        module, name = _BUILTIN_KINDS[kind]
        _SOURCE_KINDS[kind] = getattr(importlib.import_module(module), name)
    if sep and kind in _SOURCE_KINDS:
        return _SOURCE_KINDS[kind], spec
    return None


def _is_csv(path: Path) -> bool:
    return path.name.lower().endswith(CSV_SUFFIXES)


def _check_path(path: Path) -> None:
    if not path.exists():
        raise StructureError(f"{path}: no such file or folder")


def _cif_files(folder: Path) -> list[Path]:
    files = sorted(
        p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(CIF_SUFFIXES)
    )
    if not files:
        raise StructureError(f"{folder}: folder holds no .cif files")
    return files


def _open_text(path: Path) -> io.TextIOBase:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", newline="")  # type: ignore[return-value]
    return open(path, encoding="utf-8", newline="")


def _iter_csv(path: Path) -> Iterator[StructureRecord]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # CIF texts exceed the 128 kB default
    try:
        with _open_text(path) as handle:
            reader = csv.DictReader(handle)
            columns = reader.fieldnames or []
            if "cif" not in columns:
                raise StructureError(
                    f"{path}: CSV has no 'cif' column (columns: {', '.join(columns) or 'none'})"
                )
            id_column = next((c for c in ID_COLUMNS if c in columns), None)
            for row_number, row in enumerate(reader, start=1):
                rid = (row.get(id_column) or "").strip() if id_column else ""
                rid = rid or f"row{row_number}"
                yield StructureRecord(
                    id=rid, cif=row.get("cif") or "", origin=f"{path.name} row {row_number} ({rid})"
                )
    except (OSError, UnicodeDecodeError, csv.Error, EOFError) as exc:
        raise StructureError(f"{path}: cannot read CSV ({exc})") from exc


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise StructureError(f"{path}: cannot read file ({exc.strerror or exc})") from exc


def _from_iterable(items: Iterable[Any]) -> Iterator[StructureRecord]:
    from pymatgen.core import Structure

    for i, item in enumerate(items):
        if isinstance(item, StructureRecord):
            yield item
        elif isinstance(item, Structure):
            yield StructureRecord(id=f"structure-{i}", structure=item)
        else:
            raise StructureError(
                f"source item {i} is a {type(item).__name__}, not a StructureRecord or Structure"
            )


def iter_records(source: str | os.PathLike[str] | Iterable[Any]) -> Iterator[StructureRecord]:
    """Yield the records of a structure collection lazily (nothing is parsed here).

    Parameters
    ----------
    source : folder of CIFs, a ``.cif`` file, a ``.csv``/``.csv.gz`` with a ``cif`` column,
        ``"KIND:SPEC"`` of a registered source, or an iterable of StructureRecord/Structure

    Raises
    ------
    StructureError
        missing path, empty folder, CSV without a ``cif`` column, unknown file type.
    """
    if not isinstance(source, (str, os.PathLike)):
        yield from _from_iterable(source)
        return
    if isinstance(source, str) and (reg := _registered(source)) is not None:
        factory, spec = reg
        yield from _from_iterable(factory(spec))
        return
    path = Path(source)
    _check_path(path)
    if path.is_dir():
        for f in _cif_files(path):
            yield StructureRecord(id=f.stem, cif=_read_text(f), origin=str(f))
    elif _is_csv(path):
        yield from _iter_csv(path)
    elif path.name.lower().endswith(CIF_SUFFIXES):
        yield StructureRecord(id=path.stem, cif=_read_text(path), origin=str(path))
    else:
        raise StructureError(
            f"{path}: unknown structure source (expected a folder of CIFs, .cif, .csv or .csv.gz)"
        )


def count_records(source: str | os.PathLike[str] | Iterable[Any]) -> int | None:
    """Number of records of a source, or None when it cannot be known without consuming it."""
    if not isinstance(source, (str, os.PathLike)):
        return len(source) if isinstance(source, Sequence) else None
    if isinstance(source, str) and _registered(source) is not None:
        return None
    path = Path(source)
    _check_path(path)
    if path.is_dir():
        return len(_cif_files(path))
    if _is_csv(path):
        return sum(1 for _ in _iter_csv(path))
    return 1


def file_sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def source_fingerprint(source: str | os.PathLike[str] | Iterable[Any]) -> dict[str, Any]:
    """What identifies a source: ``{"path", "sha256"}`` for one file, ``{"path", "sha256",
    "n_files"}`` for a folder (hash over names and contents), ``{"description"}`` otherwise."""
    if not isinstance(source, (str, os.PathLike)):
        return {"description": f"iterable ({type(source).__name__})"}
    if isinstance(source, str) and _registered(source) is not None:
        return {"description": source}
    path = Path(source)
    _check_path(path)
    if path.is_dir():
        h = hashlib.sha256()
        files = _cif_files(path)
        for f in files:
            h.update(f.name.encode("utf-8") + b"\0" + file_sha256(f).encode("ascii"))
        return {"path": str(path.resolve()), "sha256": h.hexdigest(), "n_files": len(files)}
    return {"path": str(path.resolve()), "sha256": file_sha256(path)}


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

    where = name or structure.composition.reduced_formula
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
        raise StructureReadError(f"{where}: spglib failed ({exc})", "label_failed") from exc
    number = int(getattr(dataset, "number", 0) or 0) if dataset is not None else 0
    if not 1 <= number <= 230:
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
