"""Check a ranking against the data: candidates of the top groups, refined, ranked by fit.

:func:`refine_prediction` takes a :class:`~pdfsg.predict.PredictionResult` and the measured
curve, finds candidates of the sample's composition in the model's top ``top`` groups
(:mod:`pdfsg.refine.candidates`), refines each (:mod:`pdfsg.refine.fit`), in parallel
over candidates with ``workers`` processes, and ranks the groups by fit and probability
(:mod:`pdfsg.refine.rank`).  Nothing here raises for one bad candidate or group: each
gets a one-line reason in :attr:`RefinementResult.notes` or its
:class:`~pdfsg.refine.fit.CandidateFit`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pdfsg.errors import CompositionError, PdfsgError
from pdfsg.refine.candidates import find_candidates
from pdfsg.refine.fit import Candidate, CandidateFit, FitData, FitSettings, refine_candidate
from pdfsg.refine.library import LibraryEntry, StructureLibrary
from pdfsg.refine.rank import RW_UNTESTED, TAU, GroupScore, combine, fit_order

if TYPE_CHECKING:  # pragma: no cover
    from pdfsg.predict import PredictionResult

DEFAULT_TOP = 6
#: how the combined ranking is made, for the output
METHOD = (
    "groups ranked by ln p(model) - (Rw - Rw_best)/tau, tau = {tau:g}; a group without a "
    "refined candidate counts with Rw = max(worst refined Rw, {untested:g})"
)


@dataclass
class RefinementResult:
    """What :func:`refine_prediction` returns; ``to_dict()`` is the JSON form."""

    file: str | None
    composition: str | None
    groups: list[GroupScore]
    fits: list[CandidateFit]
    notes: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def best(self) -> CandidateFit | None:
        """The lowest-Rw fit of the combined ranking's first group that has one."""
        fits = {f.space_group: f for f in sorted(self._ok(), key=lambda f: -f.rw)}  # type: ignore[operator]
        for g in self.groups:
            if g.space_group in fits:
                return fits[g.space_group]
        return None

    def _ok(self) -> list[CandidateFit]:
        return [f for f in self.fits if f.ok]

    def to_dict(self) -> dict[str, Any]:
        best = self.best
        return {
            "file": self.file,
            "composition": self.composition,
            "ranking": [g.to_dict() for g in self.groups],
            "candidates": [f.to_dict() for f in self.fits],
            "best": None if best is None else {"space_group": best.space_group, "id": best.id},
            "notes": list(self.notes),
            "settings": dict(self.settings),
            "seconds": round(self.seconds, 3),
        }


def _fit_one(args: tuple[Candidate, FitData, FitSettings]) -> CandidateFit:
    return refine_candidate(*args)


def refine_all(
    candidates: Sequence[Candidate],
    data: FitData,
    settings: FitSettings = FitSettings(),
    *,
    workers: int = 1,
    progress: Callable[[CandidateFit], None] | None = None,
) -> list[CandidateFit]:
    """Refine every candidate (``workers`` processes; 1: in this process), in input order.

    ``progress`` is called with each fit as it finishes.
    """
    jobs = [(c, data, settings) for c in candidates]
    if workers <= 1 or len(jobs) <= 1:
        out = []
        for job in jobs:
            out.append(_fit_one(job))
            if progress is not None:
                progress(out[-1])
        return out
    from concurrent.futures import ProcessPoolExecutor, as_completed

    results: list[CandidateFit | None] = [None] * len(jobs)
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        futures = {pool.submit(_fit_one, job): k for k, job in enumerate(jobs)}
        for fut in as_completed(futures):
            results[futures[fut]] = fut.result()
            if progress is not None:
                progress(results[futures[fut]])  # type: ignore[arg-type]
    return [r for r in results if r is not None]


def fit_data_for(
    r: np.ndarray,
    g: np.ndarray,
    settings_used: Mapping[str, Any],
    fit_settings: FitSettings,
    source: str,
) -> tuple[FitData, list[str]]:
    """The :class:`FitData` of a measured curve and the prediction's settings (qmax, qdamp,
    radiation), with notes on what was assumed.  A curve that dies out within its r range
    (:func:`pdfsg.predict.coherence_length_warning` on the whole curve: a nanoparticle, or
    bulk data damped by a strong Qdamp) gets a refined spherical-particle diameter, for every
    candidate alike."""
    from pdfsg.predict import coherence_length_warning
    from pdfsg.refine.fit import particle_diameter_estimate, prepare_data

    notes = []
    qmax = float(settings_used.get("qmax") or 0.0)
    radiation = settings_used.get("radiation")
    if radiation is None:
        radiation = "xray"
        notes.append(f"{source}: radiation unknown (header or --radiation); refined as X-ray")
    qdamp = settings_used.get("qdamp")
    diameter = None
    if coherence_length_warning(np.asarray(r), np.asarray(g), source):
        diameter = particle_diameter_estimate(r, g)
        notes.append(
            f"{source}: G(r) dies out; spherical-particle diameter refined (start {diameter:.0f} Å)"
        )
    data = prepare_data(
        r, g, qmax=qmax, qdamp=qdamp, radiation=radiation, particle_diameter=diameter,
        settings=fit_settings, source=source,
    )  # fmt: skip
    return data, notes


def refine_prediction(
    prediction: PredictionResult,
    r: np.ndarray,
    g: np.ndarray,
    *,
    composition: Mapping[str, float] | str | None = None,
    top: int = DEFAULT_TOP,
    library: StructureLibrary | None = None,
    user: Sequence[LibraryEntry] = (),
    prototypes: bool = True,
    per_group: int = 2,
    settings: FitSettings = FitSettings(),
    workers: int = 1,
    tau: float = TAU,
    progress: Callable[[CandidateFit], None] | None = None,
) -> RefinementResult:
    """Refine candidates of the prediction's top ``top`` groups against ``(r, g)``.

    Parameters
    ----------
    prediction : the model's answer for this curve (its ``data_settings`` give qmax, qdamp,
        radiation and the composition used; ``predictions`` must hold at least ``top``
        groups, e.g. ``predict_file(..., top=0)``)
    r, g : the measured curve [Å], [Å⁻²], as read (not the model's resampled input)
    composition : overrides ``prediction.data_settings["composition"]``
    library : structure library (None: none; see :func:`pdfsg.refine.library.read_library`)
    user : the user's candidate structures (:func:`~pdfsg.refine.candidates.read_user_candidates`)
    settings : refinement range, grid and time budget per candidate
    workers : processes refining candidates in parallel
    tau : the Rw scale of the combined ranking (:func:`pdfsg.refine.rank.combine`)

    Raises
    ------
    CompositionError
        no composition known, or not an integer formula.
    PdfFileError
        the data are too short for a fit.
    """
    import time

    from pdfsg.composition import as_composition, format_composition

    t0 = time.monotonic()
    source = str(prediction.file or "data")
    if composition is None:
        composition = prediction.data_settings.get("composition")
    if not composition:
        raise CompositionError(
            f"{source}: no composition to find candidate structures for "
            "(give --composition or a header 'composition = ...')"
        )
    comp = as_composition(composition, f"{source}: composition")
    groups = [(p.space_group, p.symbol, p.probability) for p in prediction.predictions[:top]]
    data, notes = fit_data_for(r, g, prediction.data_settings, settings, source)
    found = find_candidates(
        comp, [n for n, _, _ in groups], library=library, user=user, per_group=per_group,
        prototypes=prototypes, source=f"{source}: composition",
    )  # fmt: skip
    symbols = {n: s for n, s, _ in groups}
    notes += [f"{symbols[n]} ({n}): {why}" for n, why in found.missing.items()]
    notes += found.skipped_files
    fits = refine_all(found.all(), data, settings, workers=workers, progress=progress)
    failed = [f for f in fits if not f.ok]
    notes += [f"{f.symbol} ({f.space_group}) {f.source}:{f.id}: {f.reason}" for f in failed]
    ranking = combine(groups, fits, tau)
    return RefinementResult(
        file=prediction.file,
        composition=format_composition(comp),
        groups=ranking,
        fits=fits,
        notes=notes,
        settings={
            "method": METHOD.format(tau=tau, untested=RW_UNTESTED),
            "tau": tau,
            "top": top,
            "r_range": [float(data.r[0]), float(data.r[-1])],
            "rstep": float(data.r[1] - data.r[0]),
            "qmax": data.qmax,
            "qdamp": data.qdamp if data.qdamp is not None else "refined",
            "radiation": data.radiation,
            "particle_diameter_refined": data.particle_diameter is not None,
            "max_seconds_per_candidate": settings.max_seconds,
            "fit_order": fit_order(groups, fits),
        },
        seconds=time.monotonic() - t0,
    )


def write_best_cif(result: RefinementResult, folder: str | os.PathLike[str]) -> Path | None:
    """Write the best refined structure as ``<file stem>-<group>.cif`` into ``folder``
    (None when no candidate was refined)."""
    best = result.best
    if best is None or best.cif is None:
        return None
    stem = _stem(result.file)
    out = Path(folder) / f"{stem}-sg{best.space_group}-{_safe(best.id)}.cif"
    out.write_text(best.cif)
    return out


def _stem(file: str | None) -> str:
    name = Path(file or "data").name
    if name.lower().endswith(".gz"):
        name = name[:-3]
    return Path(name).stem


def _safe(text: str) -> str:
    name = Path(text).name
    name = name[:-4] if name.lower().endswith(".cif") else name
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)[:40]


def plot_fit(result: RefinementResult, path: str | os.PathLike[str]) -> Path:
    """Data, best fit and difference (offset below) of the best candidate, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    best = result.best
    if best is None or best.r is None:
        raise PdfsgError(f"{result.file}: no refined candidate to plot")
    r, obs, calc = best.r, best.g_obs, best.g_calc
    diff = obs - calc  # type: ignore[operator]
    offset = float(np.min(obs)) - float(np.max(diff)) - 0.1 * float(np.ptp(obs))  # type: ignore[arg-type]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(r, obs, "o", ms=2.5, mfc="none", color="tab:blue", label="data")
    ax.plot(r, calc, "-", color="tab:red", lw=1.2, label=f"fit {best.symbol} ({best.id})")
    ax.plot(r, diff + offset, "-", color="tab:green", lw=1.0, label="difference")
    ax.axhline(offset, color="0.6", lw=0.6)
    ax.set_xlabel("r (Å)")
    ax.set_ylabel("G (Å$^{-2}$)")
    ax.set_title(f"{_stem(result.file)}: {best.formula} {best.symbol}, Rw = {best.rw:.3f}")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
