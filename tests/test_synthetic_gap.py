"""benchmarks/synthetic_gap.py: a real structure with its free coordinates redrawn."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import load_benchmark


@pytest.fixture(scope="module")
def gap():
    return load_benchmark("synthetic_gap")


@pytest.fixture(scope="module")
def rutile():
    from pymatgen.core import Lattice, Structure

    return Structure.from_spacegroup(
        136, Lattice.tetragonal(4.594, 2.959), ["Ti", "O"], [[0, 0, 0], [0.305, 0.305, 0]]
    )


def _oxygen_x(structure) -> float:
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    conv = SpacegroupAnalyzer(structure, symprec=0.1).get_refined_structure()
    xs = [s.frac_coords for s in conv if s.specie.symbol == "O"]
    return min(float(x[0] % 1) for x in xs if abs(x[0] % 1 - x[1] % 1) < 1e-3)


def test_coords_keeps_cell_sites_and_group_but_redraws_free_coordinates(gap, rutile):
    from pymatgen.core import Structure

    from pdfsg.sources.geometry import space_group_of

    ident, cif = gap._redraw(
        ("mp-2657", rutile.to(fmt="cif"), 136, "coords", {"bond_valence": True})
    )
    assert ident == "mp-2657" and cif is not None
    new = Structure.from_str(cif, fmt="cif")
    assert space_group_of(new, 0.1) == 136
    assert new.composition.reduced_formula == "TiO2"
    assert np.allclose(sorted(new.lattice.abc), sorted(rutile.lattice.abc), atol=1e-6)
    # O on 4f (x, x, 0) with a new x (the distance rules leave x little room)
    assert abs(_oxygen_x(new) - 0.305) > 1e-5
    again = gap._redraw(("mp-2657", rutile.to(fmt="cif"), 136, "coords", {"bond_valence": True}))
    assert again == (ident, cif)  # seeded by the id: the same rung every run


def test_coords_cell_draws_a_new_cell(gap, rutile):
    from pymatgen.core import Structure

    _, cif = gap._redraw(
        ("mp-2657", rutile.to(fmt="cif"), 136, "coords_cell", {"bond_valence": True})
    )
    assert cif is not None
    new = Structure.from_str(cif, fmt="cif")
    assert not np.allclose(new.lattice.abc, rutile.lattice.abc, atol=1e-3)
    assert abs(new.lattice.alpha - 90) < 1e-6 and abs(new.lattice.gamma - 90) < 1e-6


def test_wrong_label_is_refused(gap, rutile):
    assert gap._redraw(
        ("mp-2657", rutile.to(fmt="cif"), 225, "coords", {"bond_valence": True})
    ) == ("mp-2657", None)


def test_types_keeps_the_structure_type_and_draws_elements_and_volume(gap, rutile):
    from pymatgen.core import Structure

    from pdfsg.sources.geometry import space_group_of

    _, cif = gap._redraw(("mp-2657", rutile.to(fmt="cif"), 136, "types", {"bond_valence": False}))
    new = Structure.from_str(cif, fmt="cif")
    assert space_group_of(new, 0.1) == 136
    assert new.composition.reduced_formula != "TiO2"
    assert new.composition.anonymized_formula == "AB2"  # one cation site, the 4f anion site
    ratio = new.lattice.c / new.lattice.a
    assert ratio == pytest.approx(rutile.lattice.c / rutile.lattice.a, rel=1e-6)  # shape kept
    # with a family, the elements are the family's
    _, cif = gap._redraw(
        (
            "mp-2657",
            rutile.to(fmt="cif"),
            136,
            "types_family",
            {"bond_valence": False},
            [("Sn", "O")],
        )
    )
    assert Structure.from_str(cif, fmt="cif").composition.reduced_formula == "SnO2"


def test_volume_rungs_scale_only_the_cell(gap, rutile):
    from pymatgen.core import Structure

    from pdfsg.sources.bond_valence import bond_valence_scale, ionic_model

    lam = bond_valence_scale(rutile, ionic_model({"Ti": 2, "O": 4}))
    for mode in ("volume", "volume_bv"):
        _, cif = gap._redraw(("mp-2657", rutile.to(fmt="cif"), 136, mode, {"bond_valence": False}))
        new = Structure.from_str(cif, fmt="cif")
        assert new.lattice.c / new.lattice.a == pytest.approx(rutile.lattice.c / rutile.lattice.a)
        assert len(new) == len(rutile)
        if mode == "volume_bv":
            assert new.lattice.a == pytest.approx(rutile.lattice.a * lam, rel=1e-6)
    assert 0.95 < lam < 1.05  # rutile's real cell is near the bond-valence optimum
