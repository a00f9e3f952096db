"""Structure collections on disk: CIF files, folders of CIFs, CSV / CSV.GZ tables of CIFs.

One reader serves the two ways pdfsg reads real structures:

* :func:`iter_path_records` (what :func:`pdfsg.sources.iter_records` gives for a path, for
  ``pdfsg dataset build``) yields unparsed records: a folder is read without its sub-folders,
  and a CSV row's id is its ``material_id`` column, else ``id``, else ``row<N>`` (N from 1);
  :func:`pdfsg.structures.parse_structure` later refuses a CIF without symmetry information.
* :func:`iter_source_structures` (``pdfsg stats build``) reads several collections into
  pymatgen Structures at once, with pymatgen's own CIF reading: a folder is read with its
  sub-folders, a CSV row's id is its ``material_id`` column, else ``<file>:<N>`` (N from 0),
  and an id seen in an earlier collection is skipped.

Both find the same files (``*.cif``, case-insensitive, sorted), read a CIF as UTF-8 (bad
bytes replaced) and a CSV through the same :func:`_csv_rows`, and raise the same one-line
:class:`~pdfsg.errors.StructureError` for a missing path, a folder without CIFs, a CSV
without a ``cif`` column or an unknown file type.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import sys
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pdfsg.errors import StructureError
from pdfsg.sources import StructureRecord

if TYPE_CHECKING:  # pragma: no cover
    from pymatgen.core import Structure

__all__ = [
    "count_path_records",
    "iter_path_records",
    "iter_source_structures",
    "path_fingerprint",
]

CIF_SUFFIXES = (".cif",)
CSV_SUFFIXES = (".csv", ".csv.gz")
ID_COLUMNS = ("material_id", "id")


# --------------------------------------------------------------------------- files


def _is_csv(path: Path) -> bool:
    return path.name.lower().endswith(CSV_SUFFIXES)


def _check_path(path: Path) -> None:
    if not path.exists():
        raise StructureError(f"{path}: no such file or folder")


def _cif_files(folder: Path, recursive: bool = False) -> list[Path]:
    entries = folder.rglob("*") if recursive else folder.iterdir()
    files = sorted(p for p in entries if p.is_file() and p.name.lower().endswith(CIF_SUFFIXES))
    if not files:
        raise StructureError(f"{folder}: folder holds no .cif files")
    return files


def _kind(path: Path) -> str:
    """``"folder"``, ``"csv"`` or ``"cif"``; StructureError for a missing path or another
    file type."""
    _check_path(path)
    if path.is_dir():
        return "folder"
    if _is_csv(path):
        return "csv"
    if path.name.lower().endswith(CIF_SUFFIXES):
        return "cif"
    raise StructureError(
        f"{path}: unknown structure source (expected a folder of CIFs, .cif, .csv or .csv.gz)"
    )


def _open_text(path: Path) -> io.TextIOBase:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", newline="")  # type: ignore[return-value]
    return open(path, encoding="utf-8", newline="")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise StructureError(f"{path}: cannot read file ({exc.strerror or exc})") from exc


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(row number from 1, row) of a CSV / CSV.GZ that has a ``cif`` column."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # CIF texts exceed the 128 kB default
    try:
        with _open_text(path) as handle:
            reader = csv.DictReader(handle)
            columns = reader.fieldnames or []
            if "cif" not in columns:
                raise StructureError(
                    f"{path}: CSV has no 'cif' column (columns: {', '.join(columns) or 'none'})"
                )
            yield from enumerate(reader, start=1)
    except (OSError, UnicodeDecodeError, csv.Error, EOFError) as exc:
        raise StructureError(f"{path}: cannot read CSV ({exc})") from exc


def file_sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------- records


def _iter_csv(path: Path) -> Iterator[StructureRecord]:
    for row_number, row in _csv_rows(path):
        id_column = next((c for c in ID_COLUMNS if c in row), None)
        rid = (row.get(id_column) or "").strip() if id_column else ""
        rid = rid or f"row{row_number}"
        yield StructureRecord(
            id=rid, cif=row.get("cif") or "", origin=f"{path.name} row {row_number} ({rid})"
        )


def iter_path_records(source: str | os.PathLike[str]) -> Iterator[StructureRecord]:
    """The records of a folder of CIFs, a ``.cif`` file or a ``.csv``/``.csv.gz`` with a
    ``cif`` column (see :func:`pdfsg.sources.iter_records`)."""
    path = Path(source)
    kind = _kind(path)
    if kind == "folder":
        for f in _cif_files(path):
            yield StructureRecord(id=f.stem, cif=_read_text(f), origin=str(f))
    elif kind == "csv":
        yield from _iter_csv(path)
    else:
        yield StructureRecord(id=path.stem, cif=_read_text(path), origin=str(path))


def count_path_records(source: str | os.PathLike[str]) -> int:
    """Number of records of a path source (1 for a single file)."""
    path = Path(source)
    _check_path(path)
    if path.is_dir():
        return len(_cif_files(path))
    if _is_csv(path):
        return sum(1 for _ in _iter_csv(path))
    return 1


def path_fingerprint(source: str | os.PathLike[str]) -> dict[str, Any]:
    """``{"path", "sha256"}`` of one file, ``{"path", "sha256", "n_files"}`` of a folder
    (hash over the CIFs' names and contents)."""
    path = Path(source)
    _check_path(path)
    if path.is_dir():
        h = hashlib.sha256()
        files = _cif_files(path)
        for f in files:
            h.update(f.name.encode("utf-8") + b"\0" + file_sha256(f).encode("ascii"))
        return {"path": str(path.resolve()), "sha256": h.hexdigest(), "n_files": len(files)}
    return {"path": str(path.resolve()), "sha256": file_sha256(path)}


# --------------------------------------------------------------------------- structures


def _cif_texts(path: Path) -> Iterable[tuple[str, str]]:
    """(id, CIF text) of one collection, as :func:`iter_source_structures` names them."""
    kind = _kind(path)
    if kind == "folder":
        return ((p.stem, _read_text(p)) for p in _cif_files(path, recursive=True))
    if kind == "cif":
        return [(path.stem, _read_text(path))]
    return (
        (row.get("material_id") or f"{path.name}:{n - 1}", row["cif"]) for n, row in _csv_rows(path)
    )


def iter_source_structures(
    sources: Sequence[str | os.PathLike[str]], limit: int | None = None
) -> Iterator[tuple[str, Structure | None, str]]:
    """Structures of CSV / CSV.GZ files (a ``cif`` column) and folders or files of CIFs.

    Yields ``(id, structure or None, reason)``: None with the reason when an entry cannot
    be read.  Ids are the ``material_id`` column (else ``<file>:<row>``) or the CIF's file
    name; an id seen before (the same entry in two files) is skipped silently.
    """
    from pymatgen.core import Structure

    seen: set[str] = set()
    count = 0
    for src in sources:
        for ident, text in _cif_texts(Path(src)):
            if ident in seen:
                continue
            seen.add(ident)
            if limit is not None and count >= limit:
                return
            count += 1
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    s = Structure.from_str(text, fmt="cif")
            except Exception as exc:  # pymatgen raises many kinds of errors on bad CIFs
                yield ident, None, f"unreadable CIF ({type(exc).__name__})"
                continue
            yield ident, s, ""
