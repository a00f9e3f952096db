"""Structure sources: everything :func:`pdfsg.datasets.build_dataset` can read, behind one
record interface.

A *source* yields :class:`StructureRecord` objects lazily, one per structure, without
parsing anything; :func:`pdfsg.structures.record_structure` turns a record into a pymatgen
Structure where it is processed (a Dask worker).  :func:`iter_records` reads:

* a folder of ``*.cif`` files (not recursive, sorted by name; the id is the file stem),
* a single ``.cif`` file,
* a ``.csv`` / ``.csv.gz`` table with a ``cif`` column (one full CIF text per row) and an id
  column (``material_id``, else ``id``, else the row number)
  (these three: :mod:`pdfsg.sources.collections`),
* an iterable of :class:`StructureRecord` (or pymatgen ``Structure``) objects, e.g. a
  generator of synthetic crystals,
* ``"KIND:SPEC"`` for a source kind: the built-in ``synthetic:`` (PyXtal crystals,
  :mod:`pdfsg.sources.synthetic`), ``prototypes:`` (classic structure types,
  :mod:`pdfsg.sources.prototypes`) and ``variants:`` (:mod:`pdfsg.sources.variants`), or one
  added with :func:`register_source`.

Adding a source
---------------
Write a function ``factory(spec: str) -> Iterable[StructureRecord]`` that parses SPEC (the
text after ``KIND:``) and yields records:

* give every record a stable, unique ``id`` and an ``origin`` for error messages;
* carry a ``cif`` text, a built ``structure``, or (for crystals that are costly to make) a
  picklable ``make`` callable, e.g. ``functools.partial(module_level_function, config, k)``,
  so that workers build them;
* set ``space_group`` when the label is known in advance (else spglib labels the structure);
* be deterministic in SPEC: a resumed build compares :meth:`StructureRecord.digest` of every
  chunk with the one it stored.

Then either call ``register_source("kind", factory)`` (a plug-in, at run time), or, for a
source shipped with pdfsg, put it in a module of this package and add ``"kind": (module,
function name)`` to ``_BUILTIN_KINDS``: the module is imported only when the kind is used.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from pdfsg.errors import StructureError

if TYPE_CHECKING:  # pragma: no cover
    from pymatgen.core import Structure

__all__ = [
    "SourceFactory",
    "StructureRecord",
    "count_and_options",
    "count_records",
    "iter_records",
    "register_source",
    "source_fingerprint",
]


def _callable_key(make: Callable[..., Any]) -> str:
    """A text that names a ``make`` callable the same way in every process: module, name and
    arguments of a functools.partial (its repr holds the function's memory address)."""
    import functools

    if isinstance(make, functools.partial):
        func = make.func
        name = f"{func.__module__}.{func.__qualname__}"
        return f"{name}{make.args!r}{sorted(make.keywords.items())!r}"
    return f"{getattr(make, '__module__', '')}.{getattr(make, '__qualname__', repr(make))}"


def count_and_options(kind: str, head: str, spec: str) -> tuple[int, dict[str, str]]:
    """``"N[,key=value...]"`` of a generated source's spec -> (N, {key: value}); a one-line
    ParamsError ``bad <kind> source spec '<spec>': ...`` when N or an option is malformed."""
    from pdfsg.errors import ParamsError

    fields = head.split(",")
    try:
        return int(fields[0]), dict(f.split("=", 1) for f in fields[1:])
    except ValueError as exc:
        raise ParamsError(f"bad {kind} source spec {spec!r}: {exc}") from None


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
            h.update(_callable_key(self.make).encode("utf-8"))
        h.update(str(self.space_group).encode("ascii"))
        return h.hexdigest()


# --------------------------------------------------------------------------- source kinds

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
    "synthetic": ("pdfsg.sources.synthetic", "records_from_spec"),
    "prototypes": ("pdfsg.sources.prototypes", "prototype_records"),
    "variants": ("pdfsg.sources.variants", "variant_records"),
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


# --------------------------------------------------------------------------- reading


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
    from pdfsg.sources.collections import iter_path_records

    yield from iter_path_records(source)


def count_records(source: str | os.PathLike[str] | Iterable[Any]) -> int | None:
    """Number of records of a source, or None when it cannot be known without consuming it."""
    if not isinstance(source, (str, os.PathLike)):
        return len(source) if isinstance(source, Sequence) else None
    if isinstance(source, str) and _registered(source) is not None:
        return None
    from pdfsg.sources.collections import count_path_records

    return count_path_records(source)


def source_fingerprint(source: str | os.PathLike[str] | Iterable[Any]) -> dict[str, Any]:
    """What identifies a source: ``{"path", "sha256"}`` for one file, ``{"path", "sha256",
    "n_files"}`` for a folder (hash over names and contents), ``{"description"}`` otherwise."""
    if not isinstance(source, (str, os.PathLike)):
        return {"description": f"iterable ({type(source).__name__})"}
    if isinstance(source, str) and _registered(source) is not None:
        return {"description": source}
    from pdfsg.sources.collections import path_fingerprint

    return path_fingerprint(source)
