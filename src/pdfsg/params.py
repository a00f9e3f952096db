"""PDF simulation settings: one frozen dataclass shared by every engine, dataset and model.

The defaults are the settings of Liu et al. (2019), Table 2, with the table's swapped
Qmin/Qmax labels put right: Qmin = 0.5 1/Å, Qmax = 23 1/Å, r from 1.5 Å to 30 Å in steps of
π/Qmax (209 points, the last at 29.91 Å), isotropic ADP Uiso = 0.008 Å², Qdamp = 0.04 1/Å,
Qbroad = 0.01 1/Å, X-ray scattering weights.  Parameter names follow PDFgui / diffpy.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from pdfsg.errors import ParamsError

RADIATIONS = ("xray", "neutron")
PAPER_QMAX = 23.0
#: most r points a PdfParams may have: 10,000 (0.003 Å steps over 30 Å; ``rstep = 1e-7``
#: alone would ask for terabytes)
MAX_NPOINTS = 10_000
#: largest npoints × rmax [Å].  The fast engine's operator holds npoints × rmax/0.01 numbers:
#: measured (``pdfsg simulate Ni.cif``, peak RSS) 0.79 GB at 2,850 points to 30 Å, 1.46 GB at
#: 5,700 to 30 Å, 2.6 GB at 5,851 to 60 Å: about 7.5 kB per point and Å, so this cap keeps a
#: simulation under about 4.5 GB (0.01 Å steps to 75 Å, 0.1 Å to 245 Å)
MAX_POINTS_TIMES_RMAX = 600_000.0
#: largest rmax [Å]: the pair enumeration grows with rmax³; nanoparticle PDFs rarely go past
#: a few hundred Å
MAX_RMAX = 500.0


@dataclass(frozen=True)
class PdfParams:
    """Settings of a simulated (or model-input) reduced PDF G(r).

    Parameters
    ----------
    rmin : float  [Å]
        First point of the r grid.
    rmax : float  [Å]
        Upper bound of the r grid (the last point is the largest rmin + k*rstep <= rmax).
    rstep : float  [Å]
        Grid spacing; the paper uses the Nyquist step π/Qmax.
    qmin : float  [1/Å]
        Low-Q cut of the Fourier transform (0 for none).
    qmax : float  [1/Å]
        High-Q cut; sets the termination ripples.
    qdamp : float  [1/Å]
        Instrumental resolution; G is multiplied by exp(-(qdamp r)²/2).
    qbroad : float  [1/Å]
        Resolution peak broadening: σ² = 2 uiso (1 - delta2/r² + qbroad² r²), as in PDFgui.
    uiso : float  [Å²]
        Isotropic atomic displacement parameter given to every atom.
    delta2 : float  [Å²]
        Correlated-motion peak sharpening (PDFgui's delta2).
    radiation : str
        ``"xray"`` (weights = atomic number) or ``"neutron"`` (coherent scattering lengths).
    """

    rmin: float = 1.5
    rmax: float = 30.0
    rstep: float = math.pi / PAPER_QMAX
    qmin: float = 0.5
    qmax: float = PAPER_QMAX
    qdamp: float = 0.04
    qbroad: float = 0.01
    uiso: float = 0.008
    delta2: float = 0.0
    radiation: str = "xray"

    def __post_init__(self) -> None:
        def bad(name: str, text: str) -> ParamsError:
            return ParamsError(f"PdfParams.{name} {text}", field=name, subject=f"PdfParams.{name}")

        for name in ("rmin", "rmax", "rstep", "qmin", "qmax", "qdamp", "qbroad", "uiso", "delta2"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise bad(name, f"must be a finite number, got {value!r}")
        if self.rstep <= 0:
            raise bad("rstep", f"must be > 0, got {self.rstep:g}")
        if self.rmin < 0:
            raise bad("rmin", f"must be >= 0, got {self.rmin:g}")
        if self.rmax <= self.rmin:
            raise bad("rmax", f"({self.rmax:g}) must be > rmin ({self.rmin:g})")
        if self.rmax > MAX_RMAX:
            raise bad("rmax", f"must be <= {MAX_RMAX:g} Å, got {self.rmax:g}")
        if self.qmax <= 0:
            raise bad("qmax", f"must be > 0, got {self.qmax:g}")
        if self.qmin < 0 or self.qmin >= self.qmax:
            raise bad("qmin", f"must be in [0, qmax) (qmin={self.qmin:g}, qmax={self.qmax:g})")
        for name in ("qdamp", "qbroad", "uiso", "delta2"):
            if getattr(self, name) < 0:
                raise bad(name, f"must be >= 0, got {getattr(self, name):g}")
        if self.uiso == 0 and self.qbroad == 0:
            raise bad("uiso", "and qbroad cannot both be 0 (peaks of zero width)")
        if self.radiation not in RADIATIONS:
            raise bad("radiation", f"must be one of {RADIATIONS}, got {self.radiation!r}")
        n = (self.rmax - self.rmin) / self.rstep + 1
        if n > MAX_NPOINTS:
            raise bad(
                "rstep",
                f"= {self.rstep:g} Å gives {n:.3g} r points from rmin {self.rmin:g} to rmax "
                f"{self.rmax:g} Å, more than {MAX_NPOINTS:,}: use a larger rstep",
            )
        if n * self.rmax > MAX_POINTS_TIMES_RMAX:
            raise bad(
                "rstep",
                f"= {self.rstep:g} Å gives {n:,.0f} r points up to rmax {self.rmax:g} Å, which "
                f"would need about {7.5e3 * n * self.rmax / 1e9:.1f} GB to simulate (points × "
                f"rmax at most {MAX_POINTS_TIMES_RMAX:,.0f} Å): use a larger rstep or smaller rmax",
            )
        if self.npoints < 2:
            raise bad("rmax", "gives fewer than 2 r points; widen rmin..rmax or lower rstep")

    @property
    def npoints(self) -> int:
        """Number of r points: rmin + k*rstep for k = 0..npoints-1, all <= rmax."""
        return int(math.floor((self.rmax - self.rmin) / self.rstep + 1e-9)) + 1

    def r_grid(self) -> np.ndarray:
        """The r grid [Å] as float64, ``rmin + rstep * arange(npoints)``."""
        return self.rmin + self.rstep * np.arange(self.npoints, dtype=np.float64)

    def replace(self, **changes: Any) -> PdfParams:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PdfParams:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ParamsError(f"unknown PdfParams field(s): {sorted(unknown)}")
        return cls(**data)

    def same_grid_and_physics(self, other: PdfParams, tol: float = 1e-9) -> bool:
        """True when both describe the same PDFs (every field equal within ``tol``)."""
        a, b = self.to_dict(), other.to_dict()
        for k in a:
            if isinstance(a[k], str):
                if a[k] != b[k]:
                    return False
            elif abs(a[k] - b[k]) > tol:
                return False
        return True
