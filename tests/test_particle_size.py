"""The particle-diameter estimate (pdfsg.particle_size) on curves simulated here: a Ni-like
fcc crystal (the shipped PDF engine, the datasets' π/23 grid, Qmax 23, Qdamp 0.04) as bulk
and as spheres, and its place in predict's answer."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from pdfsg import pdf
from pdfsg.io import write_gr
from pdfsg.params import PdfParams
from pdfsg.particle_size import (
    diameters_nm,
    estimate_diameter,
    fit_envelope,
    rms_between,
    simulate_particles,
    window_rms,
)


@pytest.fixture(scope="module")
def bulk_curves():
    """Two fcc metals on the datasets' grid (r 1.5–30 Å, Qmax 23, Qdamp 0.04)."""
    p = PdfParams()
    rows = [
        pdf.simulate(Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), [el], [[0, 0, 0]]), p)
        for a, el in ((3.52, "Ni"), (3.92, "Pt"))
    ]
    return p.r_grid(), np.asarray(rows)


def _particles(r, g, d_nm, qdamp=0.04, qmax=23.0, noise=0.01, seed=0):
    n = g.shape[0]
    rng = np.random.default_rng(seed)
    full = np.full
    return simulate_particles(r, g, full(n, d_nm), full(n, qmax), full(n, qdamp),
                              full(n, noise), rng)  # fmt: skip


@pytest.mark.parametrize("qdamp", [0.025, 0.055])
def test_a_3nm_particle_is_estimated_within_15_percent(bulk_curves, qdamp):
    r, g = bulk_curves
    for row in _particles(r, g, 3.0, qdamp=qdamp, qmax=18.0):
        e = estimate_diameter(r, row)
        assert e is not None and not e.bulk
        assert e.diameter_nm == pytest.approx(3.0, rel=0.15)
        assert e.low_nm < e.diameter_nm < e.high_nm < 10
        assert "a particle of about" in e.text()


def test_a_15A_particle_too(bulk_curves):
    r, g = bulk_curves
    for row in _particles(r, g, 1.5):
        assert estimate_diameter(r, row).diameter_nm == pytest.approx(1.5, rel=0.15)


def test_bulk_is_called_bulk(bulk_curves):
    r, g = bulk_curves
    for qdamp in (0.02, 0.04, 0.06):
        for row in _particles(r, g, math.inf, qdamp=qdamp):
            e = estimate_diameter(r, row)
            assert e is not None and e.bulk and e.diameter_nm is None
            assert math.isinf(e.high_nm)
            assert e.to_dict()["diameter_nm"] is None and e.to_dict()["bulk"] is True


def test_diameters_of_a_batch_are_nan_for_bulk_and_ignore_the_scale(bulk_curves):
    """The card's measurement-like copies are min-max normalised: the estimate is the same."""
    from pdfsg.preprocess import normalize_minmax

    r, g = bulk_curves
    rows = np.vstack([_particles(r, g, 3.0), _particles(r, g, math.inf), np.zeros((1, r.size))])
    d = diameters_nm(r, rows)
    assert d[:2] == pytest.approx([3.0, 3.0], rel=0.15)
    assert np.isnan(d[2:]).all()
    scaled = diameters_nm(r, normalize_minmax(rows[:4]))
    np.testing.assert_allclose(scaled, d[:4], rtol=1e-6)


def test_bad_input_gives_none_not_an_exception(bulk_curves):
    r, g = bulk_curves
    short = r <= 10.0
    assert estimate_diameter(r[short], g[0, short]) is None  # too short an r range
    assert estimate_diameter(r, np.zeros_like(r)) is None  # no signal
    bad = g[0].copy()
    bad[5] = np.nan
    assert estimate_diameter(r, bad) is None
    assert estimate_diameter(r[::-1], g[0]) is None  # not increasing
    assert estimate_diameter(r[5:], g[0]) is None  # length mismatch
    assert estimate_diameter(np.array([]), np.array([])) is None


def test_window_rms_matches_the_plain_formula():
    r = np.linspace(0.0, 30.0, 3001)
    g = np.sin(3 * r) + 0.1 * r
    got = window_rms(r, g, np.array([2.0, 4.0, 40.0]))
    sel = g[(r >= 2.0) & (r < 4.0)]
    assert got[0] == pytest.approx(np.std(sel), rel=1e-9)
    assert np.isnan(got[1])  # beyond the data
    assert rms_between(r, g, 1.5, 8.0) == pytest.approx(
        np.sqrt(np.mean(g[(r >= 1.5) & (r <= 8.0)] ** 2))
    )


def test_envelope_fit_with_known_qdamp(bulk_curves):
    """The fit is the benchmark's alternative: near 5 nm with Qdamp given."""
    r, g = bulk_curves
    for row in _particles(r, g, 5.0, noise=0.0):
        assert fit_envelope(r, row, qdamp=0.04) == pytest.approx(5.0, rel=0.25)


def test_predict_reports_the_diameter(bulk_curves, tmp_path):
    from pdfsg.cli import main
    from pdfsg.predict import Predictor

    r, g = bulk_curves
    nano = _particles(r, g[:1], 2.0, noise=0.0)[0]
    res = Predictor.load().predict(r, nano, composition={"Ni": 1})
    d = res.to_dict()
    assert d["particle_diameter_nm"] == pytest.approx(2.0, rel=0.15)
    assert d["particle_size"]["bulk"] is False
    assert any("a particle of about" in w for w in res.warnings)  # dies out by 30 Å
    path = tmp_path / "bulk.gr"
    write_gr(path, r, g[0], title="Ni", settings={"qmax": 23.0})
    out = tmp_path / "out.json"
    assert main(["predict", str(path), "--format", "json", "--output", str(out)]) == 0
    [entry] = json.loads(out.read_text())
    assert "particle_diameter_nm" in entry and entry["particle_diameter_nm"] is None
    assert entry["particle_size"]["bulk"] is True
