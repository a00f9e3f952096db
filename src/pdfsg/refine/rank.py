r"""Rank space groups by the model's probability and the fit of their best candidate.

For group :math:`g` with model probability :math:`p_g` and best (lowest) candidate
:math:`R_{w,g}`, the combined score is

.. math:: s_g = \ln p_g - \frac{R_{w,g} - R_{w,\min}}{\tau}

with :math:`R_{w,\min}` the best Rw of any group: a fit worse by τ costs a factor e in
odds.  A group with no refined candidate (none found, or every refinement failed) is
given the worse of the worst fitted Rw and :data:`RW_UNTESTED`: an untested group is
not believed to fit better than a poor fit, and is never pushed below a group that was
tested and fits worse.  With no fitted group at all the ranking is the model's.

τ = :data:`TAU` = 0.1 was chosen on the 30 simulated measurements of
``benchmarks/refine.py`` (top-1 of the combination 23 of 30 at τ = 0.1, 21 at 0.03, 22
for the model alone, 18 for the fit alone), not on the measured files (7 of 8 for every
τ from 0.005 to 0.5, 6 for the model alone).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pdfsg.refine.fit import CandidateFit

#: Rw difference [dimensionless] worth a factor e in the odds of a group
TAU = 0.1
#: ``"difference"``: penalty (Rw - Rw_min)/tau; ``"ratio"``: ln(Rw/Rw_min)/tau
FORM = "difference"
#: the Rw an untested group is taken to have (at least): fits of the right structure to
#: measured data have Rw 0.05–0.25, of a wrong one 0.4–0.8
RW_UNTESTED = 0.4
#: probabilities are floored here before the logarithm
MIN_PROBABILITY = 1e-6


@dataclass(frozen=True)
class GroupScore:
    """One group of the combined ranking (``to_dict()`` is its JSON form)."""

    rank: int
    space_group: int
    symbol: str
    probability: float
    model_rank: int
    best_rw: float | None
    fit_rank: int | None
    score: float
    best_candidate: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def best_fits(fits: Sequence[CandidateFit]) -> dict[int, CandidateFit]:
    """Group -> its lowest-Rw successful fit."""
    best: dict[int, CandidateFit] = {}
    for f in fits:
        if f.ok and (f.space_group not in best or f.rw < best[f.space_group].rw):  # type: ignore[operator]
            best[f.space_group] = f
    return best


def combine(
    groups: Sequence[tuple[int, str, float]],
    fits: Sequence[CandidateFit],
    tau: float = TAU,
    form: str = FORM,
) -> list[GroupScore]:
    """The combined ranking of ``groups`` ((number, symbol, probability), model order).

    ``form`` is ``"difference"`` (penalty (Rw - Rw_min)/tau) or ``"ratio"`` (penalty
    ln(Rw/Rw_min)/tau).  ``tau = inf`` gives the model's ranking, ``tau -> 0`` the fit's
    (ties and unfitted groups by probability).
    """
    best = best_fits(fits)
    rws = [f.rw for f in best.values() if f.rw is not None]
    rw_min = min(rws) if rws else 0.0
    rw_missing = max([*rws, RW_UNTESTED]) if rws else 0.0
    by_fit = sorted(best, key=lambda g: (best[g].rw, -_prob(groups, g)))
    rows = []
    for model_rank, (number, symbol, p) in enumerate(groups, 1):
        f = best.get(number)
        rw = f.rw if f is not None else None
        penalty = _penalty(rw if rw is not None else rw_missing, rw_min, tau, form)
        score = math.log(max(p, MIN_PROBABILITY)) - penalty
        rows.append(
            (
                -score,
                model_rank,
                number,
                symbol,
                p,
                rw,
                by_fit.index(number) + 1 if f is not None else None,
                score,
                f"{f.source}:{f.id}" if f is not None else None,
            )
        )
    rows.sort(key=lambda t: (t[0], t[1]))
    return [
        GroupScore(k, n, s, p, mr, rw, fr, sc, bc)
        for k, (_, mr, n, s, p, rw, fr, sc, bc) in enumerate(rows, 1)
    ]


def _penalty(rw: float, rw_min: float, tau: float, form: str) -> float:
    if math.isinf(tau) or tau <= 0:
        return 0.0
    if form == "ratio":
        return math.log(max(rw, 1e-9) / max(rw_min, 1e-9)) / tau
    return (rw - rw_min) / tau


def fit_order(groups: Sequence[tuple[int, str, float]], fits: Sequence[CandidateFit]) -> list[int]:
    """Groups ranked by the fit alone: fitted groups by Rw, then the rest in model order."""
    best = best_fits(fits)
    fitted = sorted(best, key=lambda g: best[g].rw)  # type: ignore[arg-type, return-value]
    return fitted + [n for n, _, _ in groups if n not in best]


def _prob(groups: Sequence[tuple[int, str, float]], number: int) -> float:
    return next(p for n, _, p in groups if n == number)
