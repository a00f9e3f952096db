"""Dataset files: simulated G(r) of labelled structures, built in parallel and resumably.

A dataset file is HDF5 (h5py) with this layout (``FORMAT_VERSION`` 1)::

    root attribute "manifest"   JSON string (see below)
    ids          (n,)          variable-length UTF-8 str   structure id (e.g. "mp-149")
    formula      (n,)          variable-length UTF-8 str   reduced formula
    space_group  (n,)          int16                       space-group number 1..230
    G            (n, npoints)  float32                     raw G(r) [Å⁻²] on params.r_grid()
    X            (n, npoints)  float32                     min-max normalised G (paper eq. 4)
    split        (n,)          int8                        0 = train, 1 = test
    r            (npoints,)    float64                     the r grid [Å]

Rows are stored train first, then test (each in source order), so :meth:`Dataset.train` and
:meth:`Dataset.test` are slices (views) of the arrays.

The manifest records how the file was made: ``format`` (``"pdfsg-dataset"``),
``format_version``, ``params`` (:meth:`PdfParams.to_dict`), ``engine``, ``label_set`` and
``labels`` (the class order), ``symprec``, ``source`` (path or description, and a sha256 when
it is one file), ``counts`` (rows per space group), ``n_read``, ``n_skipped``,
``skip_reasons``, ``n_duplicates``, ``split`` (seed, test fraction, method),
``code_version`` and ``created``.

:func:`build_dataset` makes such a file from a structure source (see
:func:`pdfsg.structures.iter_records`); :func:`read_dataset` reads one.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime as _dt
import hashlib
import itertools
import json
import logging
import math
import os
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pdfsg.errors import DatasetError, ParamsError
from pdfsg.params import PdfParams
from pdfsg.preprocess import normalize_minmax

if TYPE_CHECKING:  # pragma: no cover
    from pdfsg.sources import StructureRecord

log = logging.getLogger(__name__)

FORMAT = "pdfsg-dataset"
FORMAT_VERSION = 1
#: datasets every file has, with their HDF5 dtype kind and number of dimensions
REQUIRED_KEYS: dict[str, int] = {
    "ids": 1,
    "formula": 1,
    "space_group": 1,
    "G": 2,
    "X": 2,
    "split": 1,
    "r": 1,
}
TRAIN, TEST = 0, 1
SPLIT_METHOD = "stratified by space group"  # of the parents: variants follow theirs
#: skip reasons of the build, in the order the manifest lists them
SKIP_REASONS = (
    "not_cif",
    "no_symmetry",
    "partial_occupancy",
    "no_atoms",
    "unreadable",
    "label_failed",
    "outside_label_set",
    "simulation_failed",
)

ProgressCallback = Callable[[int, "int | None"], None]
"""``progress(done, total)``: structures finished so far (read, skipped or resumed) and the
total when known (None for a source of unknown length)."""


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True, eq=False)
class Dataset:
    """A dataset file in memory.

    Attributes
    ----------
    X : (n, npoints) float32, min-max normalised G(r) (paper eq. 4), the model input
    G : (n, npoints) float32, raw G(r) [Å⁻²]
    y : (n,) int16, space-group numbers (1..230)
    ids, formula : (n,) object arrays of str
    split : (n,) int8, 0 = train, 1 = test
    r : (npoints,) float64 [Å], the grid (equal to ``params.r_grid()``)
    manifest : dict, the file's manifest
    params : PdfParams the curves were simulated with
    labels : tuple of int, the label set in class order
    """

    X: np.ndarray
    G: np.ndarray
    y: np.ndarray
    ids: np.ndarray
    formula: np.ndarray
    split: np.ndarray
    r: np.ndarray
    manifest: dict[str, Any] = field(repr=False)
    params: PdfParams
    labels: tuple[int, ...]

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def label_set(self) -> str:
        return str(self.manifest.get("label_set", ""))

    def class_index(self) -> np.ndarray:
        """Class index (position of ``y`` in :attr:`labels`) of every row, int64."""
        lookup = np.full(231, -1, dtype=np.int64)
        lookup[np.asarray(self.labels, dtype=np.int64)] = np.arange(len(self.labels))
        return lookup[self.y.astype(np.int64)]

    def subset(self, rows: np.ndarray | slice) -> Dataset:
        """The rows selected by ``rows`` (slice → views; mask or indices → copies)."""
        return Dataset(
            X=self.X[rows],
            G=self.G[rows],
            y=self.y[rows],
            ids=self.ids[rows],
            formula=self.formula[rows],
            split=self.split[rows],
            r=self.r,
            manifest=self.manifest,
            params=self.params,
            labels=self.labels,
        )

    def _part(self, value: int) -> Dataset:
        where = np.flatnonzero(self.split == value)
        if where.size == 0:
            return self.subset(slice(0, 0))
        lo, hi = int(where[0]), int(where[-1]) + 1
        if hi - lo == where.size:  # contiguous: a view
            return self.subset(slice(lo, hi))
        return self.subset(where)

    def train(self) -> Dataset:
        """The training rows (a view when they are contiguous, as build_dataset writes them)."""
        return self._part(TRAIN)

    def test(self) -> Dataset:
        """The test rows (a view when they are contiguous, as build_dataset writes them)."""
        return self._part(TEST)


def _decode_strings(values: np.ndarray) -> np.ndarray:
    out = np.empty(values.shape[0], dtype=object)
    for i, v in enumerate(values):
        out[i] = v.decode("utf-8") if isinstance(v, bytes) else str(v)
    return out


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Only the manifest of a dataset file (cheap: no arrays are read)."""

    path = Path(path)
    with _open_h5(path) as h5:
        return _check_manifest(h5, path)


@contextlib.contextmanager
def _open_h5(path: Path) -> Iterator[Any]:
    import h5py

    if not path.exists():
        raise DatasetError(f"{path}: dataset file not found")
    if path.is_dir():
        raise DatasetError(f"{path}: is a folder, not a dataset file")
    if not h5py.is_hdf5(path):
        raise DatasetError(f"{path}: not an HDF5 file (expected a pdfsg dataset .h5)")
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise DatasetError(f"{path}: cannot open HDF5 file ({exc})") from exc
    with h5:
        yield h5


def _check_manifest(h5: Any, path: Path) -> dict[str, Any]:
    raw = h5.attrs.get("manifest")
    if raw is None:
        raise DatasetError(f"{path}: no 'manifest' attribute; not a pdfsg dataset file")
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    try:
        manifest = json.loads(str(raw))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: manifest is not valid JSON ({exc.msg})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DatasetError(f"{path}: not a pdfsg dataset file (manifest format is not {FORMAT!r})")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise DatasetError(
            f"{path}: dataset format_version {version!r} is not supported "
            f"(this pdfsg reads version {FORMAT_VERSION}); rebuild it with 'pdfsg dataset build'"
        )
    for key in ("params", "labels"):
        if key not in manifest:
            raise DatasetError(f"{path}: manifest has no {key!r} entry")
    return manifest


def read_dataset(path: str | os.PathLike[str]) -> Dataset:
    """Read a dataset file written by :func:`build_dataset`.

    Parameters
    ----------
    path : path of the ``.h5`` file

    Returns
    -------
    Dataset

    Raises
    ------
    DatasetError
        missing file, not HDF5, not a pdfsg dataset, unsupported format version, missing or
        inconsistent arrays.
    """
    path = Path(path)
    with _open_h5(path) as h5:
        manifest = _check_manifest(h5, path)
        missing = [k for k in REQUIRED_KEYS if k not in h5]
        if missing:
            raise DatasetError(f"{path}: dataset file lacks array(s) {', '.join(missing)}")
        arrays: dict[str, np.ndarray] = {}
        for key, ndim in REQUIRED_KEYS.items():
            data = h5[key]
            if not hasattr(data, "shape") or len(data.shape) != ndim:
                raise DatasetError(f"{path}: array {key!r} should have {ndim} dimension(s)")
            arrays[key] = data[()]
    try:
        params = PdfParams.from_dict(manifest["params"])
    except (ParamsError, TypeError) as exc:
        raise DatasetError(f"{path}: manifest params are invalid ({exc})") from exc
    labels = tuple(int(v) for v in manifest["labels"])
    n = arrays["space_group"].shape[0]
    for key in REQUIRED_KEYS:
        if key != "r" and arrays[key].shape[0] != n:
            raise DatasetError(
                f"{path}: array {key!r} has {arrays[key].shape[0]} rows, space_group has {n}"
            )
    r = np.asarray(arrays["r"], dtype=np.float64)
    npoints = r.shape[0]
    for key in ("G", "X"):
        if arrays[key].shape[1] != npoints:
            raise DatasetError(
                f"{path}: array {key!r} has {arrays[key].shape[1]} columns, r has {npoints}"
            )
    if npoints != params.npoints or not np.allclose(r, params.r_grid(), rtol=0, atol=1e-9):
        raise DatasetError(f"{path}: the r grid does not match the manifest params")
    y = np.asarray(arrays["space_group"], dtype=np.int16)
    if n and not np.isin(y, np.asarray(labels)).all():
        raise DatasetError(f"{path}: space_group holds values outside the manifest labels")
    split = np.asarray(arrays["split"], dtype=np.int8)
    if n and not np.isin(split, (TRAIN, TEST)).all():
        raise DatasetError(f"{path}: split holds values other than 0 (train) and 1 (test)")
    return Dataset(
        X=np.asarray(arrays["X"], dtype=np.float32),
        G=np.asarray(arrays["G"], dtype=np.float32),
        y=y,
        ids=_decode_strings(arrays["ids"]),
        formula=_decode_strings(arrays["formula"]),
        split=split,
        r=r,
        manifest=manifest,
        params=params,
        labels=labels,
    )


# --------------------------------------------------------------------------- writing


def write_dataset_file(
    path: str | os.PathLike[str],
    *,
    ids: Sequence[str],
    formula: Sequence[str],
    space_group: np.ndarray,
    G: np.ndarray,
    split: np.ndarray,
    params: PdfParams,
    manifest: dict[str, Any],
    X: np.ndarray | None = None,
) -> Path:
    """Write a dataset file atomically (temporary file in the same folder, then rename).

    ``manifest`` gets ``format``, ``format_version`` and ``params`` filled in; ``X`` defaults
    to :func:`pdfsg.preprocess.normalize_minmax` of ``G`` (eq. 4).
    """
    import h5py

    path = Path(path)
    n = len(ids)
    G = np.asarray(G, dtype=np.float32).reshape(n, params.npoints)
    X = normalize_minmax(G) if X is None else X
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, **manifest}
    manifest["params"] = params.to_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    str_dt = h5py.string_dtype("utf-8")
    try:
        with h5py.File(tmp, "w") as h5:
            h5.attrs["manifest"] = json.dumps(manifest, sort_keys=False)
            h5.create_dataset("ids", data=np.asarray(list(ids), dtype=object), dtype=str_dt)
            h5.create_dataset("formula", data=np.asarray(list(formula), dtype=object), dtype=str_dt)
            h5.create_dataset("space_group", data=np.asarray(space_group, dtype=np.int16))
            opts: dict[str, Any] = {"compression": "gzip", "compression_opts": 4} if n else {}
            h5.create_dataset("G", data=G, **opts)
            h5.create_dataset("X", data=np.asarray(X, dtype=np.float32), **opts)
            h5.create_dataset("split", data=np.asarray(split, dtype=np.int8))
            h5.create_dataset("r", data=params.r_grid())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def merge_datasets(
    paths: Sequence[str | os.PathLike[str]], out_path: str | os.PathLike[str], tol: float = 0.01
) -> MergeSummary:
    """Concatenate dataset files built with the same PdfParams and label set.

    Each row keeps its split.  Rows that appear in more than one file are kept once (the
    first file wins): the same id, or the same reduced formula and space group with
    normalised curves equal within ``tol`` everywhere (the same structure under another id),
    so that no structure sits in the training split of one file and the test split of
    another.
    """
    if len(paths) < 2:
        raise DatasetError("merge needs at least two dataset files")
    parts = [read_dataset(p) for p in paths]
    first = parts[0]
    for p, ds in zip(paths[1:], parts[1:], strict=True):
        if ds.labels != first.labels:
            raise DatasetError(f"{p}: label set differs from {paths[0]}")
        if not ds.params.same_grid_and_physics(first.params):
            raise DatasetError(f"{p}: PdfParams differ from {paths[0]}")
    seen_ids: set[str] = set()
    by_key: dict[tuple[str, int], list[np.ndarray]] = {}
    keep: list[tuple[int, int]] = []
    dropped = 0
    for k, ds in enumerate(parts):
        for i in range(len(ds)):
            key = (str(ds.formula[i]), int(ds.y[i]))
            same = any(np.max(np.abs(x - ds.X[i])) < tol for x in by_key.get(key, []))
            if str(ds.ids[i]) in seen_ids or same:
                dropped += 1
                continue
            seen_ids.add(str(ds.ids[i]))
            by_key.setdefault(key, []).append(ds.X[i])
            keep.append((k, i))
    order = sorted(keep, key=lambda ki: (int(parts[ki[0]].split[ki[1]]), ki))  # train first

    def col(name: str) -> list:
        return [getattr(parts[k], name)[i] for k, i in order]

    y = np.asarray(col("y"), dtype=np.int16)
    split = np.asarray(col("split"), dtype=np.int8)
    counts = {str(sg): int((y == sg).sum()) for sg in first.labels}
    manifest = {
        "label_set": first.manifest.get("label_set"),
        "labels": list(first.labels),
        "source": {
            "merged": [str(p) for p in paths],
            "manifests": [ds.manifest.get("source") for ds in parts],
        },
        "counts": counts,
        "n_duplicates": dropped,
        "split": {
            **first.manifest.get("split", {}),
            "n_train": int((split == TRAIN).sum()),
            "n_test": int((split == TEST).sum()),
            "note": "splits kept from the inputs",
        },
        "code_version": code_version(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    write_dataset_file(
        out_path,
        ids=col("ids"),
        formula=col("formula"),
        space_group=y,
        G=np.asarray(col("G")),
        X=np.asarray(col("X")),
        split=split,
        params=first.params,
        manifest=manifest,
    )
    return MergeSummary(path=Path(out_path), n_rows=len(order), n_duplicates=dropped)


@dataclass(frozen=True)
class MergeSummary:
    path: Path
    n_rows: int
    n_duplicates: int


def combine_datasets(
    parts: Sequence[tuple[Dataset, str]], manifest: dict[str, Any] | None = None
) -> Dataset:
    """One in-memory Dataset of chosen rows of several, for experiments across sources.

    Parameters
    ----------
    parts : sequence of (Dataset, role)
        ``role`` is ``"train"`` (the dataset's training rows, as training rows), ``"test"``
        (its test rows, as test rows) or ``"all-train"`` (every row, as a training row: a
        synthetic set used only for training).
    manifest : dict, optional
        Extra manifest entries; ``labels``, ``label_set``, ``params`` and ``source`` (what
        came from where) are filled in.

    Raises
    ------
    DatasetError
        The parts differ in labels or PdfParams, a role is unknown, or no row is selected.
    """
    if not parts:
        raise DatasetError("combine_datasets needs at least one dataset")
    first = parts[0][0]
    chosen: list[Dataset] = []
    splits: list[np.ndarray] = []
    source = []
    for ds, role in parts:
        if ds.labels != first.labels:
            raise DatasetError(f"combine_datasets: label sets differ ({ds.label_set} rows)")
        if not ds.params.same_grid_and_physics(first.params):
            raise DatasetError("combine_datasets: the datasets were built with other PdfParams")
        if role == "train":
            sub, split = ds.train(), TRAIN
        elif role == "test":
            sub, split = ds.test(), TEST
        elif role == "all-train":
            sub, split = ds, TRAIN
        else:
            raise DatasetError(f"combine_datasets: unknown role {role!r} (train, test, all-train)")
        chosen.append(sub)
        splits.append(np.full(len(sub), split, dtype=np.int8))
        source.append({"role": role, "n": len(sub), "source": ds.manifest.get("source")})
    split = np.concatenate(splits)
    if split.size == 0:
        raise DatasetError("combine_datasets: no rows selected")
    order = np.argsort(split, kind="stable")  # training rows first

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(d, name) for d in chosen])[order]

    y = cat("y")
    return Dataset(
        X=cat("X"),
        G=cat("G"),
        y=y,
        ids=cat("ids"),
        formula=cat("formula"),
        split=split[order],
        r=first.r,
        manifest={
            **(manifest or {}),
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "label_set": first.label_set,
            "labels": list(first.labels),
            "params": first.params.to_dict(),
            "source": source,
            "counts": {str(sg): int((y == sg).sum()) for sg in first.labels},
        },
        params=first.params,
        labels=first.labels,
    )


# --------------------------------------------------------------------------- splitting


def stratified_split(y: np.ndarray, test_fraction: float = 0.2, seed: int = 0) -> np.ndarray:
    """Train/test assignment (0/1, int8) stratified by label.

    Each class of n members gets ``min(n-1, max(1, round(test_fraction * n)))`` test rows,
    chosen by a shuffle seeded with ``(seed, label)`` (so one class's split does not depend
    on which other classes are present); classes of one member go to train.
    """
    y = np.asarray(y)
    split = np.zeros(y.shape[0], dtype=np.int8)
    if test_fraction <= 0:
        return split
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        if idx.size < 2:
            continue
        n_test = min(idx.size - 1, max(1, int(math.floor(test_fraction * idx.size + 0.5))))
        rng = np.random.default_rng([int(seed), int(label)])
        split[rng.permutation(idx)[:n_test]] = TEST
    return split


def parent_split(
    ids: Sequence[str], y: np.ndarray, test_fraction: float = 0.2, seed: int = 0
) -> np.ndarray:
    """:func:`stratified_split` of the parents: rows that share a parent (a structure and its
    variants, :func:`pdfsg.sources.variants.parent_id`) all go to the split of that parent,
    stratified by the parent's group (that of its first row).  Equals
    :func:`stratified_split` when no row is a variant."""
    from pdfsg.sources.variants import parent_id

    parents = [parent_id(str(i)) for i in ids]
    first: dict[str, int] = {}
    for row, p in enumerate(parents):
        first.setdefault(p, row)
    order = list(first)
    parent_split_of = stratified_split(
        np.asarray(y)[[first[p] for p in order]], test_fraction, seed
    )
    of = dict(zip(order, parent_split_of, strict=True))
    return np.array([of[p] for p in parents], dtype=np.int8)


# --------------------------------------------------------------------------- chunk work


@dataclass
class ChunkResult:
    """What one chunk task returns (and what a part file holds)."""

    index: int
    digest: str
    n_records: int
    ids: list[str]
    formula: list[str]
    space_group: np.ndarray  # (m,) int16
    G: np.ndarray  # (m, npoints) float32
    X: np.ndarray  # (m, npoints) float32
    lattice: np.ndarray  # (m, 3, 3) float64, cell of the parsed structure (for dedupe)
    natoms: np.ndarray  # (m,) int32
    numbers: np.ndarray  # (sum natoms,) int16 atomic numbers
    frac: np.ndarray  # (sum natoms, 3) float64
    skipped: list[tuple[str, str, str]]  # (id, reason, message)

    def save(self, path: Path) -> None:
        """Write atomically (temporary file + rename): a part file is complete or absent."""
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.npz")
        skip = np.array(self.skipped, dtype=str).reshape(-1, 3)
        np.savez(
            tmp,
            index=np.int64(self.index),
            digest=np.array(self.digest),
            n_records=np.int64(self.n_records),
            ids=np.array(self.ids, dtype=str),
            formula=np.array(self.formula, dtype=str),
            space_group=self.space_group,
            G=self.G,
            X=self.X,
            lattice=self.lattice,
            natoms=self.natoms,
            numbers=self.numbers,
            frac=self.frac,
            skipped=skip,
        )
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> ChunkResult:
        try:
            with np.load(path, allow_pickle=False) as z:
                return cls(
                    index=int(z["index"]),
                    digest=str(z["digest"]),
                    n_records=int(z["n_records"]),
                    ids=[str(v) for v in z["ids"]],
                    formula=[str(v) for v in z["formula"]],
                    space_group=z["space_group"],
                    G=z["G"],
                    X=z["X"],
                    lattice=z["lattice"],
                    natoms=z["natoms"],
                    numbers=z["numbers"],
                    frac=z["frac"],
                    skipped=[(str(a), str(b), str(c)) for a, b, c in z["skipped"]],
                )
        except (OSError, KeyError, ValueError, EOFError) as exc:
            raise DatasetError(
                f"{path}: damaged part file ({exc}); delete it to recompute that chunk"
            ) from exc

    @staticmethod
    def peek_digest(path: Path) -> str:
        try:
            with np.load(path, allow_pickle=False) as z:
                return str(z["digest"])
        except (OSError, KeyError, ValueError, EOFError) as exc:
            raise DatasetError(
                f"{path}: damaged part file ({exc}); delete it to recompute that chunk"
            ) from exc


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def process_chunk(
    index: int,
    digest: str,
    records: Sequence[StructureRecord],
    params: PdfParams,
    engine: str,
    labels: Sequence[int],
    symprec: float,
) -> ChunkResult:
    """Parse, label, filter to ``labels`` and simulate one chunk of records.

    Runs on a Dask worker (or in-process). A record that fails any step is listed in
    ``skipped`` with its reason; nothing raises except a programming error.
    """
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("SPGLIB_WARNING", "OFF")  # its C code prints to stderr otherwise
    from pdfsg.errors import StructureError
    from pdfsg.pdf import simulate
    from pdfsg.structures import StructureReadError, label_space_group, record_structure

    allowed = set(int(v) for v in labels)
    npoints = params.npoints
    ids: list[str] = []
    formula: list[str] = []
    sg: list[int] = []
    curves: list[np.ndarray] = []
    structures: list[Any] = []
    skipped: list[tuple[str, str, str]] = []
    for rec in records:
        try:
            structure = record_structure(rec)
        except StructureReadError as exc:
            skipped.append((rec.id, exc.reason, _one_line(exc)))
            continue
        except Exception as exc:
            skipped.append((rec.id, "unreadable", f"{rec.where}: {_one_line(exc)}"))
            continue
        try:
            label = (
                int(rec.space_group)
                if rec.space_group is not None
                else label_space_group(structure, symprec, rec.where)
            )
        except Exception as exc:
            skipped.append((rec.id, "label_failed", _one_line(exc)))
            continue
        if label not in allowed:
            skipped.append(
                (rec.id, "outside_label_set", f"{rec.where}: space group {label} not in label set")
            )
            continue
        try:
            g = np.asarray(simulate(structure, params, engine), dtype=np.float64)
            if g.shape != (npoints,) or not np.all(np.isfinite(g)):
                raise StructureError("G(r) has non-finite values or a wrong length")
        except Exception as exc:
            skipped.append((rec.id, "simulation_failed", f"{rec.where}: {_one_line(exc)}"))
            continue
        ids.append(rec.id)
        formula.append(structure.composition.reduced_formula)
        sg.append(label)
        curves.append(g)
        structures.append(structure)
    G = np.vstack(curves) if curves else np.zeros((0, npoints))
    natoms = np.array([len(s) for s in structures], dtype=np.int32)
    return ChunkResult(
        index=index,
        digest=digest,
        n_records=len(records),
        ids=ids,
        formula=formula,
        space_group=np.array(sg, dtype=np.int16),
        G=G.astype(np.float32),
        X=(normalize_minmax(G) if len(G) else G).astype(np.float32),
        lattice=np.array([s.lattice.matrix for s in structures], dtype=np.float64).reshape(
            -1, 3, 3
        ),
        natoms=natoms,
        numbers=np.array([site.specie.Z for s in structures for site in s], dtype=np.int16),
        frac=np.concatenate([s.frac_coords for s in structures]).astype(np.float64)
        if structures
        else np.zeros((0, 3)),
        skipped=skipped,
    )


# --------------------------------------------------------------------------- build


@dataclass(frozen=True)
class DatasetSummary:
    """What :func:`build_dataset` did.

    ``complete`` is False when the build stopped early (``max_chunks``); rerunning with the
    same arguments resumes it.  ``path`` is None then.
    """

    path: Path | None
    complete: bool
    n_read: int
    n_rows: int
    n_train: int
    n_test: int
    n_skipped: int
    skip_reasons: dict[str, int]
    n_duplicates: int
    counts: dict[int, int]
    n_chunks: int
    n_chunks_resumed: int
    n_chunks_computed: int
    wall_s: float
    skipped_log: Path | None
    duplicates_log: Path | None


def parts_dir(out_path: str | os.PathLike[str]) -> Path:
    """The work folder of a build of ``out_path``: ``<out>.parts``."""
    out = Path(out_path)
    return out.with_name(out.name + ".parts")


def code_version() -> str:
    """``pdfsg.__version__``, plus ``git describe`` of the checkout when there is one."""
    from pdfsg import __version__

    try:
        res = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return __version__
    described = res.stdout.strip()
    return f"{__version__} (git {described})" if res.returncode == 0 and described else __version__


def _batched(records: Iterable[StructureRecord], size: int) -> Iterator[list[StructureRecord]]:
    it = iter(records)
    while batch := list(itertools.islice(it, size)):
        yield batch


def _chunk_digest(records: Sequence[StructureRecord]) -> str:
    h = hashlib.sha256()
    for rec in records:
        h.update(rec.digest().encode("ascii"))
    return h.hexdigest()


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def _check_resume(log_file: Path, config: dict[str, Any]) -> None:
    try:
        previous = json.loads(log_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(
            f"{log_file}: unreadable build log ({exc}); rerun with --restart to start over"
        ) from exc
    old = previous.get("config", {})
    differ = sorted(k for k in set(old) | set(config) if old.get(k) != config.get(k))
    if differ:
        raise DatasetError(
            f"{log_file.parent}: an unfinished build with different {', '.join(differ)} is "
            "there; rerun with the same arguments to resume it, or with --restart to discard it"
        )


class _InProcess:
    """Runs chunk tasks at submission, in this process (``scheduler="synchronous"``)."""

    max_pending = 1

    def __init__(self) -> None:
        self._done: list[ChunkResult] = []

    def submit(self, *args: Any) -> None:
        self._done.append(process_chunk(*args))

    @property
    def n_pending(self) -> int:
        return len(self._done)

    def next_done(self) -> ChunkResult:
        return self._done.pop(0)

    def close(self) -> None:
        pass


class _DaskRunner:
    """Chunk tasks on a Dask cluster: a new LocalCluster, or an existing scheduler."""

    def __init__(self, scheduler: Any, n_workers: int | None) -> None:
        from distributed import Client, LocalCluster, as_completed

        self._cluster = None
        self._quiet = _QuietDistributed()
        if scheduler is None:
            n = n_workers or os.cpu_count() or 1
            self._cluster = LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",  # a free port: builds side by side do not clash
                silence_logs=logging.ERROR,
                env={
                    "OPENBLAS_NUM_THREADS": "1",
                    "OMP_NUM_THREADS": "1",
                    "MKL_NUM_THREADS": "1",
                    "SPGLIB_WARNING": "OFF",
                },
            )
            self._client = Client(self._cluster)
            self._own_client = True
        elif isinstance(scheduler, str):
            try:
                self._client = Client(scheduler, timeout="20s")
            except (OSError, TimeoutError) as exc:
                raise DatasetError(
                    f"cannot connect to Dask scheduler {scheduler} ({_one_line(exc)})"
                ) from exc
            self._own_client = True
        else:  # an existing distributed.Client
            self._client = scheduler
            self._own_client = False
        workers = self._client.scheduler_info().get("workers", {})
        self.max_pending = 2 * max(1, len(workers)) + 1
        self._ac = as_completed()
        self._pending = 0

    def submit(self, *args: Any) -> None:
        self._ac.add(self._client.submit(process_chunk, *args, pure=False))
        self._pending += 1

    @property
    def n_pending(self) -> int:
        return self._pending

    def next_done(self) -> ChunkResult:
        future = next(self._ac)
        self._pending -= 1
        return future.result()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self._own_client:
                self._client.close()
            if self._cluster is not None:
                self._cluster.close()
        self._quiet.restore()


class _QuietDistributed:
    """Keep distributed's INFO chatter (cluster start/stop) out of the caller's log while a
    build runs; ``-v`` logging of pdfsg itself is unaffected."""

    def __init__(self) -> None:
        self._logger = logging.getLogger("distributed")
        self._level = self._logger.level
        if self._logger.getEffectiveLevel() < logging.WARNING:
            self._logger.setLevel(logging.WARNING)

    def restore(self) -> None:
        self._logger.setLevel(self._level)


def _make_runner(scheduler: Any, n_workers: int | None) -> _InProcess | _DaskRunner:
    if scheduler == "synchronous":
        return _InProcess()
    return _DaskRunner(scheduler, n_workers)


def build_dataset(
    source: str | os.PathLike[str] | Iterable[Any],
    out_path: str | os.PathLike[str],
    params: PdfParams = PdfParams(),
    *,
    engine: str = "fast",
    label_set: str = "paper45",
    symprec: float = 0.1,
    dedupe: bool = True,
    test_fraction: float = 0.2,
    seed: int = 0,
    scheduler: Any = None,
    n_workers: int | None = None,
    chunk_size: int = 256,
    progress: ProgressCallback | None = None,
    restart: bool = False,
    keep_parts: bool = False,
    limit: int | None = None,
    max_chunks: int | None = None,
) -> DatasetSummary:
    """Simulate G(r) for every usable structure of ``source`` and write a dataset file.

    The records are cut into chunks of ``chunk_size``; each chunk is parsed, labelled with
    spglib, filtered to the label set and simulated by one task (a Dask cluster, processes
    with one thread each).  Each finished chunk is saved to ``<out>.parts/chunk-NNNNN.npz``
    as it completes, so a build that is killed resumes when rerun with the same arguments:
    finished chunks are not recomputed.  When every chunk is done, duplicates are dropped
    over the whole collection (:func:`pdfsg.structures.deduplicate`), rows are split
    train/test stratified by space group, and the file is written atomically.

    Structures that cannot be read, labelled or simulated, or whose group is outside the
    label set, are skipped and listed in ``<out>.skipped.csv`` (id, reason, detail); dropped
    duplicates in ``<out>.duplicates.csv`` (id, duplicate_of).

    Parameters
    ----------
    source : folder of CIFs, ``.cif``, ``.csv``/``.csv.gz`` with a ``cif`` column, a
        registered ``"KIND:SPEC"``, or an iterable of StructureRecord (see
        :func:`pdfsg.structures.iter_records`)
    out_path : the ``.h5`` file to write
    params : PDF settings (default: the paper's)
    engine : ``"fast"`` or ``"pdffit2"``
    label_set : ``"paper45"`` or ``"all230"`` (:func:`pdfsg.spacegroups.label_set`)
    symprec : float  [Å], spglib tolerance for the labels
    dedupe : drop structures with the same composition and structure as an earlier one
    test_fraction : share of each space group put in the test split
    seed : seed of the split
    scheduler : None (a new local cluster of ``n_workers`` processes, default all cores),
        ``"tcp://host:port"`` of a running Dask scheduler, a ``distributed.Client``, or
        ``"synchronous"`` (in this process, no Dask; for tests and debugging)
    n_workers : number of local worker processes (default: ``os.cpu_count()``)
    chunk_size : records per task and per part file
    progress : ``progress(done, total)`` called after each chunk
    restart : discard an unfinished build of ``out_path`` instead of resuming it
    keep_parts : keep ``<out>.parts`` after the file is written
    limit : use only the first ``limit`` records of the source
    max_chunks : compute at most this many new chunks, then stop with ``complete=False``
        (the next call resumes); None for no limit

    Raises
    ------
    DatasetError
        an unfinished build with other arguments exists (use ``restart``), or the source
        changed under a resumed build.
    StructureError
        the source itself cannot be read (missing, CSV without ``cif`` column...).
    ParamsError
        bad option values.
    """
    import time

    from pdfsg.pdf import ENGINES
    from pdfsg.sources import count_records, iter_records, source_fingerprint
    from pdfsg.spacegroups import label_set as get_label_set

    start = time.perf_counter()
    if engine not in ENGINES:
        raise ParamsError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    labels = get_label_set(label_set)
    if not (symprec > 0 and math.isfinite(symprec)):
        raise ParamsError(f"symprec must be > 0, got {symprec}")
    if not 0 <= test_fraction < 1:
        raise ParamsError(f"test_fraction must be in [0, 1), got {test_fraction}")
    if chunk_size < 1:
        raise ParamsError(f"chunk_size must be >= 1, got {chunk_size}")
    if limit is not None and limit < 0:
        raise ParamsError(f"limit must be >= 0, got {limit}")
    if n_workers is not None and n_workers < 1:
        raise ParamsError(f"n_workers must be >= 1, got {n_workers}")

    out = Path(out_path)
    if out.exists() and out.is_dir():
        raise DatasetError(f"{out}: is a folder; give the path of the .h5 file to write")
    fingerprint = source_fingerprint(source)
    config: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "params": params.to_dict(),
        "engine": engine,
        "label_set": label_set,
        "labels": list(labels),
        "symprec": float(symprec),
        "source": fingerprint,
        "chunk_size": int(chunk_size),
        "limit": limit,
    }
    # open the source (a generated source checks its spec here) before writing anything, so
    # that a bad source leaves no work folder that a corrected rerun would trip over
    total = count_records(source)
    if total is not None and limit is not None:
        total = min(total, limit)
    records: Iterable[StructureRecord] = iter_records(source)
    records = itertools.chain(list(itertools.islice(records, 1)), records)
    if limit is not None:
        records = itertools.islice(records, limit)

    parts = parts_dir(out)
    log_file = parts / "build.json"
    if parts.exists() and restart:
        shutil.rmtree(parts)
    if log_file.exists():
        _check_resume(log_file, config)
    parts.mkdir(parents=True, exist_ok=True)
    for stale in parts.glob(".*.tmp-*"):
        stale.unlink(missing_ok=True)
    if not log_file.exists():
        _write_json_atomic(log_file, {"config": config, "started": _now()})

    done = n_chunks = resumed = computed = 0
    complete = True

    def report() -> None:
        if progress is not None:
            progress(done, total)

    def store(result: ChunkResult) -> None:
        nonlocal done, computed
        result.save(parts / _part_name(result.index))
        done += result.n_records
        computed += 1
        report()

    runner = None
    try:
        for index, chunk in enumerate(_batched(records, chunk_size)):
            digest = _chunk_digest(chunk)
            part = parts / _part_name(index)
            if part.exists():
                if ChunkResult.peek_digest(part) != digest:
                    raise DatasetError(
                        f"{parts}: chunk {index} was made from other records than the source "
                        "holds now; rerun with --restart"
                    )
                n_chunks = index + 1
                resumed += 1
                done += len(chunk)
                report()
                continue
            if max_chunks is not None and computed + (runner.n_pending if runner else 0) >= (
                max_chunks
            ):
                complete = False
                break
            if runner is None:
                runner = _make_runner(scheduler, n_workers)
            runner.submit(index, digest, chunk, params, engine, labels, symprec)
            n_chunks = index + 1
            while runner.n_pending >= runner.max_pending:
                store(runner.next_done())
        while runner is not None and runner.n_pending:
            store(runner.next_done())
    finally:
        if runner is not None:
            runner.close()
    log.info("%s: %d chunks, %d resumed, %d computed", out, n_chunks, resumed, computed)
    if not complete:
        return DatasetSummary(
            path=None,
            complete=False,
            n_read=done,
            n_rows=0,
            n_train=0,
            n_test=0,
            n_skipped=0,
            skip_reasons={},
            n_duplicates=0,
            counts={},
            n_chunks=n_chunks,
            n_chunks_resumed=resumed,
            n_chunks_computed=computed,
            wall_s=time.perf_counter() - start,
            skipped_log=None,
            duplicates_log=None,
        )
    summary = _finalise(
        parts,
        out,
        n_chunks,
        params=params,
        config=config,
        dedupe=dedupe,
        test_fraction=test_fraction,
        seed=seed,
        labels=labels,
    )
    if not keep_parts:
        shutil.rmtree(parts, ignore_errors=True)
    return dataclasses.replace(
        summary,
        n_chunks_resumed=resumed,
        n_chunks_computed=computed,
        wall_s=time.perf_counter() - start,
    )


def sidecar_path(out_path: str | os.PathLike[str], suffix: str) -> Path:
    """``<out stem><suffix>`` beside the dataset file (``data.h5`` -> ``data.skipped.csv``)."""
    out = Path(out_path)
    stem = out.stem if out.suffix.lower() in (".h5", ".hdf5") else out.name
    return out.with_name(stem + suffix)


def _part_name(index: int) -> str:
    return f"chunk-{index:05d}.npz"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _structures_of(chunks: Sequence[ChunkResult], rows: Sequence[tuple[int, int]]) -> list[Any]:
    """Rebuild the pymatgen Structures of (chunk position, row in chunk) pairs."""
    from pymatgen.core import Lattice, Structure

    out = []
    for c, i in rows:
        ch = chunks[c]
        offsets = np.concatenate([[0], np.cumsum(ch.natoms)])
        lo, hi = offsets[i], offsets[i + 1]
        out.append(
            Structure(
                Lattice(ch.lattice[i]),
                [int(z) for z in ch.numbers[lo:hi]],
                ch.frac[lo:hi],
            )
        )
    return out


def _finalise(
    parts: Path,
    out: Path,
    n_chunks: int,
    *,
    params: PdfParams,
    config: dict[str, Any],
    dedupe: bool,
    test_fraction: float,
    seed: int,
    labels: Sequence[int],
) -> DatasetSummary:
    from pdfsg.structures import deduplicate

    chunks = [ChunkResult.load(parts / _part_name(i)) for i in range(n_chunks)]
    where = [(c, i) for c, ch in enumerate(chunks) for i in range(len(ch.ids))]
    ids = [i for ch in chunks for i in ch.ids]
    formula = [f for ch in chunks for f in ch.formula]
    npoints = params.npoints
    sg = np.concatenate([ch.space_group for ch in chunks] or [np.zeros(0, np.int16)])
    G = np.concatenate([ch.G for ch in chunks] or [np.zeros((0, npoints), np.float32)])
    X = np.concatenate([ch.X for ch in chunks] or [np.zeros((0, npoints), np.float32)])
    skipped = [s for ch in chunks for s in ch.skipped]
    n_read = sum(ch.n_records for ch in chunks)

    duplicates: dict[int, int] = {}
    if dedupe:
        groups: dict[tuple[str, int], list[int]] = {}
        for row, (f, s) in enumerate(zip(formula, sg, strict=True)):
            groups.setdefault((f, int(s)), []).append(row)
        for rows in groups.values():
            if len(rows) < 2:
                continue
            structures = _structures_of(chunks, [where[r] for r in rows])
            res = deduplicate((r, st, int(sg[r])) for r, st in zip(rows, structures, strict=True))
            duplicates.update({int(k): int(v) for k, v in res.duplicates.items()})
    log.info("%s: %d rows, %d duplicates dropped", out, len(ids), len(duplicates))
    keep = np.array([r not in duplicates for r in range(len(ids))], dtype=bool)
    kept_rows = np.flatnonzero(keep)
    split_kept = parent_split([ids[r] for r in kept_rows], sg[kept_rows], test_fraction, seed)
    order = kept_rows[np.argsort(split_kept, kind="stable")]  # train rows first
    split = np.sort(split_kept, kind="stable")

    counts = Counter(int(v) for v in sg[order])
    skip_reasons = Counter(reason for _, reason, _ in skipped)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "params": params.to_dict(),
        "engine": config["engine"],
        "label_set": config["label_set"],
        "labels": list(labels),
        "symprec": config["symprec"],
        "source": {**config["source"], "limit": config["limit"]},
        "n_rows": int(order.size),
        "counts": {str(k): counts[k] for k in sorted(counts)},
        "n_read": n_read,
        "n_skipped": len(skipped),
        "skip_reasons": {r: skip_reasons[r] for r in SKIP_REASONS if skip_reasons[r]},
        "n_duplicates": len(duplicates),
        "dedupe": {
            "enabled": dedupe,
            "method": "same reduced formula, same space group, pymatgen StructureMatcher "
            "(ltol 0.2, stol 0.3, angle_tol 5) match; first in source order kept",
        },
        "split": {
            "seed": int(seed),
            "test_fraction": float(test_fraction),
            "method": SPLIT_METHOD,
            "n_train": int(np.sum(split == TRAIN)),
            "n_test": int(np.sum(split == TEST)),
        },
        "chunk_size": config["chunk_size"],
        "code_version": code_version(),
        "created": _now(),
    }
    write_dataset_file(
        out,
        ids=[ids[r] for r in order],
        formula=[formula[r] for r in order],
        space_group=sg[order],
        G=G[order],
        X=X[order],
        split=split,
        params=params,
        manifest=manifest,
    )
    skipped_log = sidecar_path(out, ".skipped.csv")
    with open(skipped_log, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "reason", "detail"])
        writer.writerows(skipped)
    duplicates_log = sidecar_path(out, ".duplicates.csv")
    with open(duplicates_log, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "duplicate_of"])
        writer.writerows((ids[d], ids[k]) for d, k in sorted(duplicates.items()))
    return DatasetSummary(
        path=out,
        complete=True,
        n_read=n_read,
        n_rows=int(order.size),
        n_train=manifest["split"]["n_train"],
        n_test=manifest["split"]["n_test"],
        n_skipped=len(skipped),
        skip_reasons=dict(manifest["skip_reasons"]),
        n_duplicates=len(duplicates),
        counts={k: counts[k] for k in sorted(counts)},
        n_chunks=n_chunks,
        n_chunks_resumed=0,
        n_chunks_computed=0,
        wall_s=0.0,
        skipped_log=skipped_log,
        duplicates_log=duplicates_log,
    )
