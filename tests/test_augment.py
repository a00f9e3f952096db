"""Measurement-realism effects: each does what it says, on real numbers; bad ranges fail."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from pdfsg import augment, pdf
from pdfsg.errors import ParamsError
from pdfsg.params import PdfParams


@pytest.fixture(scope="module")
def nickel_cell():
    s = Structure.from_spacegroup("Fm-3m", Lattice.cubic(3.524), ["Ni"], [[0, 0, 0]])
    return pdf.cell_arrays(s)


def _first_peak(r, g):
    window = (r > 2.0) & (r < 3.0)
    return r[window][np.argmax(g[window])]


def test_strain_moves_peaks_by_the_strain(nickel_cell):
    p = PdfParams(rstep=0.005, qmax=40.0, qmin=0.0)
    r = p.r_grid()
    g0 = pdf.simulate_cell(nickel_cell, p)
    g1 = pdf.simulate_cell(augment.strain_cell(nickel_cell, 0.03), p)
    assert _first_peak(r, g1) / _first_peak(r, g0) == pytest.approx(1.03, abs=0.004)


def test_particle_envelope_shape():
    r = np.array([0.0, 10.0, 20.0, 30.0])
    env = augment.particle_envelope(r, 20.0)
    assert env[0] == 1.0 and env[2] == 0.0 and env[3] == 0.0
    assert env[1] == pytest.approx(1 - 1.5 * 0.5 + 0.5 * 0.125)
    with pytest.raises(ParamsError, match="diameter"):
        augment.particle_envelope(r, 0.0)


def test_noise_has_the_requested_level():
    g = np.sin(np.linspace(0, 40, 20000)) * 5.0
    noisy = augment.add_noise(g, 0.02, np.random.default_rng(0))
    assert np.std(noisy - g) == pytest.approx(0.02 * 5.0, rel=0.05)
    assert np.array_equal(augment.add_noise(g, 0.0, np.random.default_rng(0)), g)


def test_baseline_slope_is_zero_at_rmin_and_scaled_by_max_g():
    r = np.linspace(1.5, 31.5, 10)
    g = np.zeros(10)
    g[3] = 2.0
    out = augment.add_baseline(g, r, 0.1)
    assert out[0] == 0.0
    assert out[-1] == pytest.approx(0.1 * 2.0)


def test_drawn_params_stay_in_range_and_clip_qmax_to_the_model_grid():
    cfg = augment.AugmentConfig(qmax=(14.0, 35.0), p_neutron=0.5)
    base = PdfParams()
    rng = np.random.default_rng(1)
    drawn = [augment.draw_params(base, cfg, rng) for _ in range(200)]
    assert all(14.0 <= p.qmax <= base.qmax for p in drawn)
    assert any(p.qmax == base.qmax for p in drawn) and any(p.qmax < 20 for p in drawn)
    assert all(cfg.uiso[0] <= p.uiso <= cfg.uiso[1] for p in drawn)
    assert {p.radiation for p in drawn} == {"xray", "neutron"}
    assert all(p.rmin == base.rmin and p.rstep == base.rstep for p in drawn)


def test_augmented_copies_differ_from_the_clean_curve_but_stay_correlated(nickel_cell):
    base = PdfParams()
    cfg = augment.AugmentConfig(copies=6)
    pool = augment.ParamsPool(base, cfg, seed=0)
    clean = pdf.simulate_cell(nickel_cell, base)
    neutron = pdf.cell_arrays(
        Structure.from_spacegroup("Fm-3m", Lattice.cubic(3.524), ["Ni"], [[0, 0, 0]]), "neutron"
    )
    copies = list(
        augment.augmented_pdfs(nickel_cell, neutron, base, cfg, np.random.default_rng(3), pool)
    )
    assert len(copies) == 6
    for g, meta in copies:
        assert g.shape == clean.shape and np.all(np.isfinite(g))
        assert not np.allclose(g, clean)
        assert -0.5 < np.corrcoef(g, clean)[0, 1] <= 1.0
        assert meta["radiation"] in ("xray", "neutron") and math.isfinite(meta["strain"])


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"qmax": (30.0, 14.0)}, "qmax"),
        ({"uiso": (-0.01, 0.02)}, "uiso"),
        ({"strain": (0.05, -0.05)}, "strain"),
        ({"particle_diameter": (50.0, 10.0)}, "particle_diameter"),
        ({"noise": (0.0, float("nan"))}, "noise"),
        ({"p_neutron": 1.5}, "p_neutron"),
        ({"copies": -1}, "copies"),
    ],
)
def test_bad_ranges_are_one_line_errors(kwargs, word):
    with pytest.raises(ParamsError, match=word) as info:
        augment.AugmentConfig(**kwargs)
    assert "\n" not in str(info.value)


def test_lower_qmax_on_the_grid_matches_a_simulation_at_that_qmax(nickel_cell):
    base = PdfParams(qmin=0.0)
    r = base.r_grid()
    g23 = pdf.simulate_cell(nickel_cell, base)
    g16 = pdf.simulate_cell(nickel_cell, base.replace(qmax=16.0))
    filtered = augment.lower_qmax(g23, r, 16.0)[0]
    assert np.corrcoef(filtered, g16)[0, 1] > 0.99
    assert np.corrcoef(g23, g16)[0, 1] < np.corrcoef(filtered, g16)[0, 1]


def test_on_the_fly_augment_plugs_into_training_batches(nickel_cell):
    base = PdfParams()
    g = pdf.simulate_cell(nickel_cell, base)
    fn = augment.on_the_fly(augment.AugmentConfig(strain=(0.0, 0.0)), base)
    batch = np.vstack([g, g, g])
    a = fn(batch, np.random.default_rng(0))
    b = fn(batch, np.random.default_rng(0))
    assert a.shape == batch.shape and np.array_equal(a, b)  # reproducible from the rng
    assert not np.allclose(a[0], a[1])  # each row gets its own draw
    assert all(np.corrcoef(row, g)[0, 1] > 0.5 for row in a)


def test_on_the_fly_share_leaves_the_other_rows_clean(nickel_cell):
    base = PdfParams()
    g = pdf.simulate_cell(nickel_cell, base)
    fn = augment.on_the_fly(augment.AugmentConfig(), base, share=0.3)
    batch = np.vstack([g] * 400)
    out = fn(batch, np.random.default_rng(1))
    changed = ~np.all(out == batch, axis=1)
    assert 0.22 < changed.mean() < 0.38  # about 30 % of the rows get effects
    assert np.array_equal(out[~changed], batch[~changed])  # the others are untouched
    assert fn.description["share_of_rows"] == 0.3
    assert fn.description["config"]["qmax"] == [14.0, 35.0]
    with pytest.raises(ParamsError, match="share must be in"):
        augment.on_the_fly(augment.AugmentConfig(), base, share=0.0)


def test_strain_on_the_curve_matches_a_strained_cell(nickel_cell):
    base = PdfParams()
    r = base.r_grid()
    g = pdf.simulate_cell(nickel_cell, base)
    expected = pdf.simulate_cell(augment.strain_cell(nickel_cell, 0.02), base)
    got = augment.strain_curve(g, r, 0.02)
    assert np.corrcoef(got, expected)[0, 1] > 0.95
    assert np.corrcoef(g, expected)[0, 1] < 0.5
