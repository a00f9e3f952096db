r"""Random crystals of any space group, made with PyXtal to resemble real inorganic crystals.

The paper trained on 101,802 ICSD structures, which most users cannot redistribute.  This
module makes labelled training crystals instead: for a space group it draws a *plan*
(elements, stoichiometry, occupied Wyckoff positions, cell volume and shape) from statistics
of real structures, lets PyXtal place the atoms at random on those Wyckoff positions, and keeps
the crystal only if

* spglib (``symprec`` 0.1 Å) finds exactly the requested space group (random coordinates
  can land on a supergroup, a lattice can be pseudo-symmetric), and
* no two atoms are closer than max(``min_distance_factor`` × (r_i + r_j),
  ``pair_min_scale`` × the shortest distance of that element pair in real crystals), with r
  the covalent radii of PyXtal's element table (the radii PyXtal uses while placing atoms).

How a plan is drawn (see :class:`SyntheticStats`):

1. Wyckoff positions.  With probability ``template_fraction`` × (the share of the group's real
   structures that the table's templates cover) a *template* observed in real crystals of
   that group (in at least ``min_template_count`` = 2 of them) is drawn in proportion to how
   often it occurs: the multiset of occupied Wyckoff letters, each tagged with the
   electronegativity rank of its element (``"0a 1b"`` = rock salt in Fm-3m: the least
   electronegative element on 4a, the other on 4b).  Otherwise (and always for groups
   without data) the number of orbits is drawn from that group's distribution (or the global
   one) and the letters one by one, in proportion to the letter's use in that group, smoothed
   by a prior over the letter's degrees of freedom learnt from all groups; fixed positions
   (no free parameter) are used at most once.
2. Elements.  The first element is drawn in proportion to its frequency in real crystals of
   that space group (smoothed by the global frequencies), each further one in proportion to
   that and to the product of its co-occurrence counts with the elements already drawn (so
   oxygen comes with metals, halogens with alkali metals, and pairs never seen together are
   rare).  The elements are sorted by Pauling electronegativity and put on the template's
   ranks: anion-like elements take the anion sites of the template.
3. Volume.  ``V = Σ_e n_e v_e × exp(σ ξ)``, ξ ~ N(0, 1), with per-element volumes v_e fitted
   by non-negative least squares to the volume per atom of the real crystals and σ the
   spread of the log residuals.
4. Cell shape.  Axis ratios and angles are drawn from their quantiles in real crystals of
   the same group (groups with at least ``LATTICE_MIN_COUNT`` structures) or lattice system.

PyXtal then places the atoms at random (no pair closer than ``min_distance_factor`` × the sum
of covalent radii), and a short symmetry-keeping relaxation (``relax_steps`` moves of the
free Wyckoff parameters, see :func:`_relax`) moves nearest-neighbour distances into the
window real crystals show and pushes apart pairs of elements closer than they ever are in
real crystals (the table's per-pair minima: O-O ≥ 2.17 Å, F-F ≥ 2.24 Å...); without it random
placement piles distances up at the minimum and makes many short anion-anion contacts.

Atom counts (``atoms_range``, the table's ``atoms``) are per *conventional* cell, the cell
whose Wyckoff multiplicities the International Tables give and that PyXtal builds; the table
also records atoms per primitive cell for reference.

Crystal ``k`` of a run depends only on ``(seed, k)``: its space group is ``groups[k % G]``
(balanced) or drawn from ``distribution`` with a generator seeded by ``(seed, k)``, and all of
its random draws come from ``numpy.random.default_rng([seed, k])``.  So any range of indices
can be made on its own (:func:`generate_chunk`), in parallel, and a stopped run resumes.

The default table, ``pdfsg/data/synthetic_stats.json``, holds only aggregated counts and
quantiles computed by ``pdfsg stats build`` from Materials Project structures (CC BY 4.0);
no structure is shipped.
"""

from __future__ import annotations

import csv
import datetime as _dt
import functools
import gzip
import io
import json
import logging
import math
import os
import sys
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pdfsg import spacegroups
from pdfsg.errors import ParamsError, StructureError

if TYPE_CHECKING:  # pragma: no cover
    from pymatgen.core import Structure

    from pdfsg.structures import StructureRecord

log = logging.getLogger(__name__)

__all__ = [
    "STATS_FORMAT",
    "GenerationStats",
    "SyntheticConfig",
    "SyntheticStats",
    "analyze_structure",
    "build_stats",
    "crystal_id",
    "default_stats_path",
    "generate",
    "generate_chunk",
    "generate_crystal",
    "iter_source_structures",
    "iter_synthetic_records",
    "load_stats",
    "min_distance_ratio",
    "space_group_of",
]

STATS_FORMAT = "pdfsg-synthetic-stats"
STATS_FORMAT_VERSION = 1
#: quantile levels at which continuous distributions are stored
QUANTILES = tuple(np.round(np.linspace(0.0, 1.0, 21), 2).tolist())
#: a group needs this many structures for its own cell-shape quantiles (else its system's)
LATTICE_MIN_COUNT = 30
#: share of the degrees-of-freedom prior (vs a group's own letter counts) when Wyckoff
#: letters are drawn one by one: a letter never seen in the group keeps a small chance
LETTER_PRIOR_SHARE = 0.1
#: pseudo-count α of the co-occurrence model (see SyntheticStats.sample_elements)
PAIR_SMOOTHING = 1.0
#: pseudo-count (structures of the global element mix) added to a group's element counts
GROUP_ELEMENT_PRIOR = 5.0
#: per element pair, the shortest distance is learnt as this quantile over real crystals
#: holding both elements, for pairs seen in at least PAIR_MIN_COUNT of them
PAIR_MIN_QUANTILE = 0.02
PAIR_MIN_COUNT = 10
#: rejection reasons counted in :class:`GenerationStats`
#: placements PyXtal tries on one drawn cell before the attempt counts as rejected
COORD_ATTEMPTS = 8
#: nearest-neighbour window (d / (r_i + r_j)) that relaxation aims for; real crystals have
#: per-atom ratios 0.83 / 0.93 / 1.03 at 10 / 50 / 90 % (benchmarks/synthetic_realism.py),
#: and this window reproduces them best with the default min_distance_factor
RELAX_WINDOW = (0.9, 1.03)
#: standard deviation [Å] of one relaxation move
RELAX_STEP = 0.15
REASONS = ("plan", "placement", "symmetry", "distance")
_RHOMBOHEDRAL = frozenset({146, 148, 155, 160, 161, 166, 167})


# --------------------------------------------------------------------------- elements


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


@functools.cache
def _electronegativity(symbol: str) -> float:
    """Pauling electronegativity; elements without one (noble gases) sort last."""
    from pymatgen.core import Element

    try:
        x = float(Element(symbol).X)
    except (ValueError, KeyError) as exc:
        raise ParamsError(f"unknown element {symbol!r}") from exc
    return x if math.isfinite(x) and x > 0 else 5.0


@functools.cache
def _atomic_number(symbol: str) -> int:
    from pymatgen.core import Element

    try:
        return int(Element(symbol).Z)
    except (ValueError, KeyError) as exc:
        raise ParamsError(f"unknown element {symbol!r}") from exc


def _rank_key(symbol: str) -> tuple[float, int]:
    return (_electronegativity(symbol), _atomic_number(symbol))


# --------------------------------------------------------------------------- Wyckoff tables


@functools.cache
def _pyxtal_group(number: int) -> Any:
    from pyxtal.symmetry import Group

    return Group(number)


@functools.cache
def _wyckoff_table(number: int) -> dict[str, tuple[int, int]]:
    """Wyckoff letter -> (multiplicity in the conventional cell, degrees of freedom)."""
    g = _pyxtal_group(number)
    return {w.letter: (int(w.multiplicity), int(w.get_dof())) for w in g.Wyckoff_positions}


def _lattice_key(number: int) -> str:
    """Lattice system used to pool cell shapes (R groups apart from P trigonal ones)."""
    if number in _RHOMBOHEDRAL:
        return "rhombohedral"
    return spacegroups.get(number).crystal_system


#: cell-shape parameters stored per lattice system: ratios b/a, c/a and angles [deg]
_SHAPE_PARAMS: Mapping[str, tuple[str, ...]] = {
    "triclinic": ("b/a", "c/a", "alpha", "beta", "gamma"),
    "monoclinic": ("b/a", "c/a", "beta"),
    "orthorhombic": ("b/a", "c/a"),
    "tetragonal": ("c/a",),
    "trigonal": ("c/a",),
    "rhombohedral": ("c/a",),
    "hexagonal": ("c/a",),
    "cubic": (),
}


# --------------------------------------------------------------------------- geometry


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
    """Space-group number that spglib finds (0 when it finds none)."""
    import spglib

    cell = (
        np.asarray(structure.lattice.matrix),
        np.asarray(structure.frac_coords),
        [site.specie.Z for site in structure],
    )
    ds = spglib.get_symmetry_dataset(cell, symprec=symprec)
    return 0 if ds is None else int(ds.number)


# --------------------------------------------------------------------------- statistics: read


def _csv_rows(path: Path) -> Iterator[dict[str, str]]:
    csv.field_size_limit(sys.maxsize)
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as fh:  # type: ignore[operator]
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or "cif" not in reader.fieldnames:
            raise StructureError(f"{path}: no 'cif' column (a structure CSV needs one)")
        yield from reader


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
        path = Path(src)
        if not path.exists():
            raise StructureError(f"{path}: no such file or folder")
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix.lower() == ".cif")
            if not files:
                raise StructureError(f"{path}: folder holds no .cif files")
            items: Iterable[tuple[str, str]] = ((p.stem, p.read_text("utf-8")) for p in files)
        elif path.suffix.lower() == ".cif":
            items = [(path.stem, path.read_text("utf-8"))]
        elif path.name.lower().endswith((".csv", ".csv.gz")):
            items = (
                (row.get("material_id") or f"{path.name}:{i}", row["cif"])
                for i, row in enumerate(_csv_rows(path))
            )
        else:
            raise StructureError(f"{path}: not a .csv, .csv.gz, .cif or a folder of CIFs")
        for ident, text in items:
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


# --------------------------------------------------------------------------- statistics: analyse


def analyze_structure(structure: Structure, symprec: float = 0.1) -> dict[str, Any]:
    """What :func:`build_stats` takes from one real structure.

    Returns
    -------
    dict with ``group`` (spglib number), ``template`` (``"0a 1b"``: electronegativity rank
    of the element + Wyckoff letter, one token per orbit, sorted), ``atoms`` and
    ``atoms_prim`` (per conventional / primitive cell), ``counts`` (element -> atoms per
    conventional cell), ``volume_per_atom`` [Å³], ``shape`` (cell-shape parameters of the
    spglib standard cell), ``nn_ratio`` (:func:`min_distance_ratio`) and ``pair_min``
    (:func:`pair_min_distances`).

    Raises
    ------
    StructureError
        disordered structure or spglib finding no symmetry.
    """
    import spglib

    if not structure.is_ordered:
        raise StructureError("partial occupancy")
    symbols = [site.specie.symbol for site in structure]
    numbers = [_atomic_number(s) for s in symbols]
    cell = (np.asarray(structure.lattice.matrix), np.asarray(structure.frac_coords), numbers)
    ds = spglib.get_symmetry_dataset(cell, symprec=symprec)
    if ds is None:
        raise StructureError("spglib found no symmetry")
    number = int(ds.number)
    table = _wyckoff_table(number)
    elements = sorted(set(symbols), key=_rank_key)
    rank = {e: i for i, e in enumerate(elements)}
    tokens = []
    counts: Counter[str] = Counter()
    for orbit in sorted(set(int(o) for o in ds.crystallographic_orbits)):
        letter = ds.wyckoffs[orbit]
        if letter not in table:
            raise StructureError(f"spglib letter {letter!r} unknown in group {number}")
        tokens.append((rank[symbols[orbit]], letter))
        counts[symbols[orbit]] += table[letter][0]
    tokens.sort(key=lambda t: (t[0], -table[t[1]][0], t[1]))
    atoms = int(sum(counts.values()))
    nstd = len(ds.std_types)
    if nstd != atoms:
        raise StructureError(f"Wyckoff multiplicities ({atoms}) != standard cell ({nstd})")
    centring = {"P": 1, "A": 2, "B": 2, "C": 2, "I": 2, "F": 4, "R": 3}[ds.international[0]]
    a, b, c = np.linalg.norm(ds.std_lattice, axis=1)
    va, vb, vc = ds.std_lattice

    def angle(u: np.ndarray, v: np.ndarray) -> float:
        return float(np.degrees(np.arccos(np.dot(u, v) / np.linalg.norm(u) / np.linalg.norm(v))))

    all_shape = {
        "b/a": b / a,
        "c/a": c / a,
        "alpha": angle(vb, vc),
        "beta": angle(va, vc),
        "gamma": angle(va, vb),
    }
    shape = {k: float(all_shape[k]) for k in _SHAPE_PARAMS[_lattice_key(number)]}
    pair_min = pair_min_distances(structure)
    rsum = {k: sum(_covalent_radius(e) for e in k.split()) for k in pair_min}
    return {
        "group": number,
        "template": " ".join(f"{r}{letter}" for r, letter in tokens),
        "atoms": atoms,
        "atoms_prim": atoms // centring,
        "counts": dict(counts),
        "volume_per_atom": float(structure.volume / len(structure)),
        "shape": shape,
        "nn_ratio": min(pair_min[k] / rsum[k] for k in pair_min),
        "pair_min": pair_min,
    }


def _quantiles(values: Sequence[float]) -> list[float]:
    return [round(float(x), 4) for x in np.quantile(np.asarray(values, float), QUANTILES)]


def _fit_element_volumes(
    rows: list[dict[str, int]], vpa: list[float], elements: list[str]
) -> tuple[dict[str, float], float]:
    """Per-element volumes v_e [Å³] with V/N ≈ Σ_e x_e v_e (NNLS), and σ of log(V/V_fit)."""
    from scipy.optimize import nnls

    index = {e: i for i, e in enumerate(elements)}
    x = np.zeros((len(rows), len(elements)))
    for i, counts in enumerate(rows):
        n = sum(counts.values())
        for e, c in counts.items():
            x[i, index[e]] = c / n
    y = np.asarray(vpa)
    v, _ = nnls(x, y, maxiter=50 * len(elements))
    # elements seen too rarely to be fitted (v_e = 0): their mean volume per atom
    for j in range(len(elements)):
        if v[j] <= 0.5:
            sel = x[:, j] > 0
            v[j] = float(np.mean(y[sel])) if sel.any() else float(np.median(y))
    fit = x @ v
    sigma = float(np.std(np.log(y / fit)))
    return {e: round(float(v[index[e]]), 3) for e in elements}, round(sigma, 4)


def build_stats(
    structures: Iterable[tuple[str, Structure | None, str]],
    symprec: float = 0.1,
    sources: Sequence[str] = (),
    attribution: str = "",
    license: str = "",
    min_template_count: int = 2,
) -> dict[str, Any]:
    """Aggregate the statistics table that :class:`SyntheticStats` reads.

    Parameters
    ----------
    structures : iterable of (id, Structure or None, reason)
        as :func:`iter_source_structures` yields them.
    symprec : float  [Å]
        spglib tolerance for the space group and Wyckoff letters.
    sources, attribution, license : recorded in the table's ``source`` block.
    min_template_count : int
        Keep a Wyckoff template only if at least this many structures share it (default 2:
        no template describes a single entry of the source; the rare ones still count in
        the letter and orbit statistics).

    Returns
    -------
    dict, JSON-serialisable: only counts, quantiles and fitted per-element volumes.
    """
    if symprec <= 0:
        raise ParamsError(f"symprec must be > 0, got {symprec}")
    if min_template_count < 1:
        raise ParamsError(f"min_template_count must be >= 1, got {min_template_count}")
    skipped: Counter[str] = Counter()
    n_read = 0
    per_group: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for _ident, structure, reason in structures:
        n_read += 1
        if structure is None:
            skipped[reason] += 1
            continue
        try:
            row = analyze_structure(structure, symprec)
        except StructureError as exc:
            skipped[str(exc).split(" (")[0]] += 1
            continue
        except ParamsError:  # an element missing from PyXtal's tables
            skipped["element without covalent radius"] += 1
            continue
        per_group[row["group"]].append(row)
    rows = [r for g in sorted(per_group) for r in per_group[g]]
    if not rows:
        raise StructureError("no usable structure in the sources")

    element_structures: Counter[str] = Counter()
    element_atoms: Counter[str] = Counter()
    pairs: Counter[str] = Counter()
    n_el_given_orbits: dict[int, Counter[int]] = defaultdict(Counter)
    dof: Counter[int] = Counter()
    shapes: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    pair_min: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        for k, v in r["pair_min"].items():
            pair_min[k].append(v)
        els = sorted(r["counts"])
        element_structures.update(els)
        element_atoms.update(r["counts"])
        for i, e in enumerate(els):
            for f in els[i + 1 :]:
                pairs[f"{e} {f}"] += 1
        n_orbits = len(r["template"].split())
        n_el_given_orbits[n_orbits][len(els)] += 1
        table = _wyckoff_table(r["group"])
        dof.update(table[t[1:]][1] for t in _split_tokens(r["template"]))
        for k, v in r["shape"].items():
            shapes[_lattice_key(r["group"])][k].append(v)
    elements = sorted(element_structures, key=_atomic_number)
    volumes, sigma = _fit_element_volumes(
        [r["counts"] for r in rows], [r["volume_per_atom"] for r in rows], elements
    )

    groups: dict[str, Any] = {}
    for g in sorted(per_group):
        grows = per_group[g]
        letters: Counter[str] = Counter()
        for r in grows:
            letters.update(t[1:] for t in _split_tokens(r["template"]))
        entry: dict[str, Any] = {
            "n": len(grows),
            "atoms": _sorted_counts(Counter(r["atoms"] for r in grows)),
            "atoms_prim": _sorted_counts(Counter(r["atoms_prim"] for r in grows)),
            "orbits": _sorted_counts(Counter(len(r["template"].split()) for r in grows)),
            "letters": dict(sorted(letters.items())),
            "elements": dict(Counter(e for r in grows for e in r["counts"]).most_common()),
            "templates": {
                t: c
                for t, c in Counter(r["template"] for r in grows).most_common()
                if c >= min_template_count
            },
            "volume_per_atom": _quantiles([r["volume_per_atom"] for r in grows]),
        }
        if len(grows) >= LATTICE_MIN_COUNT and grows[0]["shape"]:
            entry["shape"] = {
                k: _quantiles([r["shape"][k] for r in grows]) for k in grows[0]["shape"]
            }
        groups[str(g)] = entry

    from pdfsg import __version__

    return {
        "format": STATS_FORMAT,
        "format_version": STATS_FORMAT_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "code_version": __version__,
        "source": {
            "files": [Path(s).name for s in sources],
            "n_read": n_read,
            "n_used": len(rows),
            "n_skipped": n_read - len(rows),
            "skip_reasons": dict(skipped.most_common()),
            "symprec": symprec,
            "min_template_count": min_template_count,
            "attribution": attribution,
            "license": license,
            "note": "aggregated statistics only (counts, quantiles, fitted volumes); "
            "no structure is stored",
        },
        "cell": "atom counts and Wyckoff multiplicities are per conventional cell "
        "(spglib standard setting); atoms_prim per primitive cell",
        "radii": "PyXtal covalent radii",
        "quantile_levels": list(QUANTILES),
        "elements": {
            e: {
                "structures": element_structures[e],
                "atoms": element_atoms[e],
                "volume": volumes[e],
            }
            for e in elements
        },
        "volume_log_sigma": sigma,
        "pairs": dict(sorted(pairs.items())),
        "n_elements_given_orbits": {
            str(k): _sorted_counts(v) for k, v in sorted(n_el_given_orbits.items())
        },
        "dof": _sorted_counts(dof),
        "nn_ratio": _quantiles([r["nn_ratio"] for r in rows]),
        "pair_min_quantile": PAIR_MIN_QUANTILE,
        "pair_min_distance": {
            k: round(float(np.quantile(v, PAIR_MIN_QUANTILE)), 3)
            for k, v in sorted(pair_min.items())
            if len(v) >= PAIR_MIN_COUNT
        },
        "atoms": _sorted_counts(Counter(r["atoms"] for r in rows)),
        "shape": {
            key: {k: _quantiles(v) for k, v in params.items()} for key, params in shapes.items()
        },
        "groups": groups,
    }


def _sorted_counts(c: Mapping[int, int]) -> dict[str, int]:
    return {str(k): int(c[k]) for k in sorted(c)}


def _split_tokens(template: str) -> list[str]:
    return template.split() if template else []


def _parse_token(token: str) -> tuple[int, str]:
    """``"12a"`` -> (12, "a"): rank digits then one Wyckoff letter."""
    return int(token[:-1]), token[-1]


# --------------------------------------------------------------------------- statistics: load


def default_stats_path() -> Path:
    """The statistics table shipped with pdfsg."""
    return Path(str(resources.files("pdfsg") / "data" / "synthetic_stats.json"))


@dataclass(frozen=True)
class _Template:
    ranks: tuple[int, ...]  # per orbit: electronegativity rank of its element
    letters: tuple[str, ...]
    atoms: int
    n_species: int


class SyntheticStats:
    """A statistics table (see :func:`build_stats`) prepared for sampling.

    Use :func:`load_stats` to get one; it is read-only and cheap to share.
    """

    def __init__(self, data: Mapping[str, Any], path: str = "") -> None:
        if data.get("format") != STATS_FORMAT:
            raise ParamsError(f"{path or 'stats'}: not a pdfsg synthetic-stats table")
        if int(data.get("format_version", 0)) > STATS_FORMAT_VERSION:
            raise ParamsError(
                f"{path}: stats format {data['format_version']} is newer than this pdfsg reads"
            )
        self.data = data
        self.path = path
        try:
            self._index_tables(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ParamsError(f"{path or 'stats'}: malformed stats table ({exc!r})") from None

    def _index_tables(self, data: Mapping[str, Any]) -> None:
        els = data["elements"]
        self.elements: tuple[str, ...] = tuple(els)
        self.index = {e: i for i, e in enumerate(self.elements)}
        self.frequency = np.array([els[e]["structures"] for e in self.elements], float)
        self.volume = {e: float(els[e]["volume"]) for e in self.elements}
        n = len(self.elements)
        self.pairs = np.zeros((n, n))
        for key, c in data["pairs"].items():
            a, b = key.split()
            if a in self.index and b in self.index:
                i, j = self.index[a], self.index[b]
                self.pairs[i, j] = self.pairs[j, i] = c
        self.volume_log_sigma = float(data["volume_log_sigma"])
        self.pair_min_distance: dict[str, float] = {
            k: float(v) for k, v in data.get("pair_min_distance", {}).items()
        }
        self.levels = np.asarray(data.get("quantile_levels", QUANTILES), float)
        # volume per atom / covalent-radius³, to give elements outside the table a volume
        ratios = [v / _covalent_radius(e) ** 3 for e, v in self.volume.items()]
        self._volume_per_r3 = float(np.median(ratios)) if ratios else 4.0

    # ---- simple look-ups
    def group(self, number: int) -> Mapping[str, Any]:
        """The table's entry of a space group (empty when the sources had none)."""
        return self.data["groups"].get(str(number), {})

    def element_volume(self, symbol: str) -> float:
        """Fitted volume per atom [Å³] (from the covalent radius for unseen elements)."""
        if symbol in self.volume:
            return self.volume[symbol]
        return self._volume_per_r3 * _covalent_radius(symbol) ** 3

    @functools.cached_property
    def _templates(self) -> dict[int, tuple[list[_Template], np.ndarray]]:
        out: dict[int, tuple[list[_Template], np.ndarray]] = {}
        for key, entry in self.data["groups"].items():
            number = int(key)
            table = _wyckoff_table(number)
            temps, weights = [], []
            for text, count in entry.get("templates", {}).items():
                parsed = [_parse_token(t) for t in _split_tokens(text)]
                if not parsed or any(letter not in table for _, letter in parsed):
                    continue
                ranks = tuple(r for r, _ in parsed)
                letters = tuple(letter for _, letter in parsed)
                atoms = sum(table[letter][0] for letter in letters)
                temps.append(_Template(ranks, letters, atoms, max(ranks) + 1))
                weights.append(count)
            out[number] = (temps, np.asarray(weights, float))
        return out

    def templates(self, number: int) -> tuple[list[_Template], np.ndarray]:
        return self._templates.get(number, ([], np.zeros(0)))

    def quantile_sample(self, q: Sequence[float], rng: np.random.Generator) -> float:
        """Inverse-CDF draw from stored quantiles (linear in between)."""
        return float(np.interp(rng.random(), self.levels, np.asarray(q, float)))

    @functools.cached_property
    def _n_el_given_orbits(self) -> dict[int, dict[int, int]]:
        return {
            int(k): {int(a): int(b) for a, b in v.items()}
            for k, v in self.data["n_elements_given_orbits"].items()
        }

    @functools.cached_property
    def _orbits_by_system(self) -> dict[str, Counter[int]]:
        out: dict[str, Counter[int]] = defaultdict(Counter)
        for key, entry in self.data["groups"].items():
            system = spacegroups.get(int(key)).crystal_system
            for k, c in entry.get("orbits", {}).items():
                out[system][int(k)] += c
                out["all"][int(k)] += c
        return out

    # ---- sampling
    def sample_elements(
        self,
        n: int,
        rng: np.random.Generator,
        allowed: Sequence[str] | None = None,
        group: int | None = None,
    ) -> list[str] | None:
        """``n`` distinct elements, drawn one after the other (naive Bayes on co-occurrence).

        P(f | g, e_1..e_k) ∝ P(f | g) Π_j (C(e_j, f) + α p(e_j)) / (c_f + α): c_f the number
        of real structures holding f, C the number holding both, p(e) = c_e / Σ c, α = 1, and
        P(f | g) ∝ c_g(f) + κ p(f) the share of structures of space group g holding f,
        smoothed by κ = ``GROUP_ELEMENT_PRIOR`` structures of the global mix.  The first
        element is drawn from P(f | g) alone.  None when the pool is too small.
        """
        pool = list(allowed) if allowed else list(self.elements)
        if n > len(pool):
            return None
        idx = np.array([self.index.get(e, -1) for e in pool])
        known = idx >= 0
        base = np.where(known, self.frequency[np.maximum(idx, 0)], 0.0) + 1e-3
        p_all = self.frequency / max(self.frequency.sum(), 1.0)
        weights = base / base.sum()
        if group is not None:
            in_group = self.group(group).get("elements", {})
            if in_group:
                own = np.array([float(in_group.get(e, 0)) for e in pool])
                weights = own + GROUP_ELEMENT_PRIOR * weights
        chosen: list[int] = []
        for _ in range(n):
            w = weights.copy()
            w[chosen] = 0.0
            if not np.isfinite(w).all() or w.sum() <= 0:
                return None
            k = int(rng.choice(len(pool), p=w / w.sum()))
            chosen.append(k)
            if known[k]:
                row = self.pairs[idx[k]]
                co = np.where(known, row[np.maximum(idx, 0)], 0.0)
                prior = p_all[idx[k]]
            else:
                co, prior = np.zeros(len(pool)), 1e-3
            weights = weights * (co + PAIR_SMOOTHING * prior) / (base + PAIR_SMOOTHING)
        return [pool[k] for k in chosen]

    def sample_n_elements(self, n_orbits: int, rng: np.random.Generator, lo: int, hi: int) -> int:
        hi = min(hi, n_orbits)
        table = self._n_el_given_orbits.get(n_orbits)
        if not table:
            near = min(self._n_el_given_orbits, key=lambda k: abs(k - n_orbits), default=None)
            table = self._n_el_given_orbits.get(near, {}) if near is not None else {}
        ks = [k for k in table if lo <= k <= hi]
        if not ks:
            return int(rng.integers(lo, hi + 1)) if lo <= hi else 0
        w = np.array([table[k] for k in ks], float)
        return int(ks[int(rng.choice(len(ks), p=w / w.sum()))])

    def sample_n_orbits(self, number: int, rng: np.random.Generator) -> int:
        dist = {int(k): c for k, c in self.group(number).get("orbits", {}).items()}
        system = spacegroups.get(number).crystal_system
        pooled = self._orbits_by_system.get(system) or self._orbits_by_system.get("all")
        if pooled:  # blend in the pooled distribution so rare groups see other counts
            total = sum(pooled.values())
            scale = max(1.0, 0.1 * sum(dist.values())) / total
            for k, c in pooled.items():
                dist[k] = dist.get(k, 0) + c * scale
        if not dist:
            return int(rng.integers(1, 5))
        ks = sorted(dist)
        w = np.array([dist[k] for k in ks], float)
        return ks[int(rng.choice(len(ks), p=w / w.sum()))]

    def letter_weights(self, number: int) -> tuple[list[str], np.ndarray]:
        """Wyckoff letters of a group and their weights for one-by-one drawing."""
        table = _wyckoff_table(number)
        letters = sorted(table)
        dof_counts = {int(k): c for k, c in self.data.get("dof", {}).items()}
        total = sum(dof_counts.values()) or 1
        n_with = Counter(table[x][1] for x in letters)
        used = self.group(number).get("letters", {})
        prior_mass = max(1.0, LETTER_PRIOR_SHARE * sum(used.values()))
        w = []
        for x in letters:
            d = table[x][1]
            prior = (dof_counts.get(d, 0) + 1) / (total + 4) / n_with[d]
            w.append(used.get(x, 0) + prior_mass * prior)
        return letters, np.asarray(w, float)

    def shape_quantiles(self, number: int) -> Mapping[str, Sequence[float]]:
        own = self.group(number).get("shape")
        if own:
            return own
        return self.data.get("shape", {}).get(_lattice_key(number), {})


@functools.lru_cache(maxsize=8)
def _load_stats_cached(path: str, mtime: float) -> SyntheticStats:
    try:
        data = json.loads(Path(path).read_text("utf-8"))
    except FileNotFoundError:
        raise ParamsError(f"{path}: stats file not found") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ParamsError(f"{path}: cannot read stats table ({exc})") from None
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: not a pdfsg synthetic-stats table")
    return SyntheticStats(data, path)


def load_stats(path: str | os.PathLike[str] | None = None) -> SyntheticStats:
    """Read a statistics table (default: the one shipped with pdfsg); cached per file."""
    p = Path(path) if path is not None else default_stats_path()
    try:
        mtime = p.stat().st_mtime
    except OSError:
        raise ParamsError(f"{p}: stats file not found") from None
    return _load_stats_cached(str(p), mtime)


# --------------------------------------------------------------------------- configuration


def _check_range(name: str, value: Any, lowest: int) -> tuple[int, int]:
    try:
        lo, hi = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ParamsError(
            f"SyntheticConfig.{name} must be a (min, max) pair, got {value!r}"
        ) from None
    if lo < lowest:
        raise ParamsError(f"SyntheticConfig.{name} minimum must be >= {lowest}, got {lo}")
    if lo > hi:
        raise ParamsError(f"SyntheticConfig.{name}: min ({lo}) > max ({hi})")
    return lo, hi


@dataclass(frozen=True)
class SyntheticConfig:
    """What to generate.

    Parameters
    ----------
    space_groups : label-set name, or sequence of numbers / symbols, or None
        ``"paper45"`` (default), ``"all230"``, or e.g. ``(225, "P2_1/c")``.  With
        ``distribution`` and no ``space_groups``: the groups the distribution names.
    per_group : int or None
        Crystals per space group (balanced classes); sets :attr:`total`.
    distribution : mapping group -> weight, ``"paper45"`` or None
        Draw each crystal's group in proportion to these weights instead of cycling through
        the groups (``"paper45"``: the paper's Table 1 counts).  Exclusive with ``per_group``.
    atoms_range : (int, int)
        Atoms per conventional cell.
    elements_range : (int, int)
        Distinct elements per crystal.
    elements : sequence of str or None
        Elements to draw from (default: every element of the statistics table).
    composition : mapping element -> int, or None
        Fixed atoms per conventional cell, e.g. ``{"Ti": 2, "O": 4}``; PyXtal then picks the
        Wyckoff positions.  Must fit the Wyckoff positions of every requested group.
    min_distance_factor : float
        Reject crystals with an atom pair closer than this × (sum of covalent radii).
    pair_min_scale : float
        Also reject pairs of elements closer than this × their shortest distance in real
        crystals (the table's ``pair_min_distance``: 2 % quantile, pairs seen 10+ times),
        which keeps e.g. O-O contacts at oxide-like lengths; 0 turns it off.
    volume_scale : float
        Multiplies the sampled cell volume.
    template_fraction : float
        A crystal takes a Wyckoff template seen in real crystals of its group with probability
        ``template_fraction × coverage``, coverage being the share of the group's real
        structures whose template the table keeps; otherwise its Wyckoff letters are drawn
        one by one.  Lower it for Wyckoff combinations farther from the real ones.
    symprec : float  [Å]
        spglib tolerance of the symmetry check.
    seed : int
        Crystal k depends only on (seed, k).
    relax_steps : int
        Moves of a symmetry-keeping relaxation that brings nearest-neighbour distances
        towards those of real crystals (0: keep PyXtal's random positions).
    max_attempts : int
        Attempts per crystal before it is given up (counted in GenerationStats.failed).
    stats_path : str or None
        Statistics table (``pdfsg stats build``); default the one shipped with pdfsg.
    """

    space_groups: str | Sequence[int | str] | None = None
    per_group: int | None = None
    distribution: Mapping[int | str, float] | str | None = None
    atoms_range: tuple[int, int] = (1, 64)
    elements_range: tuple[int, int] = (1, 5)
    elements: Sequence[str] | None = None
    composition: Mapping[str, int] | None = None
    min_distance_factor: float = 0.75
    pair_min_scale: float = 0.8
    volume_scale: float = 1.0
    template_fraction: float = 1.0
    symprec: float = 0.1
    seed: int = 0
    relax_steps: int = 120
    max_attempts: int = 20
    stats_path: str | None = None
    groups: tuple[int, ...] = field(init=False, repr=False)
    weights: tuple[float, ...] | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        set_ = functools.partial(object.__setattr__, self)
        weights: dict[int, float] | None = None
        if self.distribution is not None:
            if isinstance(self.distribution, str):
                if self.distribution != "paper45":
                    raise ParamsError(
                        f"unknown distribution {self.distribution!r}: give 'paper45' or a "
                        "mapping space group -> weight"
                    )
                weights = {int(k): float(v) for k, v in spacegroups.PAPER_45_COUNTS.items()}
            elif isinstance(self.distribution, Mapping):
                weights = {}
                for k, v in self.distribution.items():
                    n = spacegroups.get(k).number
                    w = float(v)
                    if not math.isfinite(w) or w < 0:
                        raise ParamsError(f"distribution weight of group {k} must be >= 0, got {v}")
                    weights[n] = weights.get(n, 0.0) + w
            else:
                raise ParamsError("distribution must be 'paper45' or a mapping group -> weight")
            if sum(weights.values()) <= 0:
                raise ParamsError("distribution weights are all zero")
            if self.per_group is not None:
                raise ParamsError("give per_group (balanced) or distribution, not both")
        sg = self.space_groups
        if sg is None:
            groups = tuple(sorted(weights)) if weights else spacegroups.label_set("paper45")
        elif isinstance(sg, str):
            try:
                groups = spacegroups.label_set(sg)
            except ParamsError:
                groups = (spacegroups.get(sg).number,)
        else:
            groups = tuple(sorted({spacegroups.get(g).number for g in sg}))
        if not groups:
            raise ParamsError("SyntheticConfig.space_groups is empty")
        set_("groups", groups)
        if weights is not None:
            extra = sorted(set(weights) - set(groups))
            if extra:
                raise ParamsError(f"distribution names groups not in space_groups: {extra}")
            w = tuple(weights.get(g, 0.0) for g in groups)
            if sum(w) <= 0:
                raise ParamsError("distribution gives zero weight to every requested group")
            set_("weights", w)
        else:
            set_("weights", None)
        if self.per_group is not None and (
            isinstance(self.per_group, bool) or int(self.per_group) != self.per_group
        ):
            raise ParamsError(f"SyntheticConfig.per_group must be an integer, got {self.per_group}")
        if self.per_group is not None and self.per_group <= 0:
            raise ParamsError(f"SyntheticConfig.per_group must be > 0, got {self.per_group}")
        set_("atoms_range", _check_range("atoms_range", self.atoms_range, 1))
        set_("elements_range", _check_range("elements_range", self.elements_range, 1))
        for name in ("min_distance_factor", "volume_scale", "symprec"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ParamsError(f"SyntheticConfig.{name} must be a number > 0, got {v!r}")
        if not (isinstance(self.pair_min_scale, (int, float)) and 0 <= self.pair_min_scale):
            raise ParamsError(
                f"SyntheticConfig.pair_min_scale must be >= 0, got {self.pair_min_scale}"
            )
        if not 0.0 <= self.template_fraction <= 1.0:
            raise ParamsError(
                f"SyntheticConfig.template_fraction must be in [0, 1], got {self.template_fraction}"
            )
        if int(self.max_attempts) < 1:
            raise ParamsError(f"SyntheticConfig.max_attempts must be >= 1, got {self.max_attempts}")
        if int(self.relax_steps) < 0:
            raise ParamsError(f"SyntheticConfig.relax_steps must be >= 0, got {self.relax_steps}")
        if int(self.seed) < 0:
            raise ParamsError(f"SyntheticConfig.seed must be >= 0, got {self.seed}")
        if self.elements is not None:
            els = tuple(dict.fromkeys(str(e) for e in self.elements))
            if not els:
                raise ParamsError("SyntheticConfig.elements is empty")
            for e in els:
                _atomic_number(e)
                _covalent_radius(e)
            set_("elements", els)
            if len(els) < self.elements_range[0]:
                raise ParamsError(
                    f"{len(els)} elements given but elements_range asks for at least "
                    f"{self.elements_range[0]}"
                )
        if self.composition is not None:
            self._check_composition()

    def _check_composition(self) -> None:
        comp = dict(self.composition or {})
        if not comp:
            raise ParamsError("SyntheticConfig.composition is empty")
        for e, n in comp.items():
            _atomic_number(e)
            _covalent_radius(e)
            if isinstance(n, bool) or int(n) != n or n <= 0:
                raise ParamsError(f"composition count of {e} must be a positive integer, got {n}")
        total = sum(int(n) for n in comp.values())
        lo, hi = self.atoms_range
        if not lo <= total <= hi:
            raise ParamsError(f"composition has {total} atoms, outside atoms_range {lo}..{hi}")
        counts = [int(n) for n in comp.values()]
        for g in self.groups:
            compatible, _ = _pyxtal_group(g).check_compatible(counts)
            if not compatible:
                formula = "".join(f"{e}{n}" for e, n in comp.items())
                raise ParamsError(
                    f"composition {formula} (per conventional cell) fits no combination of "
                    f"Wyckoff positions of {spacegroups.get(g)}"
                )
        object.__setattr__(self, "composition", {e: int(n) for e, n in comp.items()})

    @property
    def total(self) -> int | None:
        """Crystals in a full run (``per_group`` × groups), or None without ``per_group``."""
        return None if self.per_group is None else int(self.per_group) * len(self.groups)

    def group_of(self, k: int) -> int:
        """Space group of crystal ``k`` (a function of (seed, k) only)."""
        if self.weights is None:
            return self.groups[k % len(self.groups)]
        u = np.random.default_rng([int(self.seed), int(k), 1]).random()
        cdf = np.cumsum(self.weights)
        return self.groups[int(np.searchsorted(cdf, u * cdf[-1], side="right"))]

    def rng_of(self, k: int) -> np.random.Generator:
        """The random generator of crystal ``k``."""
        return np.random.default_rng([int(self.seed), int(k)])


# --------------------------------------------------------------------------- generation


@dataclass
class GenerationStats:
    """Attempts, acceptances and rejections per space group.

    ``rejected[group][reason]`` with reason ``"plan"`` (no Wyckoff plan within the ranges),
    ``"placement"`` (PyXtal could not place the atoms), ``"symmetry"`` (spglib found another
    group) or ``"distance"`` (atoms too close); ``failed[group]`` counts crystals given up
    after ``max_attempts``.
    """

    attempts: Counter[int] = field(default_factory=Counter)
    accepted: Counter[int] = field(default_factory=Counter)
    rejected: dict[int, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    failed: Counter[int] = field(default_factory=Counter)
    seconds: Counter[int] = field(default_factory=Counter)

    def record(self, group: int, reason: str) -> None:
        self.attempts[group] += 1
        if reason:
            self.rejected[group][reason] += 1
        else:
            self.accepted[group] += 1

    def merge(self, other: GenerationStats) -> GenerationStats:
        self.attempts.update(other.attempts)
        self.accepted.update(other.accepted)
        self.failed.update(other.failed)
        self.seconds.update(other.seconds)
        for g, c in other.rejected.items():
            self.rejected[g].update(c)
        return self

    def rejection_rate(self, group: int | None = None) -> float:
        """Rejected attempts / attempts (of one group, or all)."""
        if group is None:
            att = sum(self.attempts.values())
            return 1.0 - sum(self.accepted.values()) / att if att else 0.0
        att = self.attempts[group]
        return 1.0 - self.accepted[group] / att if att else 0.0

    def to_dict(self) -> dict[str, Any]:
        groups = sorted(self.attempts)
        return {
            "attempts": sum(self.attempts.values()),
            "accepted": sum(self.accepted.values()),
            "failed": sum(self.failed.values()),
            "rejection_rate": round(self.rejection_rate(), 4),
            "groups": {
                str(g): {
                    "attempts": self.attempts[g],
                    "accepted": self.accepted[g],
                    "failed": self.failed[g],
                    "rejection_rate": round(self.rejection_rate(g), 4),
                    "rejected": dict(self.rejected[g]),
                    "seconds": round(float(self.seconds[g]), 3),
                }
                for g in groups
            },
        }


@dataclass(frozen=True)
class _Plan:
    species: tuple[str, ...]
    counts: tuple[int, ...]
    sites: tuple[tuple[str, ...], ...] | None  # per species, "4a"-style; None: PyXtal picks
    volume: float  # [Å³] of the conventional cell


def crystal_id(group: int, k: int) -> str:
    """Id of synthetic crystal ``k``: ``syn-225-000123``."""
    return f"syn-{group:03d}-{k:06d}"


def _free_template(
    number: int, rng: np.random.Generator, stats: SyntheticStats, cfg: SyntheticConfig
) -> _Template | None:
    table = _wyckoff_table(number)
    letters, weights = stats.letter_weights(number)
    mult = np.array([table[x][0] for x in letters])
    fixed = np.array([table[x][1] == 0 for x in letters])
    lo, hi = cfg.atoms_range
    n_orbits = stats.sample_n_orbits(number, rng)
    chosen: list[str] = []
    atoms = 0
    available = np.ones(len(letters), bool)
    for _ in range(n_orbits):
        ok = available & (mult <= hi - atoms)
        if not ok.any():
            break
        w = np.where(ok, weights, 0.0)
        i = int(rng.choice(len(letters), p=w / w.sum()))
        chosen.append(letters[i])
        atoms += int(mult[i])
        if fixed[i]:
            available[i] = False
    if not chosen or atoms < lo:
        return None
    n_el = stats.sample_n_elements(len(chosen), rng, *cfg.elements_range)
    if n_el < 1:
        return None
    ranks = list(range(n_el)) + [int(x) for x in rng.integers(0, n_el, len(chosen) - n_el)]
    rng.shuffle(ranks)
    return _Template(tuple(ranks), tuple(chosen), atoms, n_el)


def _sample_plan(
    number: int, rng: np.random.Generator, stats: SyntheticStats, cfg: SyntheticConfig
) -> _Plan | None:
    if cfg.composition:
        species = tuple(cfg.composition)
        counts = tuple(cfg.composition.values())
        sites = None
    else:
        lo, hi = cfg.atoms_range
        elo, ehi = cfg.elements_range
        pool = cfg.elements
        ehi = min(ehi, len(pool) if pool else ehi)
        template: _Template | None = None
        temps, tw = stats.templates(number)
        coverage = tw.sum() / max(stats.group(number).get("n", 1), 1)
        if temps and rng.random() < cfg.template_fraction * coverage:
            ok = np.array([lo <= t.atoms <= hi and elo <= t.n_species <= ehi for t in temps])
            if ok.any():
                w = np.where(ok, tw, 0.0)
                template = temps[int(rng.choice(len(temps), p=w / w.sum()))]
        if template is None:
            template = _free_template(number, rng, stats, cfg)
        if template is None:
            return None
        els = stats.sample_elements(template.n_species, rng, pool, number)
        if els is None:
            return None
        els.sort(key=_rank_key)
        table = _wyckoff_table(number)
        per: list[list[str]] = [[] for _ in els]
        for r, letter in zip(template.ranks, template.letters, strict=True):
            per[r].append(f"{table[letter][0]}{letter}")
        species = tuple(els)
        counts = tuple(sum(int(s[:-1]) for s in p) for p in per)
        sites = tuple(tuple(p) for p in per)
    v0 = sum(n * stats.element_volume(e) for e, n in zip(species, counts, strict=True))
    volume = v0 * cfg.volume_scale * math.exp(stats.volume_log_sigma * rng.standard_normal())
    return _Plan(species, counts, sites, volume)


def _sample_cell(
    number: int, volume: float, rng: np.random.Generator, stats: SyntheticStats
) -> tuple[float, float, float, float, float, float] | None:
    """Lattice parameters (a, b, c [Å], α, β, γ [deg]) of the given volume [Å³]."""
    key = _lattice_key(number)
    q = stats.shape_quantiles(number)
    for _ in range(10):
        p = {k: stats.quantile_sample(q[k], rng) for k in _SHAPE_PARAMS[key] if k in q}
        ba, ca = p.get("b/a", 1.0), p.get("c/a", 1.0)
        al, be, ga = p.get("alpha", 90.0), p.get("beta", 90.0), p.get("gamma", 90.0)
        if key in ("tetragonal", "cubic", "trigonal", "rhombohedral", "hexagonal"):
            ba = 1.0
        if key == "cubic":
            ca = 1.0
        if key in ("trigonal", "rhombohedral", "hexagonal"):
            ga = 120.0
        ca_, cb_, cg_ = (math.cos(math.radians(x)) for x in (al, be, ga))
        f2 = 1 - ca_**2 - cb_**2 - cg_**2 + 2 * ca_ * cb_ * cg_
        if f2 < 0.05 or ba <= 0 or ca <= 0:
            continue
        a = (volume / (ba * ca * math.sqrt(f2))) ** (1.0 / 3.0)
        return a, a * ba, a * ca, al, be, ga
    return None


@functools.cache
def _crystal_class() -> type:
    """PyXtal's random_crystal with one fixed lattice and ``COORD_ATTEMPTS`` placements
    (PyXtal's own loop retries 40 × 10 times on one fixed lattice, seconds per failure)."""
    from pyxtal.crystal import random_crystal

    class _OneLattice(random_crystal):  # type: ignore[misc]
        def set_crystal(self) -> None:
            self.numattempts = 0
            self.lattice_attempts = 1
            self.coord_attempts = COORD_ATTEMPTS
            self.cycle1 = 0
            self.set_volume()
            self.set_lattice(self.lattice0)
            for cycle2 in range(self.coord_attempts):
                self.cycle2 = cycle2
                output = self._set_coords()
                if output:
                    self.atom_sites = output
                    return

    return _OneLattice


@functools.lru_cache(maxsize=8)
def _tol_matrix(min_distance_factor: float) -> Any:
    from pyxtal.tolerance import Tol_matrix

    # PyXtal's "atomic" tolerance is 0.5 × factor × (r_i + r_j)
    return Tol_matrix(prototype="atomic", factor=2.0 * min_distance_factor)


def _pair_limits(
    species: Sequence[str], stats: SyntheticStats, cfg: SyntheticConfig
) -> tuple[dict[str, float], dict[str, float]]:
    """Per element pair (key ``"A B"``): the accepted minimum distance [Å],
    max(min_distance_factor × (r_a + r_b), pair_min_scale × learned minimum), and the
    relaxation's target lower bound [Å], max(RELAX_WINDOW[0] × (r_a + r_b), learned)."""
    accept, target = {}, {}
    for i, a in enumerate(species):
        for b in species[i:]:
            key = _pair_key(a, b)
            rsum = _covalent_radius(a) + _covalent_radius(b)
            learned = stats.pair_min_distance.get(key, 0.0) if cfg.pair_min_scale > 0 else 0.0
            accept[key] = max(cfg.min_distance_factor * rsum, cfg.pair_min_scale * learned)
            target[key] = max(RELAX_WINDOW[0] * rsum, learned)
    return accept, target


def _attempt(
    number: int, rng: np.random.Generator, stats: SyntheticStats, cfg: SyntheticConfig
) -> tuple[Structure | None, str]:
    """One try: (structure, "") or (None, rejection reason)."""
    plan = _sample_plan(number, rng, stats, cfg)
    if plan is None:
        return None, "plan"
    cell = _sample_cell(number, plan.volume, rng, stats)
    if cell is None:
        return None, "plan"
    from pymatgen.core import Lattice as PmgLattice
    from pymatgen.core import Structure
    from pyxtal.lattice import Lattice

    accept, target = _pair_limits(plan.species, stats, cfg)
    try:
        with warnings.catch_warnings(), _quiet():
            warnings.simplefilter("ignore")
            group = _pyxtal_group(number)
            lattice = Lattice.from_para(*cell, ltype=group.lattice_type, random_state=rng)
            xtal = _crystal_class()(
                dim=3,
                group=group,
                species=list(plan.species),
                numIons=list(plan.counts),
                lattice=lattice,
                sites=[list(s) for s in plan.sites] if plan.sites is not None else None,
                tm=_tol_matrix(cfg.min_distance_factor),
                random_state=rng,
            )
    except Exception:  # PyXtal signals failure with RuntimeError, ValueError, its own errors
        return None, "placement"
    if not xtal.valid:
        return None, "placement"
    species = [site.specie for site in xtal.atom_sites for _ in range(site.multiplicity)]
    if cfg.relax_steps > 0:
        coords = _relax(xtal, cfg.relax_steps, rng, target)
    else:
        coords = np.concatenate([site.coords for site in xtal.atom_sites])
    structure = Structure(PmgLattice(xtal.lattice.matrix), species, coords)
    if space_group_of(structure, cfg.symprec) != number:
        return None, "symmetry"
    symbols, d = _nearest_images(structure)
    arr = np.array(symbols)
    for key, limit in accept.items():
        a, b = key.split()
        if np.min(d[np.ix_(arr == a, arr == b)]) < limit - 1e-6:
            return None, "distance"
    return structure, ""


def _relax(
    xtal: Any, steps: int, rng: np.random.Generator, target: Mapping[str, float]
) -> np.ndarray:
    """Move free Wyckoff parameters so that nearest-neighbour distances look like real ones.

    Hill climbing: each step shifts the representative of one orbit with a free parameter
    by a Gaussian step (``RELAX_STEP`` Å), regenerates its orbit with the Wyckoff
    operations (so the site symmetry is kept) and keeps the move if it lowers

    E = Σ_pairs max(0, (L_ij - d_ij) / R_ij)² + Σ_atoms max(0, min_j d_ij / R_ij - hi)²,

    R_ij = r_i + r_j (covalent radii), L_ij = ``target`` of the pair (at least
    RELAX_WINDOW[0] × R_ij, or the pair's shortest distance in real crystals) and hi =
    RELAX_WINDOW[1]: it pushes apart atoms closer than in real crystals (anion-anion contacts
    included) and pulls isolated atoms towards a neighbour.  Returns fractional coordinates.
    """
    sites = xtal.atom_sites
    lattice = np.asarray(xtal.lattice.matrix, float)
    inv = np.linalg.inv(lattice)
    symbols = [str(site.specie) for site in sites for _ in range(site.multiplicity)]
    radii = np.array([_covalent_radius(e) for e in symbols])
    rsum = radii[:, None] + radii[None, :]
    lower = np.array([[target[_pair_key(a, b)] for b in symbols] for a in symbols])
    hi = RELAX_WINDOW[1]
    bounds = np.cumsum([0] + [site.multiplicity for site in sites])
    positions = [np.asarray(site.position, float) for site in sites]
    coords = np.concatenate([np.asarray(site.coords, float) for site in sites])
    movable = [i for i, site in enumerate(sites) if site.wp.get_dof() > 0]
    shifts = np.stack(np.meshgrid(*[np.arange(-1, 2)] * 3, indexing="ij"), -1).reshape(-1, 3)
    shifts_cart = shifts @ lattice
    eye = np.eye(len(radii), dtype=bool)

    def energy(frac: np.ndarray) -> float:
        diff = frac[None, :, :] - frac[:, None, :]
        diff -= np.round(diff)
        cart = diff @ lattice
        d = np.linalg.norm(cart[None] + shifts_cart[:, None, None, :], axis=-1).min(axis=0)
        d = np.where(eye, np.inf, d)
        close = np.clip((lower - d) / rsum, 0.0, None)
        far = np.clip((d / rsum).min(axis=1) - hi, 0.0, None)
        return float(0.5 * np.sum(close**2) + np.sum(far**2))

    if not movable:
        return coords
    e = energy(coords)
    for _ in range(steps):
        if e <= 0.0:
            break
        i = movable[int(rng.integers(len(movable)))]
        trial_pos = positions[i] + (rng.normal(0.0, RELAX_STEP, 3) @ inv)
        orbit = np.asarray(sites[i].wp.apply_ops(trial_pos), float)
        trial = coords.copy()
        trial[bounds[i] : bounds[i + 1]] = orbit
        e_new = energy(trial)
        if e_new < e:
            e, coords, positions[i] = e_new, trial, orbit[0]
    return coords


class _quiet:
    """Silence PyXtal's prints (it writes some warnings to stdout)."""

    def __enter__(self) -> None:
        self._old = sys.stdout
        sys.stdout = io.StringIO()

    def __exit__(self, *exc: object) -> None:
        sys.stdout = self._old


def _resolve_stats(stats: SyntheticStats | str | os.PathLike[str] | None) -> SyntheticStats:
    if isinstance(stats, SyntheticStats):
        return stats
    return load_stats(stats)


def generate_crystal(
    space_group: int | str,
    rng: np.random.Generator,
    stats: SyntheticStats | str | os.PathLike[str] | None = None,
    config: SyntheticConfig | None = None,
) -> Structure | None:
    """One attempt at a random crystal of ``space_group``.

    Parameters
    ----------
    space_group : number or symbol
    rng : numpy Generator, the only source of randomness
    stats : statistics table or its path (default: the shipped one)
    config : ranges and tolerances (default ``SyntheticConfig()``; its groups are ignored)

    Returns
    -------
    pymatgen Structure (conventional cell) that spglib confirms to have ``space_group`` and
    that passes the distance check, or None when this attempt was rejected.
    """
    number = spacegroups.get(space_group).number
    cfg = config or SyntheticConfig()
    structure, _ = _attempt(number, rng, _resolve_stats(stats or cfg.stats_path), cfg)
    return structure


def _make(
    k: int, cfg: SyntheticConfig, stats: SyntheticStats, report: GenerationStats
) -> tuple[str, int, Structure] | None:
    number = cfg.group_of(k)
    rng = cfg.rng_of(k)
    t0 = time.perf_counter()
    try:
        for _ in range(int(cfg.max_attempts)):
            structure, reason = _attempt(number, rng, stats, cfg)
            report.record(number, reason)
            if structure is not None:
                return crystal_id(number, k), number, structure
        report.failed[number] += 1
        log.debug("crystal %d of group %d given up after %d attempts", k, number, cfg.max_attempts)
        return None
    finally:
        report.seconds[number] += time.perf_counter() - t0


def generate_chunk(
    config: SyntheticConfig,
    start: int,
    stop: int,
    report: GenerationStats | None = None,
) -> list[tuple[str, int, Structure]]:
    """Crystals ``start .. stop-1`` of a run as (id, space group, Structure).

    Crystal k depends only on (config.seed, k), so chunks can be made in any order, in
    parallel, and a run resumes from any index.  A crystal given up after
    ``config.max_attempts`` is left out (so a chunk can be shorter than ``stop - start``).
    ``report`` (if given) is updated with attempts and rejections.
    """
    if start < 0 or stop < start:
        raise ParamsError(f"bad chunk range {start}..{stop}: need 0 <= start <= stop")
    stats = load_stats(config.stats_path)
    rep = report if report is not None else GenerationStats()
    out = []
    for k in range(int(start), int(stop)):
        item = _make(k, config, stats, rep)
        if item is not None:
            out.append(item)
    if stop > start:
        log.info(
            "synthetic %d..%d: %d crystals, %.0f%% of attempts rejected",
            start,
            stop,
            len(out),
            100 * rep.rejection_rate(),
        )
    return out


def generate(
    config: SyntheticConfig,
    n: int | None = None,
    report: GenerationStats | None = None,
    start: int = 0,
) -> Iterator[tuple[str, int, Structure]]:
    """Yield ``n`` crystals (default ``config.total``) as (id, space group, Structure).

    ``start`` skips the first indices (to resume).  ``report`` collects rejection counts.
    """
    if n is None:
        n = config.total
        if n is None:
            raise ParamsError("give n, or SyntheticConfig.per_group")
    if isinstance(n, bool) or int(n) != n or n <= 0:
        raise ParamsError(f"number of crystals must be a positive integer, got {n}")
    if start < 0:
        raise ParamsError(f"start must be >= 0, got {start}")
    stats = load_stats(config.stats_path)
    rep = report if report is not None else GenerationStats()
    for k in range(int(start), int(start) + int(n)):
        item = _make(k, config, stats, rep)
        if item is not None:
            yield item
    log.info(
        "synthetic: %d attempts, %.0f%% rejected, %d crystals given up",
        sum(rep.attempts.values()),
        100 * rep.rejection_rate(),
        sum(rep.failed.values()),
    )


def iter_synthetic_records(
    config: SyntheticConfig,
    start: int = 0,
    stop: int | None = None,
    report: GenerationStats | None = None,
) -> Iterator[StructureRecord]:
    """Crystals ``start .. stop-1`` as :class:`pdfsg.structures.StructureRecord` (for
    ``pdfsg dataset build --synthetic``); ``stop`` defaults to ``config.total``."""
    from pdfsg.structures import StructureRecord

    if stop is None:
        stop = config.total
        if stop is None:
            raise ParamsError("give stop, or SyntheticConfig.per_group")
    stats = load_stats(config.stats_path)
    rep = report if report is not None else GenerationStats()
    if start < 0 or stop < start:
        raise ParamsError(f"bad range {start}..{stop}: need 0 <= start <= stop")
    for k in range(int(start), int(stop)):
        item = _make(k, config, stats, rep)
        if item is not None:
            ident, number, structure = item
            yield StructureRecord(
                id=ident,
                structure=structure,
                space_group=number,
                origin=f"synthetic crystal {k} (seed {config.seed})",
            )


def make_crystal(config: SyntheticConfig, k: int) -> Structure | None:
    """Crystal k of a run (None when every attempt was rejected); picklable with
    functools.partial, so a dataset build generates crystals on its workers."""
    item = _make(k, config, load_stats(config.stats_path), GenerationStats())
    return None if item is None else item[2]


def deferred_records(
    config: SyntheticConfig, start: int = 0, stop: int | None = None
) -> Iterator[StructureRecord]:
    """Records whose crystals are generated where they are processed (a Dask worker): each
    carries its space group and ``make = partial(make_crystal, config, k)``."""
    from pdfsg.structures import StructureRecord

    if stop is None:
        stop = config.total
        if stop is None:
            raise ParamsError("give stop, or SyntheticConfig.per_group")
    if start < 0 or stop < start:
        raise ParamsError(f"bad range {start}..{stop}: need 0 <= start <= stop")
    for k in range(int(start), int(stop)):
        number = config.group_of(k)
        yield StructureRecord(
            id=crystal_id(number, k),
            space_group=number,
            origin=f"synthetic crystal {k} (seed {config.seed})",
            make=functools.partial(make_crystal, config, k),
        )


def records_from_spec(spec: str) -> Iterator[StructureRecord]:
    """The ``synthetic:SPEC`` source of ``pdfsg dataset build``: SPEC is
    ``N[,seed=S][,groups=paper45|all230][,distribution=balanced|paper45][,stats=PATH]``
    (PATH: a table from ``pdfsg stats build``; default the shipped one)."""
    fields = spec.split(",")
    try:
        n = int(fields[0])
        opts = dict(f.split("=", 1) for f in fields[1:])
    except ValueError as exc:
        raise ParamsError(f"bad synthetic source spec {spec!r}: {exc}") from None
    unknown = set(opts) - {"seed", "groups", "distribution", "stats"}
    if unknown:
        raise ParamsError(f"bad synthetic source spec {spec!r}: unknown {sorted(unknown)}")
    if n <= 0:
        raise ParamsError(f"number of synthetic crystals must be > 0, got {n}")
    groups = opts.get("groups", "paper45")
    dist = opts.get("distribution", "balanced")
    seed = int(opts.get("seed", 0))
    if dist == "balanced":
        from pdfsg.spacegroups import label_set

        per_group = max(1, -(-n // len(label_set(groups))))
        config = SyntheticConfig(
            space_groups=groups, per_group=per_group, seed=seed, stats_path=opts.get("stats")
        )
    else:
        config = SyntheticConfig(
            space_groups=groups, distribution=dist, seed=seed, stats_path=opts.get("stats")
        )
    return deferred_records(config, 0, n)


# --------------------------------------------------------------------------- prototypes

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
    "sc": ("Pm-3m", "cubic", 1.0, [("M", (0, 0, 0), None)]),
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


def make_prototype(name: str, rng: np.random.Generator, stats: SyntheticStats) -> Structure:
    """A crystal of structure type ``name`` with random elements, a volume from the per-element
    volumes of ``stats`` (log-normal scatter), c/a and free coordinates jittered."""
    from pymatgen.core import Lattice, Structure

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
    s = Structure.from_spacegroup(sg, lattice, species, coords)
    volume = sum(stats.element_volume(sp.symbol) for sp in s.species)
    s.scale_lattice(volume * float(np.exp(rng.normal(0, 0.08))))
    return s


def prototype_records(spec: str) -> Iterator[StructureRecord]:
    """The ``prototypes:N[,seed=S]`` source of ``pdfsg dataset build``: N crystals cycling
    through :data:`PROTOTYPES` (labels come from spglib, as for any structure)."""
    from pdfsg.structures import StructureRecord

    fields = spec.split(",")
    try:
        n = int(fields[0])
        opts = dict(f.split("=", 1) for f in fields[1:])
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
