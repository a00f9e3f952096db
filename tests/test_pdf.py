"""The fast engine against the reference (diffpy.pdffit2), physics checks, and bad input."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from pdfsg import pdf
from pdfsg.errors import ParamsError, StructureError
from pdfsg.params import PdfParams

FIXTURES = Path(__file__).parent / "data" / "pdf"
FIXTURE_IDS = sorted(p.stem for p in FIXTURES.glob("*.cif"))


def _load(mid: str) -> Structure:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Structure.from_file(FIXTURES / f"{mid}.cif")


def nickel() -> Structure:
    return Structure(
        Lattice.cubic(3.524),
        ["Ni"] * 4,
        [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
    )


def test_paper_grid():
    r = PdfParams().r_grid()
    assert len(r) == 209
    assert r[0] == pytest.approx(1.5)
    assert r[-1] == pytest.approx(29.91, abs=0.005)
    assert np.allclose(np.diff(r), math.pi / 23)


@pytest.mark.parametrize("mid", FIXTURE_IDS)
def test_fast_engine_matches_stored_pdffit2_curve(mid):
    """Stored pdffit2 curves (Qmin = 0), one structure per crystal system."""
    ref = np.loadtxt(FIXTURES / f"{mid}.gr")
    g = pdf.simulate(_load(mid), PdfParams(qmin=0.0), engine="fast")
    assert np.allclose(ref[:, 0], PdfParams().r_grid(), atol=1e-5)
    assert np.corrcoef(g, ref[:, 1])[0, 1] >= 0.999
    assert np.max(np.abs(g - ref[:, 1])) <= 0.02 * np.max(np.abs(ref[:, 1]))


def test_fast_engine_matches_live_pdffit2_neutron_and_other_settings():
    params = PdfParams(
        qmin=0.0, qmax=18.0, qdamp=0.06, qbroad=0.02, uiso=0.015, radiation="neutron"
    )
    s = _load(FIXTURE_IDS[0])
    fast = pdf.simulate(s, params, engine="fast")
    ref = pdf.simulate(s, params, engine="pdffit2")
    assert np.corrcoef(fast, ref)[0, 1] >= 0.999
    assert np.max(np.abs(fast - ref)) <= 0.02 * np.max(np.abs(ref))


def test_qmin_cut_equals_direct_fourier_filter():
    """The fast engine's Qmin cut vs a direct Fourier filter of the Qmin = 0 curve."""
    s = nickel()
    params = PdfParams()
    fine = params.replace(rmin=0.01, rstep=0.01, rmax=params.rmax + pdf.R_EXTENSION, qmin=0.0)
    g0_fine = pdf.simulate(s, fine)
    g_cut = pdf.apply_qmin_cut(fine.r_grid(), g0_fine, params.qmin, params.qmax)
    expected = np.interp(params.r_grid(), fine.r_grid(), g_cut)
    got = pdf.simulate(s, params)
    assert np.corrcoef(got, expected)[0, 1] >= 0.9999
    assert np.max(np.abs(got - expected)) <= 0.01 * np.max(np.abs(expected))
    # and the cut really changes the curve (by a smooth, small amount)
    g0 = pdf.simulate(s, params.replace(qmin=0.0))
    assert 0.001 < np.max(np.abs(got - g0)) / np.max(np.abs(g0)) < 0.05


def test_nickel_first_peak_position_and_density_slope():
    s = nickel()
    params = PdfParams(qmin=0.0, qmax=40.0, rstep=0.01, rmin=0.5, rmax=10.0)
    g = pdf.simulate(s, params)
    r = params.r_grid()
    assert r[np.argmax(g[r < 3.0])] == pytest.approx(3.524 / math.sqrt(2), abs=0.02)
    # below the first neighbour G(r) = -4 pi rho0 r
    rho0 = 4 / 3.524**3
    low = (r > 0.8) & (r < 1.6)
    slope = np.polyfit(r[low], g[low], 1)[0]
    assert slope == pytest.approx(-4 * math.pi * rho0, rel=0.05)


def test_oblique_cell_gives_the_same_pdf_as_its_reduced_cell():
    s = _load(FIXTURE_IDS[0])
    # the same lattice points in a skewed basis (unimodular change of basis)
    m = np.array([[1, 3, 2], [0, 1, 2], [0, 0, 1]])
    skewed_lattice = Lattice(m @ s.lattice.matrix)
    oblique = Structure(skewed_lattice, s.species, s.cart_coords, coords_are_cartesian=True)
    a = pdf.simulate(s, PdfParams())
    b = pdf.simulate(oblique, PdfParams())
    assert np.allclose(a, b, atol=1e-8)


def test_numba_and_numpy_histograms_agree(monkeypatch):
    cell = pdf.cell_arrays(_load(FIXTURE_IDS[1]))
    a = pdf.pair_histogram(cell, 12.0)
    monkeypatch.setenv("PDFSG_NO_NUMBA", "1")
    b = pdf.pair_histogram(cell, 12.0)
    assert np.allclose(a, b, rtol=1e-10, atol=1e-8)


def test_many_returns_rows():
    g = pdf.simulate_many([nickel(), nickel()], PdfParams())
    assert g.shape == (2, 209)
    assert np.allclose(g[0], g[1])


def test_partial_occupancy_is_rejected():
    s = Structure(Lattice.cubic(4.0), [{"Na": 0.5, "K": 0.5}, "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.raises(StructureError, match="partial occupanc"):
        pdf.simulate(s)


def test_unknown_engine():
    with pytest.raises(ParamsError, match="unknown engine 'foo'"):
        pdf.simulate(nickel(), engine="foo")


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"rstep": 0.0}, "rstep"),
        ({"rstep": -0.1}, "rstep"),
        ({"qmax": 0.3, "qmin": 0.5}, "qmin"),
        ({"rmax": 1.0}, "rmax"),
        ({"uiso": -0.01}, "uiso"),
        ({"radiation": "electron"}, "radiation"),
        ({"qdamp": float("nan")}, "qdamp"),
    ],
)
def test_nonsense_params_name_the_field(changes, field):
    with pytest.raises(ParamsError, match=field) as info:
        PdfParams(**changes)
    assert "\n" not in str(info.value)


def test_torch_path_matches_compiled_kernel():
    """The GPU path (run here on the CPU) gives the same curves as the numba kernel."""
    structures = [_load(mid) for mid in FIXTURE_IDS[:3]] + [nickel()]
    params = PdfParams()
    expected = pdf.simulate_many(structures, params)
    got = pdf.simulate_many(structures, params, device="cpu")
    assert got.shape == expected.shape == (4, 209)
    assert np.allclose(got, expected, rtol=1e-9, atol=1e-9)
