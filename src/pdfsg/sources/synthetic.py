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
With ``bond_valence`` (spec ``relax=bonds``) the relaxation also brings every ion's
bond-valence sum to its oxidation state (:mod:`pdfsg.sources.bond_valence`), and with
``bond_volume`` (``volume=bonds``) it scales the cell to the bonds too.  Both are off by
default: they make bond lengths like real ones but did not make a network trained on the
crystals better on real structures (``benchmarks/synthetic_gap.py``).

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

import dataclasses
import functools
import io
import logging
import math
import os
import sys
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from pdfsg import spacegroups
from pdfsg.errors import ParamsError
from pdfsg.sources import StructureRecord, count_and_options
from pdfsg.sources.bond_valence import IonicModel, bond_valence_sums, ionic_model
from pdfsg.sources.geometry import _covalent_radius, _nearest_images, _pair_key, space_group_of
from pdfsg.sources.stats import (
    _SHAPE_PARAMS,
    SyntheticStats,
    _atomic_number,
    _lattice_key,
    _pyxtal_group,
    _rank_key,
    _Template,
    _wyckoff_table,
    load_stats,
)

if TYPE_CHECKING:  # pragma: no cover
    from pymatgen.core import Structure

log = logging.getLogger(__name__)

__all__ = [
    "GenerationStats",
    "SyntheticConfig",
    "crystal_id",
    "deferred_records",
    "generate",
    "generate_chunk",
    "generate_crystal",
    "iter_synthetic_records",
    "make_crystal",
    "records_from_spec",
]

#: placements PyXtal tries on one drawn cell before the attempt counts as rejected
COORD_ATTEMPTS = 8
#: nearest-neighbour window (d / (r_i + r_j)) that relaxation aims for; real crystals have
#: per-atom ratios 0.83 / 0.93 / 1.03 at 10 / 50 / 90 % (benchmarks/synthetic_realism.py),
#: and this window reproduces them best with the default min_distance_factor
RELAX_WINDOW = (0.9, 1.03)
#: standard deviation [Å] of one relaxation move
RELAX_STEP = 0.15
#: weight of the bond-valence term of the relaxation energy (see :func:`_relax`)
BOND_VALENCE_WEIGHT = 1.0
#: cell rescalings during a relaxation with ``rescale`` (one more at its end), each the best
#: of 2 × RESCALE_POINTS + 1 factors spaced evenly in log from exp(-RESCALE_RANGE) to
#: exp(RESCALE_RANGE)
RESCALE_EVERY = 3
RESCALE_RANGE = 0.15
RESCALE_POINTS = 10
#: rejection reasons counted in :class:`GenerationStats`
REASONS = ("plan", "placement", "symmetry", "distance")


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
    volume_scatter : float or None
        Standard deviation of the log-normal scatter of the sampled volume around the
        volume model's (None: the table's ``volume_log_sigma``, the spread of real crystals
        around the model; 0: the model's volume).
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
    bond_valence : bool
        Let the relaxation also bring every ion's bond-valence sum to its oxidation state
        (:mod:`pdfsg.sources.bond_valence`; compositions with a charge-balanced ionic
        model only, the others relax by contacts alone).
    bond_volume : bool
        With ``bond_valence``: let the relaxation also scale the cell so that the bonds,
        not the volume model, set the density (ionic compositions only).
    max_attempts : int
        Attempts per crystal before it is given up (counted in GenerationStats.failed).
    stats_path : str or None
        Statistics table (``pdfsg stats build``); default the one shipped with pdfsg.
    group_volume : bool
        Rescale each group's cell volumes so that their median volume per atom is that of
        the group's real crystals (:func:`_group_volume_factor`); the per-element volume
        model alone ignores how densely a group packs.
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
    volume_scatter: float | None = None
    template_fraction: float = 1.0
    symprec: float = 0.1
    seed: int = 0
    relax_steps: int = 120
    bond_valence: bool = False
    bond_volume: bool = False
    max_attempts: int = 20
    stats_path: str | None = None
    group_volume: bool = False
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
        scatter = self.volume_scatter
        if scatter is not None and not (
            isinstance(scatter, (int, float)) and math.isfinite(scatter) and scatter >= 0
        ):
            raise ParamsError(f"SyntheticConfig.volume_scatter must be >= 0, got {scatter!r}")
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
    volume = sampled_volume(dict(zip(species, counts, strict=True)), rng, stats, cfg)
    if cfg.group_volume and not cfg.composition:
        volume *= _group_volume_factor(number, stats, cfg)
    return _Plan(species, counts, sites, volume)


def sampled_volume(
    counts: Mapping[str, int], rng: np.random.Generator, stats: SyntheticStats, cfg: SyntheticConfig
) -> float:
    """The volume model's cell volume [Å³] for these atoms (element -> count): the sum of
    the table's per-element volumes × ``volume_scale`` × a log-normal scatter of
    ``volume_scatter`` (default the table's ``volume_log_sigma``)."""
    v0 = sum(n * stats.element_volume(e) for e, n in counts.items())
    sigma = stats.volume_log_sigma if cfg.volume_scatter is None else cfg.volume_scatter
    return v0 * cfg.volume_scale * math.exp(sigma * rng.standard_normal())


def rejection(
    structure: Structure, number: int, accept: Mapping[str, float], symprec: float
) -> str:
    """Why the generator's checks refuse a crystal: ``"symmetry"`` (spglib does not find
    group ``number`` at ``symprec``), ``"distance"`` (a pair of elements closer than its
    ``accept`` limit [Å], keys ``"A B"``), or ``""`` when it passes."""
    if space_group_of(structure, symprec) != number:
        return "symmetry"
    symbols, d = _nearest_images(structure)
    arr = np.array(symbols)
    for key, limit in accept.items():
        a, b = key.split()
        if np.min(d[np.ix_(arr == a, arr == b)]) < limit - 1e-6:
            return "distance"
    return ""


#: plans drawn per group to learn its volume factor
GROUP_VOLUME_PLANS = 300
_GROUP_VOLUME_CACHE: dict[tuple, float] = {}


def _group_volume_factor(number: int, stats: SyntheticStats, cfg: SyntheticConfig) -> float:
    """Real median volume per atom of the group (the table's quantiles) over the median of
    the volume model's on ``GROUP_VOLUME_PLANS`` plans of that group (seeded by the group
    alone, so every crystal of a run sees one factor); 1 for groups without real data."""
    q = stats.group(number).get("volume_per_atom")
    if not q:
        return 1.0
    pool = tuple(cfg.elements) if cfg.elements else None
    key = (stats.path, number, cfg.atoms_range, cfg.elements_range, pool, cfg.volume_scale)
    if key not in _GROUP_VOLUME_CACHE:
        real = float(np.interp(0.5, stats.levels, np.asarray(q, float)))
        plain = dataclasses.replace(cfg, group_volume=False)
        rng = np.random.default_rng([7919, number])
        per_atom = []
        for _ in range(GROUP_VOLUME_PLANS):
            plan = _sample_plan(number, rng, stats, plain)
            if plan is not None:
                per_atom.append(plan.volume / sum(plan.counts))
        model = float(np.median(per_atom)) if per_atom else 0.0
        _GROUP_VOLUME_CACHE[key] = real / model if model > 0 and real > 0 else 1.0
    return _GROUP_VOLUME_CACHE[key]


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
        counts = dict(zip(plan.species, plan.counts, strict=True))
        ionic = ionic_model(counts) if cfg.bond_valence else None
        coords, matrix = _relax(xtal, cfg.relax_steps, rng, target, ionic, cfg.bond_volume)
    else:
        coords = np.concatenate([site.coords for site in xtal.atom_sites])
        matrix = xtal.lattice.matrix
    structure = Structure(PmgLattice(matrix), species, coords)
    reason = rejection(structure, number, accept, cfg.symprec)
    return (None, reason) if reason else (structure, "")


def _relax(
    xtal: Any,
    steps: int,
    rng: np.random.Generator,
    target: Mapping[str, float],
    ionic: IonicModel | None = None,
    rescale: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Move free Wyckoff parameters so that nearest-neighbour distances look like real ones.

    Hill climbing: each step shifts the representative of one orbit with a free parameter
    by a Gaussian step (``RELAX_STEP`` Å), regenerates its orbit with the Wyckoff
    operations (so the site symmetry is kept) and keeps the move if it lowers

    E = Σ_pairs max(0, (L_ij - d_ij) / R_ij)² + Σ_atoms max(0, min_j d_ij / R_ij - hi)²
        [+ BOND_VALENCE_WEIGHT × Σ_ions ((S_i - |V_i|) / |V_i|)²],

    R_ij = r_i + r_j (covalent radii), L_ij = ``target`` of the pair (at least
    RELAX_WINDOW[0] × R_ij, or the pair's shortest distance in real crystals) and hi =
    RELAX_WINDOW[1]: it pushes apart atoms closer than in real crystals (anion-anion contacts
    included) and pulls isolated atoms towards a neighbour.  With an ``ionic`` model
    (:mod:`pdfsg.sources.bond_valence`) the last term asks every ion's bond-valence sum S_i
    (its cation-anion bonds over all periodic images) to match its oxidation state V_i, so
    that cations gather anion polyhedra with real bond lengths; without one the climb stops
    once the contact terms are zero.  With ``rescale`` (and a model) the cell is scaled
    isotropically, ``RESCALE_EVERY`` times during the climb and once at its end, by the factor
    in ``RESCALE_RANGE`` that minimises E: the bonds then set the density, not the volume
    model.  Returns the fractional coordinates and the lattice matrix [Å] (rows a, b, c).
    """
    sites = xtal.atom_sites
    lattice = np.asarray(xtal.lattice.matrix, float)
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
    eye = np.eye(len(radii), dtype=bool)
    self_image = eye[None] & np.all(shifts == 0, axis=1)[:, None, None]
    valence, r0 = ionic.arrays(symbols) if ionic is not None else (None, None)
    rescale = rescale and ionic is not None

    def energy(frac: np.ndarray, lat: np.ndarray) -> float:
        diff = frac[None, :, :] - frac[:, None, :]
        diff -= np.round(diff)
        cart = diff @ lat
        images = np.linalg.norm(cart[None] + (shifts @ lat)[:, None, None, :], axis=-1)
        images = np.where(self_image, np.inf, images)
        d = np.where(eye, np.inf, images.min(axis=0))
        close = np.clip((lower - d) / rsum, 0.0, None)
        far = np.clip((d / rsum).min(axis=1) - hi, 0.0, None)
        e = 0.5 * np.sum(close**2) + np.sum(far**2)
        if valence is not None:
            bvs = bond_valence_sums(images, r0)
            e += BOND_VALENCE_WEIGHT * np.sum(((bvs - valence) / valence) ** 2)
        return float(e)

    def best_scale(frac: np.ndarray, lat: np.ndarray) -> tuple[float, np.ndarray]:
        scales = np.exp(np.linspace(-RESCALE_RANGE, RESCALE_RANGE, 2 * RESCALE_POINTS + 1))
        energies = [energy(frac, lat * f) for f in scales]
        k = int(np.argmin(energies))
        return energies[k], lat * scales[k]

    if not movable and not rescale:
        return coords, lattice
    e = energy(coords, lattice)
    inv = np.linalg.inv(lattice)
    every = max(steps // (RESCALE_EVERY + 1), 1) if rescale else 0
    for step in range(steps):
        if e <= 0.0:
            break
        if every and step % every == 0:
            e, lattice = best_scale(coords, lattice)
            inv = np.linalg.inv(lattice)
        if not movable:
            break
        i = movable[int(rng.integers(len(movable)))]
        trial_pos = positions[i] + (rng.normal(0.0, RELAX_STEP, 3) @ inv)
        orbit = np.asarray(sites[i].wp.apply_ops(trial_pos), float)
        trial = coords.copy()
        trial[bounds[i] : bounds[i + 1]] = orbit
        e_new = energy(trial, lattice)
        if e_new < e:
            e, coords, positions[i] = e_new, trial, orbit[0]
    if rescale:
        e, lattice = best_scale(coords, lattice)
    return coords, lattice


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
    """Crystals ``start .. stop-1`` as :class:`pdfsg.sources.StructureRecord` (for
    ``pdfsg dataset build --synthetic``); ``stop`` defaults to ``config.total``."""
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
    ``N[,seed=S][,groups=paper45|all230][,distribution=balanced|paper45][,stats=PATH]
    [,volume=element|group|bonds][,relax=contacts|bonds][,scatter=X]`` (PATH: a table from
    ``pdfsg stats build``; default the shipped one; ``volume=group``:
    :attr:`SyntheticConfig.group_volume`; ``relax=bonds``: :attr:`SyntheticConfig.bond_valence`;
    ``volume=bonds``: both that and :attr:`SyntheticConfig.bond_volume`; ``scatter``:
    :attr:`SyntheticConfig.volume_scatter`)."""
    n, opts = count_and_options("synthetic", spec, spec)
    known = {"seed", "groups", "distribution", "stats", "volume", "relax", "scatter"}
    unknown = set(opts) - known
    if unknown:
        raise ParamsError(f"bad synthetic source spec {spec!r}: unknown {sorted(unknown)}")
    if n <= 0:
        raise ParamsError(f"number of synthetic crystals must be > 0, got {n}")
    groups = opts.get("groups", "paper45")
    dist = opts.get("distribution", "balanced")
    if opts.get("volume", "element") not in ("element", "group", "bonds"):
        raise ParamsError(
            f"bad synthetic source spec {spec!r}: volume must be element, group or bonds"
        )
    if opts.get("relax", "contacts") not in ("contacts", "bonds"):
        raise ParamsError(f"bad synthetic source spec {spec!r}: relax must be contacts or bonds")
    try:
        scatter = float(opts["scatter"]) if "scatter" in opts else None
    except ValueError:
        raise ParamsError(f"bad synthetic source spec {spec!r}: scatter must be a number") from None
    relax = {
        "volume_scatter": scatter,
        "group_volume": opts.get("volume") == "group",
        "bond_volume": opts.get("volume") == "bonds",
        "bond_valence": opts.get("relax") == "bonds" or opts.get("volume") == "bonds",
    }
    seed = int(opts.get("seed", 0))
    if dist == "balanced":
        from pdfsg.spacegroups import label_set

        per_group = max(1, -(-n // len(label_set(groups))))
        config = SyntheticConfig(
            space_groups=groups,
            per_group=per_group,
            seed=seed,
            stats_path=opts.get("stats"),
            **relax,
        )
    else:
        config = SyntheticConfig(
            space_groups=groups,
            distribution=dist,
            seed=seed,
            stats_path=opts.get("stats"),
            **relax,
        )
    return deferred_records(config, 0, n)
