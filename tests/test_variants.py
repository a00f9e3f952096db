"""The variants:K:SOURCE structure source and the split by parent."""

from __future__ import annotations

import csv
import gzip

import numpy as np
import pytest

from pdfsg.datasets import build_dataset, parent_split, read_dataset, stratified_split
from pdfsg.errors import ParamsError
from pdfsg.sources.variants import (
    element_roles,
    make_variant,
    parent_id,
    parse_spec,
    substitution_table,
    variant_records,
)
from pdfsg.structures import label_space_group


def _cif(structure) -> str:
    return structure.to(fmt="cif")


@pytest.fixture(scope="module")
def parents():
    from pymatgen.core import Lattice, Structure

    nacl = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5] * 3]
    )
    rutile = Structure.from_spacegroup(
        "P4_2/mnm", Lattice.tetragonal(4.59, 2.96), ["Ti", "O"], [[0, 0, 0], [0.305, 0.305, 0]]
    )
    wurtzite = Structure.from_spacegroup(
        "P6_3mc",
        Lattice.hexagonal(3.25, 5.21),
        ["Zn", "O"],
        [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.382]],
    )
    return {"mp-nacl": nacl, "mp-rutile": rutile, "mp-wurtzite": wurtzite}


@pytest.fixture(scope="module")
def csv_source(parents, tmp_path_factory):
    path = tmp_path_factory.mktemp("variants") / "parents.csv.gz"
    with gzip.open(path, "wt", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["material_id", "cif"])
        for ident, s in parents.items():
            w.writerow([ident, _cif(s)])
    return path


def test_substitution_table_keeps_cations_and_anions_apart():
    table = substitution_table()
    names, p = table[("Na", 1)]
    assert "K" in names[:3] and abs(p.sum() - 1) < 1e-12
    anions, _ = table[("O", -1)]
    assert set(anions[:4]) <= {"F", "S", "Cl", "Se", "N"}
    assert "Na" not in anions and "O" not in table[("Na", 1)][0]


def test_element_roles():
    assert element_roles(["O", "Si"]) == {"O": -1, "Si": 1}
    assert element_roles(["C", "S"]) == {"C": 1, "S": -1}  # S is the more electronegative
    assert element_roles(["Al", "Ni"]) == {"Al": 1, "Ni": 1}


@pytest.mark.parametrize("ident", ["mp-nacl", "mp-rutile", "mp-wurtzite"])
def test_variants_keep_the_group_and_change_the_chemistry(parents, ident):
    parent = parents[ident]
    group = label_space_group(parent)
    cif = _cif(parent)
    formulas = set()
    for k in range(6):
        v = make_variant(ident, cif, k, 0)
        assert v is not None
        assert label_space_group(v) == group
        assert v.composition.reduced_formula != parent.composition.reduced_formula
        assert len({site.specie.symbol for site in v}) == len(parent.composition)
        # the cell follows the new elements' sizes: nearest neighbours within a sane range
        d = v.distance_matrix[np.triu_indices(len(v), 1)] if len(v) > 1 else np.array([])
        assert d.size == 0 or d.min() > 1.2
        formulas.add(v.composition.reduced_formula)
    assert len(formulas) >= 3
    again = make_variant(ident, cif, 2, 0)
    first = make_variant(ident, cif, 2, 0)
    assert np.allclose(again.lattice.matrix, first.lattice.matrix)
    assert make_variant(ident, cif, 2, 1).composition != first.composition or not np.allclose(
        make_variant(ident, cif, 2, 1).lattice.matrix, first.lattice.matrix
    )


def test_rutile_variant_strains_only_c_over_a(parents):
    v = make_variant("mp-rutile", _cif(parents["mp-rutile"]), 0, 0)
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    conv = SpacegroupAnalyzer(v, symprec=0.1).get_conventional_standard_structure()
    a, b, c = conv.lattice.abc
    assert a == pytest.approx(b, rel=1e-6) and c / a != pytest.approx(2.96 / 4.59, rel=1e-4)
    assert conv.lattice.angles == pytest.approx((90, 90, 90), abs=1e-6)


@pytest.mark.parametrize(
    "spec",
    ["x:parents.csv", "3", "0:parents.csv", "3,foo=1:parents.csv", "3:", "3,first=-1:p.csv"],
)
def test_bad_specs_are_one_line_errors(spec):
    with pytest.raises(ParamsError, match="variants source spec"):
        parse_spec(spec)


def test_records_ids_name_their_parent(csv_source):
    recs = list(variant_records(f"2,seed=5:{csv_source}"))
    assert [r.id for r in recs][:2] == ["mp-nacl~var0", "mp-nacl~var1"]
    assert {parent_id(r.id) for r in recs} == {"mp-nacl", "mp-rutile", "mp-wurtzite"}
    assert parent_id("mp-149") == "mp-149"
    # digests are stable (resumable builds)
    assert [r.digest() for r in recs] == [
        r.digest() for r in variant_records(f"2,seed=5:{csv_source}")
    ]


def test_first_extends_an_earlier_build_without_repeating_a_variant(csv_source):
    """``variants:2`` then ``variants:2,first=2`` are exactly the records of ``variants:4``."""
    four = list(variant_records(f"4,seed=5:{csv_source}"))
    two = list(variant_records(f"2,seed=5:{csv_source}"))
    more = list(variant_records(f"2,seed=5,first=2:{csv_source}"))
    assert sorted(r.id for r in two + more) == sorted(r.id for r in four)
    assert sorted(r.digest() for r in two + more) == sorted(r.digest() for r in four)
    assert more[0].id == "mp-nacl~var2"
    built = {r.id: r.make() for r in four if r.id.endswith(("~var2", "~var3"))}
    for r in more:
        if r.id in built and built[r.id] is not None:
            assert r.make().composition == built[r.id].composition


def test_parent_split_keeps_a_parents_rows_together():
    ids = ["a", "a~var0", "a~var1", "b", "b~var0", "c", "c~var0", "d", "e", "f"]
    y = np.array([1, 1, 1, 1, 1, 1, 1, 1, 1, 1])
    split = parent_split(ids, y, 0.5, seed=0)
    by_parent = {}
    for i, s in zip(ids, split, strict=True):
        by_parent.setdefault(parent_id(i), set()).add(int(s))
    assert all(len(v) == 1 for v in by_parent.values())
    assert 0 < split.sum() < len(ids)
    plain = ["p", "q", "r", "s", "t"]
    yy = np.array([2, 2, 3, 3, 3])
    assert np.array_equal(parent_split(plain, yy, 0.3, 1), stratified_split(yy, 0.3, 1))


def test_build_from_variants_and_train_of(csv_source, tmp_path):
    parents_ds = build_dataset(
        str(csv_source),
        tmp_path / "parents.h5",
        label_set="all230",
        test_fraction=0.0,
        scheduler="synchronous",
    )
    assert parents_ds.n_rows == 3
    summary = build_dataset(
        f"variants:3,train-of={tmp_path / 'parents.h5'}:{csv_source}",
        tmp_path / "variants.h5",
        label_set="all230",
        test_fraction=0.0,
        scheduler="synchronous",
    )
    ds = read_dataset(tmp_path / "variants.h5")
    assert summary.n_read == 9 and len(ds) >= 7  # a few may be dropped as duplicates
    parent_groups = {"mp-nacl": 225, "mp-rutile": 136, "mp-wurtzite": 186}
    for ident, group in zip(ds.ids, ds.y, strict=True):
        assert group == parent_groups[parent_id(str(ident))]


def test_digests_do_not_depend_on_the_process(csv_source):
    """A resumed build in a new process must see the same digests (no memory addresses)."""
    import subprocess
    import sys

    code = (
        "from pdfsg.sources.variants import variant_records;"
        f"print(next(iter(variant_records('1:{csv_source}'))).digest())"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        for _ in range(2)
    }
    assert len(runs) == 1
    assert runs == {next(iter(variant_records(f"1:{csv_source}"))).digest() + "\n"}


def test_a_group_needs_structures_of_its_own_not_variants_of_one():
    from types import SimpleNamespace

    from pdfsg.train import structure_counts

    ids = ["a", "a~var0", "a~var1#aug2", "b", "b#aug1", "c~var0", "t"]
    ds = SimpleNamespace(
        ids=np.array(ids, dtype=object),
        y=np.array([5, 5, 5, 5, 5, 7, 5]),
        split=np.array([0, 0, 0, 0, 0, 0, 1]),
    )
    assert structure_counts(ds) == {5: 2, 7: 1}
