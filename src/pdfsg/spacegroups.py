"""The 230 space groups, the label sets a model is trained on, and group-subgroup relations.

The table (``pdfsg/data/spacegroups.json``) is made once by ``tools/make_spacegroup_table.py``
from spglib (symbols, point groups, orders) and pyxtal (maximal subgroups); reading it needs
neither. Symbols are spglib's plain-text Hermann-Mauguin short symbols of the standard
setting: ``"P2_1/c"``, ``"Fm-3m"``, ``"Cmce"`` (formerly ``Cmca``).

Group-subgroup relations help to read a classifier's confusions (Liu et al. 2019, section 4):
a model that returns ``P2_1/c`` for a ``P-1`` structure picked a minimal supergroup of the
true group. Subgroups here are space-group *types*: ``is_subgroup(4, 15)`` says that some
subgroup of a ``C2/c`` group is a ``P2_1`` group. The relation is the transitive closure of
the maximal translationengleiche (t) and klassengleiche (k) subgroups listed by pyxtal.
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Literal

from pdfsg.errors import ParamsError

__all__ = [
    "ALL_230",
    "CRYSTAL_SYSTEMS",
    "PAPER_45",
    "PAPER_45_COUNTS",
    "Relation",
    "SpaceGroup",
    "all_groups",
    "common_subgroups",
    "crystal_system_colors",
    "get",
    "is_maximal_subgroup",
    "is_subgroup",
    "label_set",
    "maximal_subgroups",
    "relation",
]

CRYSTAL_SYSTEMS: tuple[str, ...] = (
    "triclinic",
    "monoclinic",
    "orthorhombic",
    "tetragonal",
    "trigonal",
    "hexagonal",
    "cubic",
)

#: Entries per space group in the paper's Table 1 (unique ICSD structures; 101,802 in all).
#: The paper prints 58 as "Pnmm" (a setting of Pmmn, 59; 58 is Pnnm) and 64 as "Cmca" (now Cmce).
PAPER_45_COUNTS: Mapping[int, int] = MappingProxyType(
    {
        2: 4615,
        4: 581,
        9: 489,
        11: 1247,
        12: 3529,
        13: 442,
        14: 7392,
        15: 3704,
        19: 701,
        33: 743,
        36: 525,
        47: 646,
        55: 745,
        58: 477,
        60: 478,
        61: 853,
        62: 6930,
        63: 2249,
        64: 575,
        65: 513,
        71: 754,
        87: 569,
        88: 397,
        122: 373,
        123: 1729,
        129: 1376,
        136: 870,
        139: 4028,
        140: 1026,
        141: 700,
        148: 1186,
        160: 482,
        164: 1005,
        166: 2810,
        167: 1390,
        176: 1289,
        186: 849,
        191: 3232,
        194: 3971,
        205: 447,
        216: 2893,
        221: 2933,
        225: 4860,
        227: 4382,
        230: 455,
    }
)

#: The 45 space groups of the paper's Table 1, in increasing order.
PAPER_45: tuple[int, ...] = tuple(sorted(PAPER_45_COUNTS))

#: All 230 space-group numbers.
ALL_230: tuple[int, ...] = tuple(range(1, 231))

_LABEL_SETS: Mapping[str, tuple[int, ...]] = MappingProxyType(
    {"paper45": PAPER_45, "all230": ALL_230}
)

# Paper Fig. 3's colours per crystal system.
_COLORS: Mapping[str, str] = MappingProxyType(
    {
        "triclinic": "#00008b",  # dark blue
        "monoclinic": "#ff7f0e",  # orange
        "orthorhombic": "#2ca02c",  # green
        "tetragonal": "#1f77b4",  # blue
        "trigonal": "#7f7f7f",  # grey
        "hexagonal": "#e6c200",  # yellow (darkened to read on white)
        "cubic": "#8b0000",  # dark red
    }
)

RelationKind = Literal[
    "same",
    "maximal subgroup",
    "subgroup",
    "maximal supergroup",
    "supergroup",
    "common subgroup",
    "unrelated",
]


@dataclass(frozen=True)
class SpaceGroup:
    """One of the 230 space-group types, in its standard setting.

    Attributes
    ----------
    number : int
        International number, 1-230.
    symbol : str
        Hermann-Mauguin short symbol as spglib writes it, e.g. ``"P2_1/c"``, ``"Fm-3m"``.
    crystal_system : str
        One of :data:`CRYSTAL_SYSTEMS`.
    point_group : str
        Hermann-Mauguin symbol of the crystal class, e.g. ``"2/m"``, ``"m-3m"``.
    order : int
        Number of symmetry operations of the general position in the conventional cell
        (centring translations included; hexagonal axes for the R groups), i.e. the
        multiplicity of the general Wyckoff position: 4 for P2_1/c, 192 for Fm-3m.
    """

    number: int
    symbol: str
    crystal_system: str
    point_group: str
    order: int

    def __str__(self) -> str:
        return f"{self.symbol} ({self.number})"

    @property
    def bravais_lattice(self) -> str:
        """Pearson-style Bravais lattice symbol (14 types): ``aP mP mC oP oC oI oF tP tI
        hP hR cP cI cF`` (A- and C-centred cells are both ``C``, as in ``oC``/``mC``)."""
        centring = {"A": "C", "B": "C", "C": "C"}.get(self.symbol[0], self.symbol[0])
        if self.crystal_system in ("trigonal", "hexagonal"):
            return "hR" if centring == "R" else "hP"
        return _SYSTEM_LETTER[self.crystal_system] + centring

    @property
    def laue_class(self) -> str:
        """The Laue class (the point group plus inversion; 11 classes), e.g. ``"m-3m"``."""
        return _LAUE_OF_POINT_GROUP[self.point_group]


GroupLike = int | str | SpaceGroup

_SYSTEM_LETTER = {
    "triclinic": "a",
    "monoclinic": "m",
    "orthorhombic": "o",
    "tetragonal": "t",
    "cubic": "c",
}
_LAUE_OF_POINT_GROUP = {
    **dict.fromkeys(("1", "-1"), "-1"),
    **dict.fromkeys(("2", "m", "2/m"), "2/m"),
    **dict.fromkeys(("222", "mm2", "mmm"), "mmm"),
    **dict.fromkeys(("4", "-4", "4/m"), "4/m"),
    **dict.fromkeys(("422", "4mm", "-42m", "4/mmm"), "4/mmm"),
    **dict.fromkeys(("3", "-3"), "-3"),
    **dict.fromkeys(("32", "3m", "-3m"), "-3m"),
    **dict.fromkeys(("6", "-6", "6/m"), "6/m"),
    **dict.fromkeys(("622", "6mm", "-6m2", "6/mmm"), "6/mmm"),
    **dict.fromkeys(("23", "m-3"), "m-3"),
    **dict.fromkeys(("432", "-43m", "m-3m"), "m-3m"),
}


@dataclass(frozen=True)
class Relation:
    """How space group ``a`` relates to space group ``b`` (see :func:`relation`).

    Attributes
    ----------
    kind : str
        ``"same"``, ``"maximal subgroup"`` (a is a maximal subgroup of b), ``"subgroup"``,
        ``"maximal supergroup"`` (b is a maximal subgroup of a), ``"supergroup"``,
        ``"common subgroup"`` or ``"unrelated"`` (only P1 in common).
    detail : str
        One human sentence, e.g. ``"P-1 (2) is a maximal subgroup of P2_1/c (14), index 2"``.
    shared : int or None
        For ``"common subgroup"``: the largest common subgroup (highest order, then highest
        number) other than P1. None otherwise.
    """

    kind: RelationKind
    detail: str
    shared: int | None = None


@functools.cache
def _table() -> tuple[dict, ...]:
    text = (resources.files("pdfsg") / "data" / "spacegroups.json").read_text("utf-8")
    groups = tuple(json.loads(text)["groups"])
    if [g["number"] for g in groups] != list(ALL_230):
        raise RuntimeError(
            "pdfsg/data/spacegroups.json is corrupt: rerun tools/make_spacegroup_table.py"
        )
    return groups


@functools.cache
def all_groups() -> tuple[SpaceGroup, ...]:
    """The 230 space groups; ``all_groups()[n - 1].number == n``."""
    fields = ("number", "symbol", "crystal_system", "point_group", "order")
    return tuple(SpaceGroup(**{f: g[f] for f in fields}) for g in _table())


def _norm(symbol: str) -> str:
    """Spaces, underscores, case and a setting suffix (``":2"``, ``":H"``) do not matter."""
    s = symbol.split(":")[0].replace("\u2212", "-").replace("_", "")
    return "".join(s.split()).lower()


@functools.cache
def _symbol_index() -> tuple[dict[str, int], dict[str, int]]:
    """(exact, no-minus): normalised symbol -> number. The second map holds symbols with the
    bars dropped (old cubic style ``Fm3m``), kept only where that is unambiguous."""
    exact: dict[str, int] = {}
    for g in _table():
        for s in (g["symbol"], g["full_symbol"], *g["settings"]):
            exact.setdefault(_norm(s), g["number"])
    bare: dict[str, set[int]] = {}
    for key, n in exact.items():
        bare.setdefault(key.replace("-", ""), set()).add(n)
    return exact, {k: v.pop() for k, v in bare.items() if len(v) == 1}


def _number(group: GroupLike) -> int:
    if isinstance(group, SpaceGroup):
        return group.number
    if isinstance(group, str):
        text = group.strip()
        if text.isdigit():
            return _number(int(text))
        exact, bare = _symbol_index()
        key = _norm(text)
        n = exact.get(key, bare.get(key))
        if n is None:
            raise ParamsError(
                f"unknown space group {group!r}: give a number 1-230 or a Hermann-Mauguin "
                "symbol such as 'Fm-3m' or 'P2_1/c'"
            )
        return n
    if isinstance(group, bool):
        raise ParamsError(f"unknown space group {group!r}: give a number 1-230 or a symbol")
    try:
        n = operator.index(group)
    except TypeError:
        raise ParamsError(
            f"unknown space group {group!r}: give a number 1-230 or a symbol"
        ) from None
    if not 1 <= n <= 230:
        raise ParamsError(f"unknown space group {n}: space-group numbers run from 1 to 230")
    return n


def get(group: GroupLike) -> SpaceGroup:
    """Look up a space group by number or symbol.

    Parameters
    ----------
    group : int, str or SpaceGroup
        A number (``225`` or ``"225"``) or a Hermann-Mauguin symbol. Spaces, underscores and
        case are ignored (``"F m -3 m"``, ``"P21/c"``); full symbols (``"P 1 2_1/c 1"``),
        other settings (``"P2_1/n"``, ``"Pbnm"``), pre-2002 symbols (``"Cmca"``), a setting
        suffix (``"Fd-3m:2"``) and old cubic symbols without bars (``"Fm3m"``) are accepted.

    Returns
    -------
    SpaceGroup

    Raises
    ------
    pdfsg.errors.ParamsError
        (a ``ValueError``) for an unknown number or symbol.
    """
    return all_groups()[_number(group) - 1]


def label_set(name: str) -> tuple[int, ...]:
    """Space-group numbers of a named label set, in increasing order.

    Parameters
    ----------
    name : str
        ``"paper45"`` (the paper's Table 1) or ``"all230"``.

    Raises
    ------
    pdfsg.errors.ParamsError
        For any other name.
    """
    try:
        return _LABEL_SETS[name]
    except (KeyError, TypeError):
        raise ParamsError(
            f"unknown label set {name!r}: choose one of {', '.join(_LABEL_SETS)}"
        ) from None


def crystal_system_colors() -> dict[str, str]:
    """A fixed hex colour per crystal system for plots (paper Fig. 3's scheme).

    Returns
    -------
    dict[str, str]
        Crystal system -> ``"#rrggbb"``, in the order of :data:`CRYSTAL_SYSTEMS`.
    """
    return dict(_COLORS)


def maximal_subgroups(
    group: GroupLike, kind: Literal["t", "k", "all"] = "all"
) -> tuple[tuple[int, int], ...]:
    """Maximal subgroups of a space group as (number, index) pairs, as pyxtal lists them.

    Parameters
    ----------
    group : int, str or SpaceGroup
    kind : {"t", "k", "all"}
        Translationengleiche, klassengleiche, or both.

    Returns
    -------
    tuple of (int, int)
        Sorted distinct pairs. The k-subgroups include the group's own type (isomorphic
        subgroups, an infinite series that pyxtal cuts at small indices).
    """
    if kind not in ("t", "k", "all"):
        raise ParamsError(f"unknown subgroup kind {kind!r}: choose 't', 'k' or 'all'")
    g = _table()[_number(group) - 1]
    pairs = (g["max_t_subgroups"] if kind != "k" else []) + (
        g["max_k_subgroups"] if kind != "t" else []
    )
    return tuple(sorted({(n, i) for n, i in pairs}))


@functools.cache
def _maximal(number: int) -> dict[int, int]:
    """Maximal subgroup types other than ``number`` itself -> smallest index."""
    out: dict[int, int] = {}
    for n, i in maximal_subgroups(number):
        if n != number:
            out[n] = min(i, out.get(n, i))
    return out


@functools.cache
def _subgroups(number: int) -> frozenset[int]:
    """All subgroup types other than ``number`` itself (transitive closure)."""
    seen: set[int] = set()
    todo = [number]
    while todo:
        for n in _maximal(todo.pop()):
            if n not in seen:
                seen.add(n)
                todo.append(n)
    seen.discard(number)  # enantiomorphic pairs (P4_1 <-> P4_3) reach back to the start
    return frozenset(seen)


def is_subgroup(sub: GroupLike, sup: GroupLike) -> bool:
    """Whether space-group type ``sub`` is a subgroup (maximal or not) of ``sup``.

    A group is not counted as its own subgroup (its isomorphic k-subgroups aside, identical
    numbers are "the same group"). Enantiomorphic pairs are subgroups of each other:
    ``is_subgroup(76, 78)`` and ``is_subgroup(78, 76)`` are both True (P4_1, P4_3).
    """
    a, b = _number(sub), _number(sup)
    return a != b and a in _subgroups(b)


def is_maximal_subgroup(sub: GroupLike, sup: GroupLike) -> bool:
    """Whether ``sub`` is a maximal t- or k-subgroup type of ``sup`` (and not ``sup`` itself)."""
    a, b = _number(sub), _number(sup)
    return a != b and a in _maximal(b)


def common_subgroups(a: GroupLike, b: GroupLike) -> set[int]:
    """Space-group types that are subgroups of both ``a`` and ``b``.

    Each group counts as a subgroup of itself here, so if ``a`` is a subgroup of ``b`` then
    ``a`` is in the result. P1 (1) is always in it.
    """
    m, n = _number(a), _number(b)
    return set((_subgroups(m) | {m}) & (_subgroups(n) | {n}))


def relation(a: GroupLike, b: GroupLike) -> Relation:
    """How space group ``a`` relates to ``b``, for reading a classifier's confusions.

    Parameters
    ----------
    a, b : int, str or SpaceGroup
        E.g. the true and the predicted space group.

    Returns
    -------
    Relation
        The first that holds of: same group; ``a`` is a maximal subgroup of ``b``; a subgroup;
        ``b`` is a maximal subgroup of ``a`` ("maximal supergroup"); ``a`` is a supergroup;
        they share a subgroup other than P1 ("common subgroup", naming the largest);
        otherwise "unrelated".

    Notes
    -----
    Through klassengleiche subgroups (a larger or decentred cell) many pairs of types are
    subgroups of each other, e.g. Pm-3m (221) and Fm-3m (225), P4/mmm (123) and I4/mmm
    (139), P4_1 (76) and P4_3 (78). For such pairs the answer takes ``a``'s side ("a is a
    (maximal) subgroup of b") and the detail says that the converse holds too.

    Examples
    --------
    >>> relation("P-1", "P2_1/c").detail
    'P-1 (2) is a maximal subgroup of P2_1/c (14), index 2'
    """
    ga, gb = get(a), get(b)
    m, n = ga.number, gb.number
    if m == n:
        return Relation("same", f"{ga} is the same group")
    both = m in _subgroups(n) and n in _subgroups(m)
    note = "; each is a subgroup of the other (with a larger cell)" if both else ""
    if m in _maximal(n):
        return Relation(
            "maximal subgroup",
            f"{ga} is a maximal subgroup of {gb}, index {_maximal(n)[m]}{note}",
        )
    if m in _subgroups(n):
        return Relation("subgroup", f"{ga} is a subgroup of {gb}{note}")
    if n in _maximal(m):
        return Relation(
            "maximal supergroup",
            f"{ga} is a minimal supergroup of {gb} ({gb.symbol} is a maximal subgroup of "
            f"index {_maximal(m)[n]})",
        )
    if n in _subgroups(m):
        return Relation("supergroup", f"{ga} is a supergroup of {gb}")
    shared = common_subgroups(m, n) - {1}
    if not shared:
        return Relation("unrelated", f"{ga} and {gb} share no subgroup but P1 (1)")
    best = max((get(s) for s in shared), key=lambda g: (g.order, g.number))
    return Relation(
        "common subgroup", f"{ga} and {gb} share the subgroup {best}", shared=best.number
    )
