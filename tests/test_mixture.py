"""The two-phase detector (pdfsg.mixture) and its warning in predict."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pdfsg import mixture
from pdfsg.params import PdfParams

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT / "work" / "mp_paper45.h5"


@pytest.fixture(scope="module")
def elements():
    """G(r) of Si (diamond), Ni (fcc) and NaCl on the model grid; no elemental crystal is in
    the detector's training rows."""
    from pymatgen.core import Lattice, Structure

    from pdfsg import pdf

    p = PdfParams()
    si = Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.431), ["Si"], [[0, 0, 0]])
    ni = Structure.from_spacegroup("Fm-3m", Lattice.cubic(3.524), ["Ni"], [[0, 0, 0]])
    nacl = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    return p.r_grid(), {
        k: pdf.simulate(s, p) for k, s in {"Si": si, "Ni": ni, "NaCl": nacl}.items()
    }


def test_the_shipped_detector_loads_without_pickle():
    det = mixture.MixtureDetector.load()
    n = mixture.detector_grid().size
    assert n == 136 and det.library.shape[1] == n
    assert det.mean.shape == (n + 4,) and 0.5 < det.threshold < 1.0
    assert det.false_alarm_rate == pytest.approx(0.03)


def test_si_plus_ni_is_flagged_and_each_alone_is_not(elements):
    r, g = elements
    det = mixture.MixtureDetector.load()
    for name in ("Si", "Ni", "NaCl"):
        assert mixture.mixture_warning(r, g[name], name) is None
    text = mixture.mixture_warning(r, 0.5 * g["Si"] + 0.5 * g["Ni"], "sini.gr")
    assert text is not None and text.startswith("sini.gr: looks like more than one phase")
    # scale and offset of the file do not matter
    s1 = mixture.mixture_score(r, g["Si"] + g["Ni"], det)
    s2 = mixture.mixture_score(r, 3.0 * (g["Si"] + g["Ni"]) + 1.0, det)
    assert s1 == pytest.approx(s2, abs=1e-6)


def test_a_curve_short_of_20_angstrom_has_no_score(elements):
    r, g = elements
    keep = r < 15.0
    assert mixture.mixture_score(r[keep], g["Si"][keep]) is None
    assert mixture.mixture_warning(r[keep], g["Si"][keep], "x") is None


def test_the_simulation_is_reproducible_and_labels_weights():
    rng = np.random.default_rng(0)
    g = rng.normal(size=(6, 136))
    formula = np.array(list("abcdef"))
    a = list(mixture.simulate(g, formula, 20, np.random.default_rng(1)))
    b = list(mixture.simulate(g, formula, 20, np.random.default_rng(1)))
    assert all(np.array_equal(x[0], y[0]) and x[1] == y[1] for x, y in zip(a, b, strict=True))
    w = np.array([x[1] for x in a])
    assert ((w == 0) | ((w >= 0.05) & (w <= 0.5))).all() and (w > 0).any() and (w == 0).any()


@pytest.mark.skipif(not DATASET.is_file(), reason="work/mp_paper45.h5 not built")
def test_fixed_test_split_rows():
    """Single-phase test rows 0, 1, 2, 5, 6, 8 are not flagged; 50/50 sums of test rows
    (4, 5), (10, 11), (16, 17) are."""
    from pdfsg.datasets import read_dataset

    det = mixture.MixtureDetector.load()
    test = read_dataset(DATASET).test()
    g = test.G[:, : mixture.detector_grid().size].astype(np.float64)
    assert (det.scores(g[[0, 1, 2, 5, 6, 8]]) < det.threshold).all()
    mixed = np.stack([0.5 * g[i] + 0.5 * g[j] for i, j in ((4, 5), (10, 11), (16, 17))])
    assert (det.scores(mixed) >= det.threshold).all()


def test_predict_warns_on_a_mixture_file(elements, tmp_path):
    from pdfsg.predict import Predictor

    r, g = elements
    predictor = Predictor.load()
    path = tmp_path / "sini.gr"
    np.savetxt(path, np.column_stack([r, 0.5 * g["Si"] + 0.5 * g["Ni"]]), header="qmax = 23")
    res = predictor.predict_file(path)
    hits = [w for w in res.warnings if "more than one phase" in w]
    assert len(hits) == 1 and str(path) in hits[0] and "--refine" in hits[0]
    assert res.predictions  # a warning, not a refusal
    np.savetxt(path, np.column_stack([r, g["Si"]]), header="qmax = 23")
    assert not any("more than one phase" in w for w in predictor.predict_file(path).warnings)
