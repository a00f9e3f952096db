r"""Reduced pair distribution function G(r) of a periodic crystal.

Two engines share one :class:`~pdfsg.params.PdfParams`:

``pdffit2``
    the reference, diffpy.pdffit2 (the program whose parameter definitions the paper uses).
    pdffit2 has no Qmin; with ``qmin > 0`` its curve is Fourier-filtered by
    :func:`apply_qmin_cut` over the same extended r range as the fast engine.
``fast``
    our engine.  Per structure it only builds a weighted histogram of pair distances
    (a compiled loop over atom pairs and lattice translations).  Everything else is one
    linear operator per PdfParams, built once and cached:

    .. math::

        R(r) = \frac{1}{N}\sum_{i}\sum_{j\neq i}\frac{b_i b_j}{\langle b\rangle^2}
               \frac{1}{\sqrt{2\pi}\sigma_{ij}} e^{-(r-r_{ij})^2 / 2\sigma_{ij}^2},
        \qquad
        G_0(r) = \left[\frac{R(r)}{r} - 4\pi\rho_0 r\right] e^{-(Q_\mathrm{damp} r)^2/2},

    .. math::

        G(r) = \frac{2}{\pi}\int_{Q_\mathrm{min}}^{Q_\mathrm{max}} F(Q)\sin(Qr)\,dQ,
        \qquad F(Q) = \int_0^{r_\mathrm{ext}} G_0(r')\sin(Qr')\,dr',

    with peak widths
    :math:`\sigma_{ij}^2 = 2U_\mathrm{iso}(1-\delta_2/r_{ij}^2 + Q_\mathrm{broad}^2 r_{ij}^2)`
    (the PDFgui/pdffit2 definition).
    The Fourier band-pass is applied in r space as the kernel
    :math:`\frac{1}{\pi}\Big[\frac{\sin Q(r-r')}{r-r'} - \frac{\sin Q(r+r')}{r+r'}\Big]`
    taken between Q = Qmin and Q = Qmax
    (G is odd in r), which puts the termination ripples of Qmax and the Qmin cut in.

Scattering weights b: atomic number Z for X-rays (the Q = 0 form factor of a neutral atom),
coherent neutron scattering lengths (from pymatgen's table) for neutrons.
"""

from __future__ import annotations

import functools
import math
import os
import sys
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from pdfsg.errors import ParamsError, StructureError
from pdfsg.params import PdfParams

if TYPE_CHECKING:  # pragma: no cover
    from pymatgen.core import Structure

ENGINES = ("fast", "pdffit2")

#: spacing [Å] of the internal fine grid that pair distances are binned onto
FINE_STEP = 0.01
#: how far [Å] beyond rmax pairs are summed, so that termination ripples, peak tails and
#: the Qmin filter at rmax see the curve beyond it
R_EXTENSION = 8.0


# --------------------------------------------------------------------------- structures


@dataclass(frozen=True)
class CellArrays:
    """What the engines need from a structure: a reduced cell and per-atom weights.

    Attributes
    ----------
    lattice : (3, 3) float64 [Å], rows are the cell vectors a, b, c
    cart : (n, 3) float64 [Å], Cartesian positions inside the cell
    weights : (n,) float64, scattering weight b of every atom
    species : tuple of element symbols
    """

    lattice: np.ndarray
    cart: np.ndarray
    weights: np.ndarray
    species: tuple[str, ...]

    @property
    def volume(self) -> float:
        return float(abs(np.linalg.det(self.lattice)))

    @property
    def number_density(self) -> float:
        """ρ0 [1/Å³]."""
        return len(self.species) / self.volume


@functools.cache
def _neutron_lengths() -> dict[str, float]:
    import json
    from importlib.resources import files

    path = files("pymatgen.analysis.diffraction") / "neutron_scattering_length.json"
    return {k: float(v) for k, v in json.loads(path.read_text()).items()}


@functools.cache
def scattering_weight(symbol: str, radiation: str) -> float:
    """Scattering weight of an element: Z for ``xray``, b_coh [fm] for ``neutron``."""
    from pymatgen.core import Element

    try:
        element = Element(symbol)
    except ValueError as exc:
        raise StructureError(f"unknown element {symbol!r}") from exc
    if radiation == "xray":
        return float(element.Z)
    lengths = _neutron_lengths()
    if symbol not in lengths:
        raise StructureError(f"no neutron scattering length for element {symbol}")
    return lengths[symbol]


def cell_arrays(structure: Structure, radiation: str = "xray") -> CellArrays:
    """Niggli-reduce ``structure`` and collect positions and scattering weights.

    Raises
    ------
    StructureError
        partial occupancy, no atoms, or a degenerate cell.
    """
    if len(structure) == 0:
        raise StructureError("structure has no atoms")
    if not structure.is_ordered:
        raise StructureError("structure has partial occupancies (disordered sites)")
    if structure.volume <= 1e-6:
        raise StructureError("unit cell volume is not positive")
    import spglib

    lattice = np.array(structure.lattice.matrix, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        reduced = spglib.niggli_reduce(lattice)  # C code; None if it fails
    if reduced is not None:
        lattice = np.array(reduced, dtype=np.float64)
    cart0 = np.array(structure.cart_coords, dtype=np.float64)
    frac = np.mod(np.linalg.solve(lattice.T, cart0.T).T, 1.0)
    species = tuple(site.specie.symbol for site in structure)
    weights = np.array([scattering_weight(s, radiation) for s in species], dtype=np.float64)
    if np.sum(weights) == 0:
        raise StructureError("all scattering weights are zero")
    return CellArrays(lattice=lattice, cart=frac @ lattice, weights=weights, species=species)


# --------------------------------------------------------------------------- pair histogram


def _translation_ranges(lattice: np.ndarray, rcut: float) -> np.ndarray:
    """Per axis, how many cells a sphere of radius rcut (plus one cell of slack) spans."""
    recip = np.linalg.inv(lattice).T  # rows: reciprocal vectors without 2π
    return np.ceil(rcut * np.linalg.norm(recip, axis=1)).astype(np.int64) + 1


def _lattice_shifts(lattice: np.ndarray, cart: np.ndarray, rcut: float) -> np.ndarray:
    """Cartesian lattice translations [Å] that can bring an atom within rcut of another:
    the box of :func:`_translation_ranges`, less those whose whole cell lies beyond rcut."""
    n = _translation_ranges(lattice, rcut)
    axes = [np.arange(-k, k + 1) for k in n]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    shifts = grid @ lattice
    return shifts[np.linalg.norm(shifts, axis=1) - _cell_span(cart) <= rcut]


def _pair_histogram_numpy(
    lattice: np.ndarray, cart: np.ndarray, weights: np.ndarray, rcut: float, step: float, nbins: int
) -> np.ndarray:
    shifts = _lattice_shifts(lattice, cart, rcut)
    hist = np.zeros(nbins, dtype=np.float64)
    for i in range(len(cart)):
        d = cart[None, :, :] + shifts[:, None, :] - cart[i]
        dist = np.sqrt(np.einsum("tjk,tjk->tj", d, d))
        w = np.broadcast_to(weights[i] * weights[None, :], dist.shape)
        keep = (dist > 1e-8) & (dist < rcut)
        x = dist[keep] / step
        k = np.floor(x).astype(np.int64)
        f = x - k
        ww = w[keep]
        ok = k + 1 < nbins
        hist += np.bincount(k[ok], weights=ww[ok] * (1 - f[ok]), minlength=nbins)[:nbins]
        hist += np.bincount(k[ok] + 1, weights=ww[ok] * f[ok], minlength=nbins)[:nbins]
    return hist


@functools.cache
def _compiled_histogram():
    """The numba kernel, compiled on first use (None where numba is missing)."""
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a dependency
        return None

    @numba.njit(cache=True, fastmath=False)
    def kernel(lattice, cart, weights, rcut, step, nbins, na, nb, nc, span):  # pragma: no cover
        # Each pair (i, j, T) has the twin (j, i, -T) at the same distance, so only half of
        # the translations are visited (T > 0 lexicographically, or T = 0 with i < j) and
        # every pair counts twice.  Translations whose whole cell lies beyond rcut are
        # skipped (|T| - span > rcut, span = largest |x_j - x_i| in the cell).
        hist = np.zeros(nbins, dtype=np.float64)
        nat = cart.shape[0]
        rcut2 = rcut * rcut
        inv = 1.0 / step
        for ia in range(na + 1):
            for ib in range(-nb, nb + 1):
                if ia == 0 and ib < 0:
                    continue
                for ic in range(-nc, nc + 1):
                    if ia == 0 and ib == 0 and ic < 0:
                        continue
                    tx = ia * lattice[0, 0] + ib * lattice[1, 0] + ic * lattice[2, 0]
                    ty = ia * lattice[0, 1] + ib * lattice[1, 1] + ic * lattice[2, 1]
                    tz = ia * lattice[0, 2] + ib * lattice[1, 2] + ic * lattice[2, 2]
                    tn = math.sqrt(tx * tx + ty * ty + tz * tz)
                    if tn - span > rcut:
                        continue
                    origin = ia == 0 and ib == 0 and ic == 0
                    for i in range(nat):
                        xi = cart[i, 0] - tx
                        yi = cart[i, 1] - ty
                        zi = cart[i, 2] - tz
                        wi = 2.0 * weights[i]
                        j0 = i + 1 if origin else 0
                        for j in range(j0, nat):
                            dx = cart[j, 0] - xi
                            dy = cart[j, 1] - yi
                            dz = cart[j, 2] - zi
                            d2 = dx * dx + dy * dy + dz * dz
                            if d2 < rcut2 and d2 > 1e-16:
                                x = math.sqrt(d2) * inv
                                k = int(x)
                                if k + 1 < nbins:
                                    f = x - k
                                    w = wi * weights[j]
                                    hist[k] += w * (1.0 - f)
                                    hist[k + 1] += w * f
        return hist

    return kernel


def _cell_span(cart: np.ndarray) -> float:
    """Largest distance between two atoms of the cell [Å] (0 for one atom)."""
    if len(cart) < 2:
        return 0.0
    diff = cart[:, None, :] - cart[None, :, :]
    return float(np.sqrt(np.max(np.einsum("ijk,ijk->ij", diff, diff))))


def pair_histogram(cell: CellArrays, rcut: float, step: float = FINE_STEP) -> np.ndarray:
    """Histogram of b_i b_j over all pairs i != j (i in the cell) with r_ij < rcut.

    Bin k is centred at r = k*step; each pair is split linearly between its two nearest
    bins, so the histogram's first moments are exact.
    """
    nbins = int(math.ceil(rcut / step)) + 2
    n = _translation_ranges(cell.lattice, rcut)
    kernel = _compiled_histogram()
    if kernel is None or os.environ.get("PDFSG_NO_NUMBA"):
        return _pair_histogram_numpy(cell.lattice, cell.cart, cell.weights, rcut, step, nbins)
    return kernel(
        np.ascontiguousarray(cell.lattice),
        np.ascontiguousarray(cell.cart),
        np.ascontiguousarray(cell.weights),
        float(rcut),
        float(step),
        nbins,
        int(n[0]),
        int(n[1]),
        int(n[2]),
        _cell_span(cell.cart),
    )


def pair_histogram_torch(
    cell: CellArrays, rcut: float, step: float = FINE_STEP, device: str = "cpu"
) -> Any:
    """:func:`pair_histogram` with torch tensor operations (for a GPU); float64 tensor.

    All (translation, i, j) distances are formed in blocks of translations, so memory stays
    bounded (about 64 MB per block) whatever the cell size.
    """
    import torch

    nbins = math.ceil(rcut / step) + 2
    shifts = _lattice_shifts(cell.lattice, cell.cart, rcut)
    dev = torch.device(device)
    cart = torch.as_tensor(cell.cart, dtype=torch.float64, device=dev)
    w = torch.as_tensor(cell.weights, dtype=torch.float64, device=dev)
    ww = (w[:, None] * w[None, :]).reshape(-1)
    diff0 = (cart[None, :, :] - cart[:, None, :]).reshape(-1, 3)  # x_j - x_i
    hist = torch.zeros(nbins, dtype=torch.float64, device=dev)
    block = max(1, (64 << 20) // (24 * diff0.shape[0]))
    t_all = torch.as_tensor(shifts, dtype=torch.float64, device=dev)
    for start in range(0, t_all.shape[0], block):
        t = t_all[start : start + block]
        dist = torch.linalg.norm(diff0[None, :, :] + t[:, None, :], dim=-1)
        keep = (dist > 1e-8) & (dist < rcut)
        x = dist[keep] / step
        k = torch.floor(x).long()
        f = x - k
        wk = ww.expand_as(dist)[keep]
        ok = k + 1 < nbins
        hist.index_add_(0, k[ok], wk[ok] * (1 - f[ok]))
        hist.index_add_(0, k[ok] + 1, wk[ok] * f[ok])
    return hist


def simulate_cells_torch(
    cells: Sequence[CellArrays], params: PdfParams = PdfParams(), device: str = "cpu"
) -> np.ndarray:
    """G(r) of many cells with torch (the GPU path of the fast engine), shape (n, npoints).

    Histograms are built per cell on ``device``; the operator is applied to the whole
    batch as one matrix product.
    """
    import torch

    op = pdf_operator(params)
    if not cells:
        return np.zeros((0, params.npoints))
    dev = torch.device(device)
    hists = torch.stack([pair_histogram_torch(c, op.rcut, op.step, device) for c in cells])
    peaks = torch.as_tensor(op.peaks, dtype=torch.float64, device=dev)
    base = torch.as_tensor(op.baseline, dtype=torch.float64, device=dev)
    norm = torch.as_tensor(
        [len(c.species) * float(np.mean(c.weights)) ** 2 for c in cells],
        dtype=torch.float64,
        device=dev,
    )
    rho = torch.as_tensor([c.number_density for c in cells], dtype=torch.float64, device=dev)
    g = (hists @ peaks.T) / norm[:, None] - 4.0 * math.pi * rho[:, None] * base[None, :]
    return g.cpu().numpy()


# --------------------------------------------------------------------------- linear operator


def peak_sigma(r: np.ndarray, params: PdfParams) -> np.ndarray:
    """Gaussian peak width σ [Å] of a pair at distance r [Å]."""
    r = np.maximum(np.asarray(r, dtype=np.float64), 1e-6)
    corr = np.clip(1.0 - params.delta2 / r**2 + (params.qbroad * r) ** 2, 0.0, None)
    return np.sqrt(2.0 * params.uiso * corr)


def band_pass_matrix(
    r_out: np.ndarray, r_in: np.ndarray, step: float, qmin: float, qmax: float
) -> np.ndarray:
    """Kernel K with G_out = K @ G_in: the sine-transform band-pass [qmin, qmax] of an odd
    function sampled at r_in (uniform spacing ``step``) evaluated at r_out."""
    minus = r_out[:, None] - r_in[None, :]
    plus = r_out[:, None] + r_in[None, :]

    def sinc_term(q: float, x: np.ndarray) -> np.ndarray:
        # sin(q x)/x with the x -> 0 limit q
        return q * np.sinc(q * x / np.pi)

    k = sinc_term(qmax, minus) - sinc_term(qmax, plus)
    if qmin > 0:
        k -= sinc_term(qmin, minus) - sinc_term(qmin, plus)
    return k * (step / np.pi)


@dataclass(frozen=True)
class PdfOperator:
    """The cached linear map from a pair histogram to G(r) on ``params.r_grid()``."""

    params: PdfParams
    rcut: float
    step: float
    peaks: np.ndarray  # (npoints, nbins): histogram -> peak part of G (before 1/(N<b>²))
    baseline: np.ndarray  # (npoints,): filtered and damped -r, times 4πρ0 gives the baseline

    def apply(self, hist: np.ndarray, n_atoms: int, mean_b: float, rho0: float) -> np.ndarray:
        return (self.peaks @ hist) / (n_atoms * mean_b**2) - 4.0 * math.pi * rho0 * self.baseline


@functools.lru_cache(maxsize=64)
def pdf_operator(params: PdfParams, step: float = FINE_STEP) -> PdfOperator:
    """Build (once per PdfParams) the histogram -> G(r) operator of the fast engine."""
    rcut = params.rmax + R_EXTENSION
    nbins = int(math.ceil(rcut / step)) + 2
    r_bin = step * np.arange(nbins)
    r_fine = r_bin.copy()  # G0 is sampled on the same fine grid
    r_fine[0] = step * 1e-3  # avoid 1/0; G0(0) = 0 anyway
    env = np.exp(-0.5 * (params.qdamp * r_fine) ** 2)
    # Gaussian broadening: column b is the normalised Gaussian of a pair at r_bin[b]
    sigma = peak_sigma(np.maximum(r_bin, step), params)
    half = int(math.ceil(6.0 * sigma.max() / step)) + 1
    rows, cols, vals = [], [], []
    offsets = np.arange(-half, half + 1)
    for b in range(1, nbins):
        idx = b + offsets
        ok = (idx >= 0) & (idx < nbins)
        idx = idx[ok]
        g = np.exp(-0.5 * ((r_fine[idx] - r_bin[b]) / sigma[b]) ** 2) / (
            math.sqrt(2 * math.pi) * sigma[b]
        )
        rows.append(idx)
        cols.append(np.full(idx.size, b))
        vals.append(g)
    from scipy import sparse

    gauss = sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(nbins, nbins)
    )
    r_out = params.r_grid()
    band = band_pass_matrix(r_out, r_fine, step, params.qmin, params.qmax)
    band_env = band * (env / r_fine)[None, :]
    peaks = np.asarray((gauss.T @ band_env.T).T)
    baseline = band @ (env * r_fine)
    return PdfOperator(params=params, rcut=rcut, step=step, peaks=peaks, baseline=baseline)


def apply_qmin_cut(
    r: np.ndarray, g: np.ndarray, qmin: float, qmax: float, step: float = FINE_STEP
) -> np.ndarray:
    """Remove Q < qmin from a curve G(r) that already has its Qmax termination.

    ``g`` is interpolated onto a fine grid from 0 (where G = 0) and Fourier-filtered; used to
    give the reference engine (which has no Qmin) the same cut as the fast engine.
    """
    if qmin <= 0:
        return np.asarray(g, dtype=np.float64).copy()
    r = np.asarray(r, dtype=np.float64)
    fine = np.arange(0.0, r[-1] + step / 2, step)
    g_fine = np.interp(fine, np.concatenate([[0.0], r]), np.concatenate([[0.0], g]))
    low = band_pass_matrix(r, fine, step, 0.0, qmin)
    return g - low @ g_fine


# --------------------------------------------------------------------------- engines


def simulate_fast(structure: Structure, params: PdfParams = PdfParams()) -> np.ndarray:
    """G(r) [Å⁻²] of ``structure`` on ``params.r_grid()`` with the fast engine."""
    cell = cell_arrays(structure, params.radiation)
    return simulate_cell(cell, params)


def simulate_cell(cell: CellArrays, params: PdfParams = PdfParams()) -> np.ndarray:
    """G(r) of already-prepared :class:`CellArrays` (fast engine)."""
    op = pdf_operator(params)
    hist = pair_histogram(cell, op.rcut, op.step)
    return op.apply(hist, len(cell.species), float(np.mean(cell.weights)), cell.number_density)


def simulate_pdffit2(
    structure: Structure, params: PdfParams = PdfParams(), oversample: int = 10
) -> np.ndarray:
    """G(r) [Å⁻²] of ``structure`` on ``params.r_grid()`` computed by diffpy.pdffit2.

    Every atom gets Uiso = ``params.uiso``; the cell is Niggli-reduced first (pdffit2 misses
    neighbours in very oblique cells).  pdffit2 has no Qmin: with ``params.qmin > 0`` it
    computes up to rmax + R_EXTENSION and the cut is applied by :func:`apply_qmin_cut`.
    """
    try:
        from diffpy.pdffit2 import PdfFit, redirect_stdout
        from diffpy.structure import Atom, Lattice
        from diffpy.structure import Structure as DiffpyStructure
    except ImportError as exc:  # pragma: no cover
        raise ParamsError(
            "engine 'pdffit2' needs diffpy.pdffit2 (pip install diffpy.pdffit2)"
        ) from exc
    cell = cell_arrays(structure, params.radiation)
    lat = Lattice(base=cell.lattice)
    ds = DiffpyStructure(lattice=lat)
    frac = np.linalg.solve(cell.lattice.T, cell.cart.T).T
    for sym, xyz in zip(cell.species, frac, strict=True):
        ds.append(Atom(sym, xyz, Uisoequiv=params.uiso))
    # pdffit2 samples the un-terminated peaks on its own output grid before convolving with
    # the Qmax sinc: on the coarse π/Qmax grid that aliases (errors of ~1.5 % of max|G|), and
    # the convolution has an edge artifact at its first point.  So it is run on a grid
    # `oversample` times finer that starts near r = 0, and the output points are picked
    # from it (they are exact members of the fine grid).
    oversample = max(1, oversample)
    h = params.rstep / oversample
    first = params.rmin - h * math.floor((params.rmin - h) / h + 1e-9)
    r_end = params.rmax + (R_EXTENSION if params.qmin > 0 else 0.0)
    n_calc = int(math.floor((r_end - first) / h + 1e-9)) + 1
    offset = int(round((params.rmin - first) / h))
    kind = "X" if params.radiation == "xray" else "N"
    with open(os.devnull, "w") as devnull:
        redirect_stdout(devnull)
        try:
            pf = PdfFit()
            pf.add_structure(ds)
            pf.alloc(kind, params.qmax, params.qdamp, first, first + h * (n_calc - 1), n_calc)
            pf.setvar("qbroad", params.qbroad)
            pf.setvar("delta2", params.delta2)
            pf.calc()
            g = np.array(pf.getpdf_fit(), dtype=np.float64)
            r_calc = np.array(pf.getR(), dtype=np.float64)
        finally:
            redirect_stdout(sys.stdout)
    if params.qmin > 0:
        g = apply_qmin_cut(r_calc, g, params.qmin, params.qmax)
    return g[offset : offset + oversample * params.npoints : oversample]


def simulate(
    structure: Structure, params: PdfParams = PdfParams(), engine: str = "fast"
) -> np.ndarray:
    """G(r) [Å⁻²] of ``structure`` on ``params.r_grid()``.

    Parameters
    ----------
    structure : pymatgen Structure, fully ordered
    params : PdfParams, defaults to the paper's Table 2 settings
    engine : ``"fast"`` (ours) or ``"pdffit2"`` (reference)
    """
    if engine == "fast":
        return simulate_fast(structure, params)
    if engine == "pdffit2":
        return simulate_pdffit2(structure, params)
    raise ParamsError(f"unknown engine {engine!r}; choose one of {ENGINES}")


def simulate_many(
    structures: Iterable[Structure],
    params: PdfParams = PdfParams(),
    engine: str = "fast",
    device: str | None = None,
) -> np.ndarray:
    """G(r) of several structures, shape (n, params.npoints).

    ``device`` (fast engine only): None uses the compiled CPU kernel; ``"cuda"``,
    ``"cuda:1"`` or ``"cpu"`` use the torch path on that device.
    """
    structures = list(structures)
    if engine == "fast" and device is not None:
        cells = [cell_arrays(s, params.radiation) for s in structures]
        return simulate_cells_torch(cells, params, device)
    rows = [simulate(s, params, engine) for s in structures]
    if not rows:
        return np.zeros((0, params.npoints))
    return np.vstack(rows)


__all__: Sequence[str] = (
    "ENGINES",
    "CellArrays",
    "PdfOperator",
    "apply_qmin_cut",
    "cell_arrays",
    "pair_histogram",
    "pdf_operator",
    "simulate",
    "simulate_cell",
    "simulate_cells_torch",
    "simulate_fast",
    "simulate_many",
    "simulate_pdffit2",
)
