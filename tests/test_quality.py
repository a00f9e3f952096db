"""Signal checks: noise without structure is told from a PDF by its power above Qmax."""

from __future__ import annotations

import numpy as np
from pymatgen.core import Lattice, Structure

from pdfsg import pdf
from pdfsg.params import PdfParams
from pdfsg.quality import noise_warning, out_of_band_fraction


def _nacl_measured_like(qmax: float = 25.0):
    s = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    p = PdfParams(rmin=0.01, rmax=30.0, rstep=0.01, qmin=0.8, qmax=qmax, qdamp=0.03)
    return p.r_grid(), pdf.simulate(s, p)


def test_a_pdf_has_no_power_above_its_qmax_and_white_noise_has_most():
    r, g = _nacl_measured_like()
    assert out_of_band_fraction(r, g, 25.0) < 1e-3
    assert noise_warning(r, g, 25.0, "nacl.gr") is None
    rng = np.random.default_rng(0)
    noise = rng.normal(size=r.size)
    assert out_of_band_fraction(r, noise, 25.0) > 0.85
    w = noise_warning(r, noise, 25.0, "noise.gr")
    assert w.startswith("noise.gr: ") and "mostly noise" in w
    noisy = g + 0.6 * np.std(g) * rng.normal(size=r.size)  # a weak sample: noisy, not noise
    w = noise_warning(r, noisy, 25.0, "weak.gr")
    assert w is not None and "noisy" in w and "mostly" not in w


def test_a_curve_on_its_nyquist_grid_cannot_be_checked():
    r = np.pi / 23 * np.arange(11, 220)
    assert out_of_band_fraction(r, np.random.default_rng(1).normal(size=r.size), 23.0) is None


def test_the_predictor_warns_on_noise(tmp_path):
    from pdfsg.predict import Predictor

    r = np.arange(1, 3001) * 0.01
    res = Predictor.load().predict(r, np.random.default_rng(2).normal(size=r.size), source="x")
    assert any("mostly noise" in w for w in res.warnings)
    r, g = _nacl_measured_like()
    res = Predictor.load().predict(r, g, qmax=25.0, source="nacl")
    assert not any("noise" in w for w in res.warnings)
