"""An offline structure library: symmetrised CIFs keyed by formula, structure type and group.

A library file is gzip-compressed JSON::

    {"format": "pdfsg-structure-library", "version": 1, "symprec": 0.1,
     "keep": "type" | "formula", "sources": [...], "attribution": "...",
     "entries": [[id, reduced formula, anonymised formula, space group, template, cif], ...]}

Each CIF is the spglib-standardised conventional cell written with its symmetry operations
(pymatgen ``CifWriter(symprec=...)``), so a cubic cell has a = b = c and the lattice
constraints of :mod:`pdfsg.refine.fit` follow from the group alone.  ``keep`` says how many
entries a key holds: ``"type"`` one per structure type — (anonymised formula, group,
Wyckoff template: which element, by electronegativity rank, sits on which Wyckoff
position, :func:`pdfsg.sources.stats.analyze_structure`), the fewest-atom representative — and
``"formula"`` one per (reduced formula, group).

The library shipped inside the package (``pdfsg/data/structure_library.json.gz``, see
``pdfsg/data/STRUCTURE_LIBRARY.md`` for its attribution) was built by
``pdfsg library build`` from the Materials Project and WBM collections of the project's
development data with ``keep="type"``.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pdfsg.errors import PdfsgError, StructureError

if TYPE_CHECKING:  # pragma: no cover
    from pymatgen.core import Structure

log = logging.getLogger(__name__)

LIBRARY_FORMAT = "pdfsg-structure-library"
LIBRARY_VERSION = 1
KEEP_MODES = ("type", "formula")
SHIPPED_LIBRARY = "structure_library.json.gz"
#: entries with more atoms in the conventional cell than this are left out (refinement time
#: grows with the number of atoms)
MAX_ATOMS = 60


class LibraryError(PdfsgError):
    """A structure library file is missing, malformed, or cannot be built."""


@dataclass(frozen=True)
class LibraryEntry:
    """One structure of a library.

    Attributes
    ----------
    id : the source's identifier (material id, file stem)
    formula : reduced formula (``"NaCl"``)
    anonymous : anonymised formula (``"AB"``), the structure-type key
    space_group : number (1..230) from spglib at the library's symprec
    template : Wyckoff template (``"0a 1b"``; "" when it could not be found)
    cif : symmetrised CIF of the conventional cell
    """

    id: str
    formula: str
    anonymous: str
    space_group: int
    template: str
    cif: str

    @property
    def n_atoms(self) -> int:
        return _n_atoms(self.cif)

    def structure(self) -> Structure:
        from pdfsg.structures import parse_structure

        return parse_structure(self.cif, self.id)


def _n_atoms(cif: str) -> int:
    """Atoms in the cell of a CIF written by pymatgen (its ``_chemical_formula_sum``)."""
    from pymatgen.core import Composition

    for line in cif.splitlines():
        if line.startswith("_chemical_formula_sum"):
            text = line.split(None, 1)[1].strip().strip("'\"")
            return int(round(Composition(text).num_atoms))
    return 0


def standard_cell(structure: Structure, symprec: float = 0.1) -> tuple[Structure, int]:
    """The spglib-standardised conventional cell of ``structure`` and its group number.

    Raises
    ------
    StructureError
        spglib finds no symmetry.
    """
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        sga = SpacegroupAnalyzer(structure, symprec=symprec)
        return sga.get_refined_structure(), int(sga.get_space_group_number())
    except Exception as exc:  # spglib / pymatgen raise various errors on bad cells
        formula = structure.composition.reduced_formula
        raise StructureError(f"{formula}: no symmetry found at symprec={symprec} ({exc})") from exc


def make_entry(structure: Structure, id: str, symprec: float = 0.1) -> LibraryEntry:
    """A :class:`LibraryEntry` of ``structure`` (standardised, symmetrised CIF)."""
    from pymatgen.io.cif import CifWriter

    from pdfsg.sources.stats import analyze_structure

    conv, number = standard_cell(structure, symprec)
    comp = conv.composition
    cif = str(CifWriter(conv, symprec=symprec))
    try:
        template = str(analyze_structure(conv, symprec)["template"])
    except Exception:  # no template: the entry still serves, keyed by formula and group
        template = ""
    return LibraryEntry(
        id=id,
        formula=comp.reduced_formula,
        anonymous=comp.anonymized_formula,
        space_group=number,
        template=template,
        cif=cif,
    )


@dataclass
class StructureLibrary:
    """Library entries with look-ups by (formula, group) and (anonymised formula, group)."""

    entries: list[LibraryEntry]
    meta: dict[str, Any]
    path: str = ""

    def __post_init__(self) -> None:
        self._by_formula: dict[tuple[str, int], list[LibraryEntry]] = {}
        self._by_type: dict[tuple[str, int], list[LibraryEntry]] = {}
        for e in self.entries:
            self._by_formula.setdefault((e.formula, e.space_group), []).append(e)
            self._by_type.setdefault((e.anonymous, e.space_group), []).append(e)

    def __len__(self) -> int:
        return len(self.entries)

    def exact(self, formula: str, group: int) -> list[LibraryEntry]:
        """Entries of reduced formula ``formula`` in ``group``."""
        return list(self._by_formula.get((formula, group), []))

    def same_type(self, anonymous: str, group: int) -> list[LibraryEntry]:
        """Entries of anonymised formula ``anonymous`` in ``group``."""
        return list(self._by_type.get((anonymous, group), []))

    def without(self, ids: Iterable[str]) -> StructureLibrary:
        """This library less the entries with the given ids (held-out structures)."""
        drop = set(ids)
        kept = [e for e in self.entries if e.id not in drop]
        return StructureLibrary(kept, dict(self.meta), self.path)


def shipped_library_path() -> Path:
    return Path(str(files("pdfsg") / "data" / SHIPPED_LIBRARY))


def read_library(path: str | os.PathLike[str] | None = None) -> StructureLibrary:
    """Read a library file (default: the one shipped inside the package).

    Raises
    ------
    LibraryError
        missing file, not a library file, or a newer version.
    """
    p = Path(path) if path is not None else shipped_library_path()
    if not p.is_file():
        raise LibraryError(f"{p}: no such structure library file")
    try:
        with gzip.open(p, "rt", encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError, EOFError) as exc:
        raise LibraryError(f"{p}: not a structure library file ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != LIBRARY_FORMAT:
        raise LibraryError(f"{p}: not a structure library file (format is not {LIBRARY_FORMAT})")
    if int(data.get("version", 0)) > LIBRARY_VERSION:
        raise LibraryError(
            f"{p}: library version {data['version']} is newer than this pdfsg reads "
            f"({LIBRARY_VERSION})"
        )
    try:
        entries = [
            LibraryEntry(str(i), str(f), str(a), int(sg), str(t), str(cif))
            for i, f, a, sg, t, cif in data["entries"]
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise LibraryError(f"{p}: malformed entries ({exc})") from exc
    meta = {k: v for k, v in data.items() if k != "entries"}
    return StructureLibrary(entries, meta, str(p))


def write_library(library: StructureLibrary, path: str | os.PathLike[str]) -> Path:
    """Write ``library`` as a gzip JSON library file (deterministic: entries sorted)."""
    out = Path(path)
    entries = sorted(library.entries, key=lambda e: (e.anonymous, e.space_group, e.formula, e.id))
    data = {
        "format": LIBRARY_FORMAT,
        "version": LIBRARY_VERSION,
        **{k: v for k, v in library.meta.items() if k not in ("format", "version")},
        "entries": [
            [e.id, e.formula, e.anonymous, e.space_group, e.template, e.cif] for e in entries
        ],
    }
    with gzip.GzipFile(out, "wb", mtime=0) as handle:
        handle.write(json.dumps(data, separators=(",", ":")).encode("utf-8"))
    return out


def _entry_or_none(record: Any, symprec: float, max_atoms: int) -> LibraryEntry | str:
    """The entry of one record, or the one-line reason it was skipped."""
    from pdfsg.structures import record_structure

    try:
        s = record_structure(record)
        if not s.is_ordered:
            return f"{record.where}: partial occupancy"
        entry = make_entry(s, record.id, symprec)
    except Exception as exc:  # one bad record never stops a build
        return f"{record.where}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    if entry.n_atoms > max_atoms:
        return f"{record.where}: {entry.n_atoms} atoms in the conventional cell (> {max_atoms})"
    return entry


def build_library(
    sources: Sequence[str | os.PathLike[str]],
    *,
    keep: str = "type",
    symprec: float = 0.1,
    exclude: Iterable[str] = (),
    attribution: str = "",
    max_atoms: int = MAX_ATOMS,
    progress: Callable[[int], None] | None = None,
) -> tuple[StructureLibrary, list[str]]:
    """Read structure collections into a library.

    Parameters
    ----------
    sources : folders of CIFs, ``.cif`` files, ``.csv``/``.csv.gz`` with a ``cif`` column
        (what :func:`pdfsg.sources.iter_records` reads), in order of preference: for a
        key held by several structures the fewest-atom one is kept, ties going to the
        earlier source
    keep : ``"type"`` (one per anonymised formula, group and Wyckoff template) or
        ``"formula"`` (one per reduced formula and group)
    symprec : float  [Å], spglib tolerance for the group and the symmetrised cell
    exclude : ids to leave out (held-out test structures)
    attribution : text stored in the file (licence and source of the data)
    max_atoms : skip structures with more atoms in the conventional cell
    progress : called with the number of records read so far

    Returns
    -------
    (library, skipped) : the library and one line per record left out (unreadable, no
        symmetry, too many atoms)
    """
    from pdfsg.sources import iter_records

    if keep not in KEEP_MODES:
        raise LibraryError(f"keep must be one of {KEEP_MODES}, got {keep!r}")
    if not sources:
        raise LibraryError("no structure sources given")
    drop = set(exclude)
    best: dict[tuple[str, ...], tuple[int, int, LibraryEntry]] = {}
    skipped: list[str] = []
    seen = 0
    for rank, source in enumerate(sources):
        for record in iter_records(source):
            seen += 1
            if progress is not None:
                progress(seen)
            if record.id in drop:
                continue
            entry = _entry_or_none(record, symprec, max_atoms)
            if isinstance(entry, str):
                skipped.append(entry)
                continue
            if keep == "type":
                key = (entry.anonymous, str(entry.space_group), entry.template or entry.formula)
            else:
                key = (entry.formula, str(entry.space_group))
            score = (entry.n_atoms, rank)
            if key not in best or score < best[key][:2]:
                best[key] = (*score, entry)
    meta = {
        "symprec": symprec,
        "keep": keep,
        "sources": [Path(s).name for s in sources],
        "attribution": attribution,
        "n_read": seen,
    }
    return StructureLibrary([v[2] for v in best.values()], meta), skipped


__all__ = [
    "KEEP_MODES",
    "LibraryEntry",
    "LibraryError",
    "StructureLibrary",
    "build_library",
    "make_entry",
    "read_library",
    "shipped_library_path",
    "standard_cell",
    "write_library",
]
