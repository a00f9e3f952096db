r"""One small-box refinement of a candidate structure against a measured G(r) (diffpy.pdffit2).

What is refined (the PDFgui defaults for a first look at a phase):

* the data scale,
* the lattice parameters within the group's constraints (cubic: a = b = c; tetragonal,
  trigonal and hexagonal: a = b, c; orthorhombic: a, b, c; monoclinic: a, b, c, β;
  triclinic: all six; the candidate is the spglib-standardised conventional cell, so
  these are the only free lattice parameters),
* one isotropic ADP per element (:math:`U_{11} = U_{22} = U_{33}` of every atom of it),
* ``delta2`` [Å²] (correlated motion),
* ``qdamp`` [1/Å] unless the data say it (header or option),
* ``spdiameter`` [Å], the diameter of a spherical particle, for nanoparticle data.

Atom positions stay where the candidate has them: the question asked is which structure
type fits, not its last digit.  The fit runs in two stages: a scan of the cell volume
(isotropic scale of the lattice from −8 % to +8 %) over r < 12 Å with the scale solved
linearly, then scale + lattice + ADPs over r < 15 Å, then everything over the whole range.
Each stage runs pdffit2 one least-squares step at a time and stops at convergence, after
``max_steps`` steps or when the candidate's ``max_seconds`` are spent (the step in progress
always finishes).

The agreement factor is pdffit2's

.. math:: R_w = \sqrt{\frac{\sum_i w_i (G_{obs,i} - G_{calc,i})^2}{\sum_i w_i G_{obs,i}^2}}

with unit weights (uncertainty columns of measured files are rarely meaningful).
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from pdfsg.errors import PdfFileError, PdfsgError

if TYPE_CHECKING:  # pragma: no cover
    from pymatgen.core import Structure

#: shortest r range [Å] a fit is attempted over
MIN_RANGE = 5.0
#: fewest points (after resampling) a fit is attempted on
MIN_POINTS = 30
#: starting isotropic ADP [Å²], delta2 [Å²], qdamp [1/Å]
START_UISO = 0.006
START_DELTA2 = 1.0
START_QDAMP = 0.03
#: a refined value outside these bounds means the fit ran away (the candidate is reported
#: with that reason, not ranked)
UISO_RANGE = (0.0, 0.1)
DELTA2_RANGE = (-1.0, 20.0)
QDAMP_RANGE = (0.0, 0.2)
MAX_LATTICE_CHANGE = 0.15
#: which lattice parameters (a, b, c, alpha, beta, gamma) share a refined variable, per
#: crystal system: the k-th entry is the variable index (0 = fixed)
LATTICE_CONSTRAINTS = {
    "cubic": (1, 1, 1, 0, 0, 0),
    "tetragonal": (1, 1, 2, 0, 0, 0),
    "trigonal": (1, 1, 2, 0, 0, 0),
    "hexagonal": (1, 1, 2, 0, 0, 0),
    "orthorhombic": (1, 2, 3, 0, 0, 0),
    "monoclinic": (1, 2, 3, 0, 4, 0),
    "triclinic": (1, 2, 3, 4, 5, 6),
}
LATTICE_NAMES = ("a", "b", "c", "alpha", "beta", "gamma")


class RefinementError(PdfsgError):
    """A candidate that cannot be refined (pdffit2 error, runaway parameters)."""


@dataclass(frozen=True)
class FitSettings:
    """How a candidate is refined.

    Parameters
    ----------
    rmin : float  [Å], lowest r fitted (raised to the data's first point)
    rmax : float or None  [Å], highest r fitted; None: the data's last point
    rstep : float  [Å], the data are resampled onto this grid (a finer grid costs time
        and adds no information beyond π/Qmax)
    max_seconds : float  [s], time budget of one candidate
    max_steps : int, least-squares steps per stage
    """

    rmin: float = 1.5
    rmax: float | None = None
    rstep: float = 0.05
    max_seconds: float = 20.0
    max_steps: int = 25

    def __post_init__(self) -> None:
        from pdfsg.errors import ParamsError

        if not (self.rstep > 0 and self.max_seconds > 0 and self.max_steps >= 1):
            raise ParamsError("refinement rstep, max_seconds and max_steps must be > 0")
        if self.rmax is not None and not self.rmax > self.rmin:
            raise ParamsError(
                f"refinement rmax ({self.rmax:g} Å) must be above rmin ({self.rmin:g} Å)",
                field="rmax",
            )


@dataclass(frozen=True)
class FitData:
    """A measured curve prepared for fitting.

    Attributes
    ----------
    r, g : fitted grid [Å] and G(r) [Å⁻²] (uniform, resampled)
    qmax : float  [1/Å]
    qdamp : float or None  [1/Å], None: refined
    radiation : ``"xray"`` or ``"neutron"``
    particle_diameter : float or None  [Å], starting spherical-particle diameter for
        nanoparticle data (None: bulk, not refined)
    source : name used in messages
    """

    r: np.ndarray
    g: np.ndarray
    qmax: float
    qdamp: float | None
    radiation: str
    particle_diameter: float | None = None
    source: str = "data"


def prepare_data(
    r: np.ndarray,
    g: np.ndarray,
    *,
    qmax: float,
    qdamp: float | None = None,
    radiation: str = "xray",
    particle_diameter: float | None = None,
    settings: FitSettings = FitSettings(),
    source: str = "data",
) -> FitData:
    """Cut the curve to the fitted range and resample it onto ``settings.rstep``.

    Raises
    ------
    PdfFileError
        The range left is shorter than :data:`MIN_RANGE` or has fewer than
        :data:`MIN_POINTS` points (one line naming ``source``).
    """
    r = np.asarray(r, dtype=np.float64)
    g = np.asarray(g, dtype=np.float64)
    if r.size < 2:
        raise PdfFileError(f"{source}: too few points to refine against")
    lo = max(settings.rmin, float(r[0]))
    hi = float(r[-1]) if settings.rmax is None else min(settings.rmax, float(r[-1]))
    if hi - lo < MIN_RANGE:
        raise PdfFileError(
            f"{source}: data cover r = {lo:.2f}–{hi:.2f} Å, too short to refine "
            f"(at least {MIN_RANGE:g} Å needed)"
        )
    step = max(settings.rstep, float(np.median(np.diff(r))))
    grid = lo + step * np.arange(int(math.floor((hi - lo) / step + 1e-9)) + 1)
    if grid.size < MIN_POINTS:
        raise PdfFileError(f"{source}: only {grid.size} points in the fitted range")
    if not (math.isfinite(qmax) and qmax > 0):
        raise PdfFileError(f"{source}: Qmax must be > 0 to refine, got {qmax:g}")
    return FitData(
        r=grid,
        g=np.interp(grid, r, g),
        qmax=float(qmax),
        qdamp=qdamp,
        radiation=radiation,
        particle_diameter=particle_diameter,
        source=source,
    )


def particle_diameter_estimate(r: np.ndarray, g: np.ndarray) -> float:
    """Starting spherical-particle diameter [Å]: the r where the RMS of G over 4 Å windows
    drops below 5 % of its value at 1.5–8 Å (the signal of a sphere of diameter D ends at D)."""
    from pdfsg.particle_size import rms_between

    r = np.asarray(r)
    g = np.asarray(g)
    ref = rms_between(r, g, 1.5, 8.0)
    for start in np.arange(8.0, float(r[-1]) - 4.0, 1.0):
        if ref > 0 and rms_between(r, g, start, start + 4.0, closed=False) < 0.05 * ref:
            return float(start + 2.0)
    return float(r[-1])


@dataclass(frozen=True)
class Candidate:
    """A structure to refine: the standardised conventional cell and where it came from.

    Attributes
    ----------
    structure : pymatgen Structure, ordered, conventional standard setting
    space_group : its group number
    source : ``"file"`` (the user's CIF), ``"library"`` or ``"prototype"``
    id : the file, library id or prototype name
    note : how it was made (``"exact formula"``, ``"Cs, Cl from K, Br"``...)
    """

    structure: Any = field(repr=False)
    space_group: int
    source: str
    id: str
    note: str = ""

    @property
    def formula(self) -> str:
        return str(self.structure.composition.reduced_formula)


@dataclass
class CandidateFit:
    """The outcome of refining one candidate (``to_dict()`` is its JSON form)."""

    space_group: int
    symbol: str
    source: str
    id: str
    formula: str
    note: str = ""
    status: str = "ok"  # ok | failed
    reason: str = ""
    rw: float | None = None
    lattice: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    steps: int = 0
    seconds: float = 0.0
    stopped: str = ""  # "" (converged), "steps" or "time"
    r: np.ndarray | None = field(default=None, repr=False)
    g_obs: np.ndarray | None = field(default=None, repr=False)
    g_calc: np.ndarray | None = field(default=None, repr=False)
    cif: str | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.rw is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "space_group": self.space_group,
            "symbol": self.symbol,
            "source": self.source,
            "id": self.id,
            "formula": self.formula,
            "note": self.note,
            "status": self.status,
            "reason": self.reason,
            "rw": self.rw,
            "lattice": dict(self.lattice),
            "params": dict(self.params),
            "steps": self.steps,
            "seconds": round(self.seconds, 3),
            "stopped": self.stopped,
        }


def _diffpy_structure(structure: Structure, uiso: Mapping[str, float] | float) -> Any:
    from diffpy.structure import Atom, Lattice
    from diffpy.structure import Structure as DiffpyStructure

    lat = structure.lattice
    ds = DiffpyStructure(lattice=Lattice(lat.a, lat.b, lat.c, lat.alpha, lat.beta, lat.gamma))
    for site in structure:
        sym = site.specie.symbol
        u = uiso if isinstance(uiso, float) else uiso[sym]
        ds.append(Atom(sym, np.asarray(site.frac_coords, dtype=float), Uisoequiv=u))
    return ds


class _Quiet:
    """pdffit2 prints to stdout; send it to /dev/null for the duration."""

    def __enter__(self) -> _Quiet:
        from diffpy.pdffit2 import redirect_stdout

        self._null = open(os.devnull, "w")  # closed in __exit__
        redirect_stdout(self._null)
        return self

    def __exit__(self, *exc: object) -> None:
        from diffpy.pdffit2 import redirect_stdout

        redirect_stdout(sys.stdout)
        self._null.close()


class _Model:
    """One pdffit2 setup: a structure, the data, and the refined variables."""

    def __init__(self, structure: Structure, data: FitData, rhi: float, state: dict) -> None:
        from diffpy.pdffit2 import PdfFit

        self.pf = PdfFit(create_intro=False) if _takes_intro() else PdfFit()
        kind = "X" if data.radiation == "xray" else "N"
        self.pf.add_structure(_diffpy_structure(structure, state["uiso"]))
        qdamp = state["qdamp"] if data.qdamp is None else data.qdamp
        self.pf.read_data_lists(kind, data.qmax, qdamp, list(data.r), list(data.g))
        self.pf.setdata(1)
        self.pf.setphase(1)
        self.pf.pdfrange(1, float(data.r[0]), rhi)
        self.species = [site.specie.symbol for site in structure]

    def constrain(
        self,
        system: str,
        state: dict,
        *,
        lattice: bool,
        extra: bool,
        data: FitData,
        fixed: frozenset[str] = frozenset(),
    ) -> None:
        """Set the refined variables; ``extra`` adds delta2, qdamp and spdiameter (those
        named in ``fixed`` are held at their ``state`` values)."""
        pf = self.pf
        if lattice:
            for k, var in enumerate(LATTICE_CONSTRAINTS[system]):
                if var:
                    pf.constrain(pf.lat(k + 1), f"@{var}")
                    pf.setpar(var, state["lattice"][k])
        elements = sorted(set(self.species))
        for i, sym in enumerate(self.species, start=1):
            par = 10 + elements.index(sym)
            for u in (pf.u11(i), pf.u22(i), pf.u33(i)):
                pf.constrain(u, f"@{par}")
        for k, sym in enumerate(elements):
            pf.setpar(10 + k, state["uiso"][sym])
        n = 100
        pf.constrain(pf.dscale(), f"@{n}")
        pf.setpar(n, state["scale"])
        if data.particle_diameter is not None:
            pf.setvar(pf.spdiameter(), state["spdiameter"])
        if not extra:
            pf.setvar(pf.delta2(), state["delta2"])
            return
        for k, (name, var, free) in enumerate(
            (
                ("delta2", pf.delta2(), True),
                ("qdamp", pf.qdamp(), data.qdamp is None),
                ("spdiameter", pf.spdiameter(), data.particle_diameter is not None),
            ),
            start=n + 1,
        ):
            if free and name not in fixed:
                pf.constrain(var, f"@{k}")
                pf.setpar(k, state[name])
            elif free:
                pf.setvar(var, state[name])

    def run(self, max_steps: int, deadline: float) -> tuple[int, str]:
        """Least-squares steps until convergence, ``max_steps`` or ``deadline``."""
        steps = 0
        while True:
            finished = self.pf.refine_step(1e-5)
            steps += 1
            if finished:
                return steps, ""
            if steps >= max_steps:
                return steps, "steps"
            if time.monotonic() > deadline:
                return steps, "time"

    def read_state(self, state: dict, data: FitData) -> None:
        pf = self.pf
        state["lattice"] = [float(pf.getvar(pf.lat(k + 1))) for k in range(6)]
        state["scale"] = float(pf.getvar(pf.dscale()))
        state["delta2"] = float(pf.getvar(pf.delta2()))
        if data.qdamp is None:
            state["qdamp"] = float(pf.getvar(pf.qdamp()))
        if data.particle_diameter is not None:
            state["spdiameter"] = float(pf.getvar(pf.spdiameter()))
        for i, sym in enumerate(self.species, start=1):
            state["uiso"][sym] = float(pf.getvar(pf.u11(i)))


def _takes_intro() -> bool:
    import inspect

    from diffpy.pdffit2 import PdfFit

    return "create_intro" in inspect.signature(PdfFit.__init__).parameters


def _scan_volume(structure: Structure, data: FitData, state: dict) -> float:
    """Best isotropic lattice scale in [0.92, 1.08] over r < 12 Å (scale solved linearly)."""
    rhi = min(float(data.r[-1]), 12.0)
    mask = data.r <= rhi + 1e-9
    obs = data.g[mask]
    best = (math.inf, 1.0)
    base = structure.lattice
    for f in np.arange(0.92, 1.0801, 0.005):
        s = structure.copy()
        s.lattice = type(base).from_parameters(
            base.a * f, base.b * f, base.c * f, base.alpha, base.beta, base.gamma
        )
        m = _Model(s, data, rhi, state)
        m.pf.setvar(m.pf.delta2(), state["delta2"])
        if data.particle_diameter is not None:
            m.pf.setvar(m.pf.spdiameter(), state["spdiameter"])
        m.pf.calc()
        calc = np.asarray(m.pf.getpdf_fit(), dtype=float)[: obs.size]
        denom = float(calc @ calc)
        if denom <= 0 or calc.size != obs.size:
            continue
        k = max(float(calc @ obs) / denom, 0.0)
        rw = float(np.sum((obs - k * calc) ** 2) / np.sum(obs**2))
        if rw < best[0]:
            best = (rw, float(f))
            state["scale"] = k if k > 0 else state["scale"]
    return best[1]


#: bounds of the parameters that are held at a bound (and the fit repeated) when they run
#: past it: delta2 [Å²] >= 0, qdamp [1/Å] in [0, 0.1], spdiameter [Å] >= 5
SOFT_BOUNDS = {"delta2": (0.0, 10.0), "qdamp": (0.0, 0.1), "spdiameter": (5.0, 1000.0)}


def _clamp_soft(state: dict, data: FitData) -> frozenset[str]:
    """Clamp delta2, qdamp and spdiameter into :data:`SOFT_BOUNDS`; the names clamped."""
    names = ["delta2"]
    if data.qdamp is None:
        names.append("qdamp")
    if data.particle_diameter is not None:
        names.append("spdiameter")
    out = set()
    for name in names:
        lo, hi = SOFT_BOUNDS[name]
        if not lo <= state[name] <= hi:
            state[name] = min(max(state[name], lo), hi)
            out.add(name)
    return frozenset(out)


def _check_state(state: dict, start: list[float]) -> str:
    """Why the refined values are unphysical ("" when they are fine)."""
    for sym, u in state["uiso"].items():
        if not UISO_RANGE[0] < u < UISO_RANGE[1]:
            return f"Uiso({sym}) ran to {u:.3g} Å²"
    if not DELTA2_RANGE[0] <= state["delta2"] <= DELTA2_RANGE[1]:
        return f"delta2 ran to {state['delta2']:.3g} Å²"
    if not QDAMP_RANGE[0] <= state["qdamp"] <= QDAMP_RANGE[1]:
        return f"qdamp ran to {state['qdamp']:.3g} 1/Å"
    for k in range(3):
        if abs(state["lattice"][k] / start[k] - 1) > MAX_LATTICE_CHANGE:
            name, end = LATTICE_NAMES[k], state["lattice"][k]
            return f"lattice {name} ran from {start[k]:.3f} to {end:.3f} Å"
    if state["scale"] <= 0:
        return f"scale ran to {state['scale']:.3g}"
    return ""


def refine_candidate(
    candidate: Candidate, data: FitData, settings: FitSettings = FitSettings()
) -> CandidateFit:
    """Refine one candidate against the data; never raises for a bad candidate.

    Returns a :class:`CandidateFit` with ``status = "failed"`` and a one-line ``reason``
    when pdffit2 fails or the refined values are unphysical (see :func:`_check_state`).
    """
    from pdfsg.spacegroups import get

    sg = get(candidate.space_group)
    out = CandidateFit(
        space_group=sg.number,
        symbol=sg.symbol,
        source=candidate.source,
        id=candidate.id,
        formula=candidate.formula,
        note=candidate.note,
    )
    t0 = time.monotonic()
    try:
        _refine(candidate, data, settings, sg.crystal_system, out, t0 + settings.max_seconds)
    except Exception as exc:  # pdffit2 raises its own error types (calculationError...)
        text = str(exc).splitlines()[0] if str(exc).strip() else ""
        out.status = "failed"
        out.reason = f"refinement failed: {type(exc).__name__}{': ' + text if text else ''}"
    out.seconds = time.monotonic() - t0
    return out


def _refine(
    candidate: Candidate,
    data: FitData,
    settings: FitSettings,
    system: str,
    out: CandidateFit,
    deadline: float,
) -> None:
    structure = candidate.structure
    state: dict[str, Any] = {
        "uiso": {site.specie.symbol: START_UISO for site in structure},
        "scale": 1.0,
        "delta2": START_DELTA2 if data.particle_diameter is None else 0.0,
        "qdamp": START_QDAMP if data.qdamp is None else data.qdamp,
        "spdiameter": data.particle_diameter or 0.0,
    }
    with _Quiet():
        f = _scan_volume(structure, data, state)
        lat = structure.lattice
        state["lattice"] = [lat.a * f, lat.b * f, lat.c * f, lat.alpha, lat.beta, lat.gamma]
        start = list(state["lattice"])
        steps = 0
        stopped = ""
        rhi_full = float(data.r[-1])
        fixed: frozenset[str] = frozenset()
        stages = [(min(rhi_full, 15.0), False), (rhi_full, True)]
        while stages:
            rhi, extra = stages.pop(0)
            s = structure.copy()
            s.lattice = type(lat).from_parameters(*state["lattice"])
            model = _Model(s, data, rhi, state)
            model.constrain(system, state, lattice=True, extra=extra, data=data, fixed=fixed)
            n, stopped = model.run(settings.max_steps, deadline)
            steps += n
            model.read_state(state, data)
            if time.monotonic() > deadline:
                break  # out of time: report it as it stands
            clamped = _clamp_soft(state, data) - fixed
            if extra and clamped:  # once more with those held at their bounds
                fixed = fixed | clamped
                stages.append((rhi_full, True))
        rw = float(model.pf.getrw())
        r_fit = np.asarray(model.pf.getR(), dtype=float)
        g_calc = np.asarray(model.pf.getpdf_fit(), dtype=float)
        g_obs = np.asarray(model.pf.getpdf_obs(), dtype=float)
    out.steps = steps
    out.stopped = stopped
    reason = _check_state(state, start)
    if not math.isfinite(rw):
        reason = reason or "Rw is not finite"
    out.lattice = dict(zip(LATTICE_NAMES, (round(v, 5) for v in state["lattice"]), strict=True))
    out.params = {
        "scale": state["scale"],
        "delta2": state["delta2"],
        "qdamp": state["qdamp"],
        "qdamp_refined": data.qdamp is None,
        "uiso": dict(state["uiso"]),
        "r_range": [float(data.r[0]), float(r_fit[-1]) if r_fit.size else float(data.r[-1])],
    }
    if data.particle_diameter is not None:
        out.params["spdiameter"] = state["spdiameter"]
    if reason:
        out.status = "failed"
        out.reason = f"refinement diverged: {reason}"
        out.rw = rw if math.isfinite(rw) else None
        return
    out.rw = rw
    out.r, out.g_obs, out.g_calc = r_fit, g_obs, g_calc
    refined = structure.copy()
    refined.lattice = type(lat).from_parameters(*state["lattice"])
    out.cif = _cif_text(refined)


def _cif_text(structure: Structure) -> str:
    from pymatgen.io.cif import CifWriter

    try:
        return str(CifWriter(structure, symprec=0.1))
    except Exception:  # symmetry finding failed: write it in P1
        return str(CifWriter(structure))
