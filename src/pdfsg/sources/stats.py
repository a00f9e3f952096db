"""Statistics of real structures that synthetic crystals are drawn from.

:func:`analyze_structure` takes from one real structure what the generator needs (space
group, Wyckoff template, atom counts, volume per atom, cell shape, shortest distances);
:func:`build_stats` aggregates them into a JSON table (``pdfsg stats build``) and
:class:`SyntheticStats` (:func:`load_stats`) prepares a table for sampling: how a plan is
drawn from it is described in :mod:`pdfsg.sources.synthetic`.

The default table, ``pdfsg/data/synthetic_stats.json`` (:func:`default_stats_path`), holds
only aggregated counts and quantiles computed by ``pdfsg stats build`` from Materials Project
structures (CC BY 4.0); no structure is shipped.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import math
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pdfsg import spacegroups
from pdfsg.errors import ParamsError, StructureError
from pdfsg.sources.geometry import _covalent_radius, pair_min_distances

if TYPE_CHECKING:  # pragma: no cover
    from pymatgen.core import Structure

__all__ = [
    "STATS_FORMAT",
    "SyntheticStats",
    "analyze_structure",
    "build_stats",
    "default_stats_path",
    "load_stats",
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
_RHOMBOHEDRAL = frozenset({146, 148, 155, 160, 161, 166, 167})


# --------------------------------------------------------------------------- elements


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
        as :func:`pdfsg.sources.collections.iter_source_structures` yields them.
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
