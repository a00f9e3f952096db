"""Answers at the level the data support: crystal system, Bravais lattice and Laue class
probabilities (sums over the ranked space groups), the prediction set, and one plain
sentence that says what is sure and what is not.

The PDF often pins down the lattice long before the space group: a face-centred cubic
metal is sure to be ``cF`` while Fm-3m and its subgroup F-43m differ only in weak details.
:func:`summarise` reads the probabilities top-down and stops at the finest level that is
sure, naming the group–subgroup relation of the candidates it cannot separate.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: a level (or a group) at or above this probability is called sure
SURE = 0.9
#: a level at or above this probability is called probable
LIKELY = 0.6
#: the second candidate is "close" when its probability is at least this share of the first
CLOSE = 1 / 3
#: below this top-1 probability the answer starts with "low confidence"
LOW = 0.25

_CENTRING = {
    "P": "primitive",
    "C": "base-centred",
    "I": "body-centred",
    "F": "face-centred",
    "R": "rhombohedral",
}


@dataclass(frozen=True)
class Summary:
    """Level probabilities (each sorted high to low), the prediction set and the sentence."""

    crystal_system: dict[str, float]
    bravais_lattice: dict[str, float]
    laue_class: dict[str, float]
    prediction_set: list[int]
    set_level: float
    set_method: str
    sentence: str

    def to_dict(self) -> dict:
        return {
            "crystal_system": self.crystal_system,
            "bravais_lattice": self.bravais_lattice,
            "laue_class": self.laue_class,
            "prediction_set": {
                "space_groups": list(self.prediction_set),
                "level": self.set_level,
                "method": self.set_method,
            },
        }


def level_probabilities(labels: Sequence[int], proba: np.ndarray, level: str) -> dict[str, float]:
    """Σ p over the groups of each crystal_system / bravais_lattice / laue_class."""
    keys, index = _level_index(tuple(int(sg) for sg in labels), level)
    sums = np.bincount(index, weights=np.asarray(proba, dtype=np.float64), minlength=len(keys))
    out = {k: round(float(v), 6) for k, v in zip(keys, sums, strict=True)}
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


@functools.lru_cache(maxsize=64)
def _level_index(labels: tuple[int, ...], level: str) -> tuple[tuple[str, ...], np.ndarray]:
    """The distinct ``level`` values of ``labels`` (first-seen order) and each label's index
    into them: built once per model and level (a prediction sums 113 groups 3 times)."""
    from pdfsg.spacegroups import get

    keys: dict[str, int] = {}
    index = [keys.setdefault(getattr(get(sg), level), len(keys)) for sg in labels]
    return tuple(keys), np.asarray(index, dtype=np.intp)


#: what ``label_set`` accepts besides the names of :func:`pdfsg.spacegroups.label_set`: no
#: restriction, the model's own classes
OWN_LABEL_SET = "all"


def restriction(labels: Sequence[int], label_set: str | None) -> np.ndarray | None:
    """Class indices of ``labels`` (a model's class order) inside the named label set, or
    None for no restriction (``None`` or ``"all"``: the model's own classes).

    Raises
    ------
    pdfsg.errors.ParamsError
        (``field="label_set"``) for an unknown name, or a set that holds none of the
        model's groups.
    """
    from pdfsg.errors import ParamsError
    from pdfsg.spacegroups import label_set as named_set

    if label_set is None or label_set == OWN_LABEL_SET:
        return None
    try:
        allowed = set(named_set(label_set))
    except ParamsError:
        raise ParamsError(
            f"label_set: unknown label set {label_set!r}; choose {OWN_LABEL_SET} (the model's "
            "own groups), paper45 or all230",
            field="label_set",
        ) from None
    keep = np.array([i for i, sg in enumerate(labels) if int(sg) in allowed], dtype=np.int64)
    if keep.size == 0:
        raise ParamsError(
            f"label_set: {label_set} holds none of the model's {len(labels)} space groups",
            field="label_set",
        )
    return keep


def restrict(
    labels: Sequence[int], proba: np.ndarray, keep: np.ndarray | None
) -> tuple[tuple[int, ...], np.ndarray]:
    """The classes ``keep`` (from :func:`restriction`) and their probabilities renormalised
    to sum to 1 along the last axis (``proba``: one row or (n, K)); unchanged for None.  A
    row whose kept probabilities sum to 0 becomes uniform over them."""
    proba = np.asarray(proba, dtype=np.float64)
    if keep is None:
        return tuple(int(v) for v in labels), proba
    sub = proba[..., keep]
    total = sub.sum(axis=-1, keepdims=True)
    uniform = np.full_like(sub, 1.0 / keep.size)
    sub = np.divide(sub, total, out=uniform, where=total > 0)
    return tuple(int(labels[i]) for i in keep), sub


def cumulative_set(proba: np.ndarray, level: float) -> np.ndarray:
    """Indices of the fewest most-probable classes whose probabilities sum to >= level (the
    prediction set of an uncalibrated model: its coverage is only as good as its
    probabilities)."""
    order = np.argsort(-np.asarray(proba), kind="stable")
    csum = np.cumsum(np.asarray(proba)[order])
    return order[: int(np.searchsorted(csum, level - 1e-12)) + 1]


def _lattice_name(symbol: str) -> str:
    return _CENTRING.get(symbol[1], symbol[1])


def _pct(p: float) -> str:
    return f"{p:.0%}"


def _level_phrase(systems: dict[str, float], lattices: dict[str, float]) -> str:
    sys_name, p_sys = next(iter(systems.items()))
    lat, p_lat = next(iter(lattices.items()))
    if p_lat >= SURE:
        return f"{sys_name}, {_lattice_name(lat)} ({lat}, {_pct(p_lat)})"
    if p_sys >= SURE:
        return f"{sys_name} ({_pct(p_sys)}), lattice {lat} at {_pct(p_lat)}"
    if p_sys >= LIKELY:
        return f"probably {sys_name} ({_pct(p_sys)}), lattice {lat} at {_pct(p_lat)}"
    ranked = [f"{k} {_pct(v)}" for k, v in list(systems.items())[:2]]
    return "crystal system not settled: " + ", ".join(ranked)


def _pair_phrase(a: int, b: int) -> str:
    """How group b relates to group a, as a reader wants it: 'its subgroup F-43m'."""
    from pdfsg.spacegroups import get, relation

    ga, gb = get(a), get(b)
    rel = relation(a, b)
    if rel.kind in ("maximal supergroup", "supergroup"):
        return f"its subgroup {gb.symbol} ({b})"
    if rel.kind in ("maximal subgroup", "subgroup"):
        return f"its supergroup {gb.symbol} ({b})"
    if rel.kind == "common subgroup" and rel.shared is not None:
        shared = get(rel.shared).symbol
        return f"{gb.symbol} ({b}), which shares the subgroup {shared} with {ga.symbol}"
    return f"{gb.symbol} ({b}), not group–subgroup related"


def describe(
    labels: Sequence[int],
    proba: np.ndarray,
    systems: dict[str, float],
    lattices: dict[str, float],
    prediction_set: Sequence[int],
    set_level: float,
) -> str:
    """The sentence under the ranking (independent of how many rows are shown)."""
    from pdfsg.spacegroups import get

    proba = np.asarray(proba)
    order = np.argsort(-proba, kind="stable")
    a = int(labels[order[0]])
    p1 = float(proba[order[0]])
    head = _level_phrase(systems, lattices)
    ga = get(a)
    if p1 >= SURE:
        body = f"{ga.symbol} ({a}) at {_pct(p1)}"
    elif len(order) > 1:
        b = int(labels[order[1]])
        p2 = float(proba[order[1]])
        if p2 >= CLOSE * p1:
            body = (
                f"{ga.symbol} ({a}, {_pct(p1)}) or {_pair_phrase(a, b)} at {_pct(p2)} — the "
                "PDF barely tells them apart"
            )
        else:
            body = (
                f"most likely {ga.symbol} ({a}, {_pct(p1)}); next {_pair_phrase(a, b)} "
                f"at {_pct(p2)}"
            )
    else:
        body = f"{ga.symbol} ({a}) at {_pct(p1)}"
    n = len(prediction_set)
    tail = (
        f"; the {set_level:.0%} set is {ga.symbol} alone"
        if n == 1
        else f"; the {set_level:.0%} set holds {n} groups"
    )
    low = "low confidence; " if p1 < LOW else ""
    return f"{low}{head}; {body}{tail}"


def summarise(
    labels: Sequence[int],
    proba: np.ndarray,
    *,
    conformal_threshold: float | None = None,
    set_level: float = 0.9,
) -> Summary:
    """Level probabilities, prediction set and sentence for one probability vector.

    ``conformal_threshold`` (from the model's calibration) gives a set with measured
    coverage; without it the set is the fewest groups whose probabilities reach
    ``set_level``.
    """
    from pdfsg.calibration import prediction_set as conformal_set

    proba = np.asarray(proba, dtype=np.float64)
    systems = level_probabilities(labels, proba, "crystal_system")
    lattices = level_probabilities(labels, proba, "bravais_lattice")
    laue = level_probabilities(labels, proba, "laue_class")
    if conformal_threshold is not None:
        idx = conformal_set(proba, conformal_threshold)
        method = "split conformal, calibrated on rows the model never trained on"
    else:
        idx = cumulative_set(proba, set_level)
        method = "cumulative probability (model not calibrated)"
    members = [int(labels[i]) for i in idx]
    sentence = describe(labels, proba, systems, lattices, members, set_level)
    return Summary(systems, lattices, laue, members, set_level, method, sentence)
