"""The shipped family with the sample's composition: elements and doped / mixed compounds as
users write them (simulated like measurements: fine grid from ~0, Qmax 26, Qdamp 0.03)."""

from __future__ import annotations

import pytest
from pymatgen.core import Lattice, Structure

from pdfsg import pdf
from pdfsg.params import PdfParams
from pdfsg.predict import Predictor


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    p = Predictor.load()
    if not any(getattr(m, "uses_composition", False) for m in p.models):
        pytest.skip("the shipped family does not use composition")
    return p


def _measured_like(structure: Structure):
    p = PdfParams(rmin=0.01, rmax=30.0, rstep=0.01, qmin=0.8, qmax=26.0, qdamp=0.03, uiso=0.005)
    return p.r_grid(), pdf.simulate(structure, p)


STRUCTURES = {
    "NaCl": (
        225,
        lambda: Structure.from_spacegroup(
            "Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
        ),
        "Na0.97K0.03Cl",
    ),
    "CuIr2S4": (
        227,
        lambda: Structure.from_spacegroup(
            "Fd-3m",
            Lattice.cubic(9.85),
            ["Cu", "Ir", "S"],
            [[0, 0, 0], [0.625, 0.625, 0.625], [0.385, 0.385, 0.385]],
        ),
        "CuIr1.76Cr0.24S4",
    ),
    "IrTe2": (
        164,
        lambda: Structure.from_spacegroup(
            "P-3m1", Lattice.hexagonal(3.93, 5.39), ["Ir", "Te"], [[0, 0, 0], [1 / 3, 2 / 3, 0.25]]
        ),
        "Ir0.8Rh0.2Te2",
    ),
}


def _rank(result, sg: int) -> int:
    return [p.space_group for p in result.predictions].index(sg) + 1


@pytest.mark.parametrize("parent", sorted(STRUCTURES))
def test_a_nominal_composition_reads_like_its_parent(predictor, parent):
    sg, build, nominal = STRUCTURES[parent]
    r, g = _measured_like(build())
    exact = predictor.predict(r, g, qmax=26.0, composition=parent, top=0)
    doped = predictor.predict(r, g, qmax=26.0, composition=nominal, top=0)
    assert exact.data_settings["composition_used"] and doped.data_settings["composition_used"]
    assert _rank(exact, sg) <= 3 and _rank(doped, sg) <= 3
    assert doped.predictions[0].space_group == exact.predictions[0].space_group
    p_exact = exact.probabilities[list(exact.labels).index(sg)]
    p_doped = doped.probabilities[list(doped.labels).index(sg)]
    assert abs(p_exact - p_doped) < 0.2


def test_elements_are_not_given_groups_that_need_two_species(predictor):
    si = Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.431), ["Si"], [[0, 0, 0]])
    res = predictor.predict(*_measured_like(si), qmax=26.0, composition="Si", top=0)
    assert _rank(res, 227) <= 2 and res.predictions[0].space_group != 216  # not zinc blende
    ni = Structure.from_spacegroup("Fm-3m", Lattice.cubic(3.524), ["Ni"], [[0, 0, 0]])
    res = predictor.predict(*_measured_like(ni), qmax=26.0, composition="Ni", top=0)
    assert res.predictions[0].space_group == 225
