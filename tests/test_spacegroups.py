from __future__ import annotations

import importlib.util
import itertools
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pdfsg import spacegroups as sg
from pdfsg.errors import ParamsError, PdfsgError

ROOT = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------- the table


def test_table_has_230_groups_in_order():
    groups = sg.all_groups()
    assert [g.number for g in groups] == list(sg.ALL_230) == list(range(1, 231))
    assert len({g.symbol for g in groups}) == 230


@pytest.mark.parametrize(
    ("number", "symbol", "system", "point_group", "order"),
    [
        (1, "P1", "triclinic", "1", 1),
        (2, "P-1", "triclinic", "-1", 2),
        (14, "P2_1/c", "monoclinic", "2/m", 4),
        (19, "P2_12_12_1", "orthorhombic", "222", 4),
        (62, "Pnma", "orthorhombic", "mmm", 8),
        (64, "Cmce", "orthorhombic", "mmm", 16),
        (139, "I4/mmm", "tetragonal", "4/mmm", 32),
        (166, "R-3m", "trigonal", "-3m", 36),  # hexagonal axes: 12 operations x 3 centrings
        (186, "P6_3mc", "hexagonal", "6mm", 12),
        (225, "Fm-3m", "cubic", "m-3m", 192),
        (230, "Ia-3d", "cubic", "m-3m", 96),
    ],
)
def test_known_rows(number, symbol, system, point_group, order):
    assert sg.get(number) == sg.SpaceGroup(number, symbol, system, point_group, order)


def test_crystal_system_sizes():
    sizes = {c: sum(g.crystal_system == c for g in sg.all_groups()) for c in sg.CRYSTAL_SYSTEMS}
    assert list(sizes.values()) == [2, 13, 59, 68, 25, 27, 36]


POINT_GROUP_ORDER = {
    "1": 1, "-1": 2, "2": 2, "m": 2, "2/m": 4, "222": 4, "mm2": 4, "mmm": 8,
    "4": 4, "-4": 4, "4/m": 8, "422": 8, "4mm": 8, "-42m": 8, "4/mmm": 16,
    "3": 3, "-3": 6, "32": 6, "3m": 6, "-3m": 12,
    "6": 6, "-6": 6, "6/m": 12, "622": 12, "6mm": 12, "-6m2": 12, "6/mmm": 24,
    "23": 12, "m-3": 24, "432": 24, "-43m": 24, "m-3m": 48,
}  # fmt: skip
CENTRINGS = {"P": 1, "A": 2, "B": 2, "C": 2, "I": 2, "R": 3, "F": 4}


def test_order_is_point_group_order_times_centring():
    for g in sg.all_groups():
        assert g.order == POINT_GROUP_ORDER[g.point_group] * CENTRINGS[g.symbol[0]], g


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # spglib's OLD_ERROR_HANDLING
def test_table_matches_spglib():
    spglib = pytest.importorskip("spglib")
    seen: set[int] = set()
    for hall in range(1, 531):
        t = spglib.get_spacegroup_type(hall)
        if t.number in seen:
            continue
        seen.add(t.number)
        g = sg.get(t.number)
        assert (g.symbol, g.point_group) == (t.international_short, t.pointgroup_international)
        assert g.order == len(spglib.get_symmetry_from_database(hall)["rotations"])
    assert len(seen) == 230


def test_loading_needs_neither_spglib_nor_pyxtal_nor_the_cwd(tmp_path):
    code = (
        "import sys, pdfsg.spacegroups as s;"
        "assert s.get('Fm-3m').order == 192 and s.is_subgroup(1, 2);"
        "assert not {'spglib', 'pyxtal'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True)


def test_import_is_cheap():
    # the JSON is read on first use, not at import
    code = "import pdfsg.spacegroups as s; assert s._table.cache_info().currsize == 0"
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- lookup


@pytest.mark.parametrize(
    ("query", "number"),
    [
        (225, 225),
        ("225", 225),
        (" 225 ", 225),
        ("Fm-3m", 225),
        ("F m -3 m", 225),
        ("Fm3m", 225),
        ("fm-3m", 225),
        ("F 4/m -3 2/m", 225),
        ("Fm\u22123m", 225),
        ("P21/c", 14),
        ("P2_1/c", 14),
        ("P 1 2_1/c 1", 14),
        ("P2_1/n", 14),
        ("P21/a", 14),
        ("P2_12_12_1", 19),
        ("P212121", 19),
        ("Pbnm", 62),
        ("Cmca", 64),  # pre-2002 symbol of Cmce
        ("Fd-3m:2", 227),
        ("R-3m:H", 166),
        ("Ia3d", 230),
        ("Pa3", 205),
        ("P1", 1),
        ("P-1", 2),
        ("P3", 143),
        ("P-3", 147),
        ("P31m", 157),
        ("P-31m", 162),
        ("Pnmm", 59),  # a setting of Pmmn; the paper's "Pnmm (58)" is a misprint of Pnnm
    ],
)
def test_get_accepts(query, number):
    assert sg.get(query).number == number
    assert sg.get(sg.get(query)) is sg.get(number)


@pytest.mark.parametrize("query", [0, 231, -1, "0", "231", "Xyz", "", "P7", True, 2.5, None])
def test_get_rejects_unknown(query):
    with pytest.raises(ParamsError) as info:
        sg.get(query)
    assert isinstance(info.value, ValueError) and isinstance(info.value, PdfsgError)
    assert "\n" not in str(info.value)


def test_str():
    assert str(sg.get(14)) == "P2_1/c (14)"


# ---------------------------------------------------------------- label sets

PAPER_TABLE_1 = (
    "2 4 9 11 12 13 14 15 19 33 36 47 55 58 60 61 62 63 64 65 71 87 88 122 123 129 136 "
    "139 140 141 148 160 164 166 167 176 186 191 194 205 216 221 225 227 230"
)


def test_paper_45():
    assert sg.PAPER_45 == tuple(int(n) for n in PAPER_TABLE_1.split())
    assert tuple(sg.PAPER_45_COUNTS) == sg.PAPER_45
    assert sg.PAPER_45_COUNTS[14] == 7392 and sg.PAPER_45_COUNTS[122] == 373
    # The column sums to 81,440 = 80 % of the 101,802 structures printed as its "total".
    assert sum(sg.PAPER_45_COUNTS.values()) == 81440


def test_paper_45_counts_match_paper_text():
    paper = ROOT.parent / "shared" / "paper" / "000_108797791b071d8b.txt"
    if not paper.is_file():
        pytest.skip("paper text not found")
    rows = re.findall(r"^\$(.+?)\((\d+)\)\$\t(\d+)$", paper.read_text("utf-8"), re.MULTILINE)
    assert {int(n): int(c) for _, n, c in rows} == dict(sg.PAPER_45_COUNTS)


def test_label_set():
    assert sg.label_set("paper45") == sg.PAPER_45
    assert sg.label_set("all230") == sg.ALL_230
    with pytest.raises(ParamsError, match="unknown label set"):
        sg.label_set("paper46")


def test_colors():
    colors = sg.crystal_system_colors()
    assert tuple(colors) == sg.CRYSTAL_SYSTEMS
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in colors.values())
    assert len(set(colors.values())) == 7
    colors["cubic"] = "#000000"  # a copy: the caller cannot change the module's colours
    assert sg.crystal_system_colors()["cubic"] == "#8b0000"


# ---------------------------------------------------------------- subgroups


def test_paper_section_4_statements():
    # "the major confusion groups (P2_1/c, C2/c and P2/c) are in fact minimal non-isomorphic
    # supergroups of P-1"
    for sup in ("P2_1/c", "C2/c", "P2/c"):
        assert sg.is_maximal_subgroup("P-1", sup)
        assert sg.relation("P-1", sup).kind == "maximal subgroup"
        assert sg.relation(sup, "P-1").kind == "maximal supergroup"
    # "P2_12_12_1 shares the same subgroup (P2_1) with P2_1/c"
    assert sg.common_subgroups("P2_12_12_1", "P2_1/c") == {1, 4}
    rel = sg.relation("P2_12_12_1", "P2_1/c")
    assert (rel.kind, rel.shared) == ("common subgroup", 4)
    assert rel.detail == "P2_12_12_1 (19) and P2_1/c (14) share the subgroup P2_1 (4)"
    # "Pbca is a supergroup of P2_12_12_1 while Pbcn is a supergroup of P2_1/c"
    assert sg.is_subgroup("P2_12_12_1", "Pbca")
    assert sg.is_subgroup("P2_1/c", "Pbcn")
    # "P2_1/c is, again, a supergroup of P2_1 and C2/c is a supergroup of P2_1/c"
    assert sg.is_subgroup("P2_1", "P2_1/c")
    assert sg.is_subgroup("P2_1/c", "C2/c")


def test_relation_detail():
    assert sg.relation("P-1", "P2_1/c").detail == (
        "P-1 (2) is a maximal subgroup of P2_1/c (14), index 2"
    )
    assert sg.relation(14, 2).detail == (
        "P2_1/c (14) is a minimal supergroup of P-1 (2) (P-1 is a maximal subgroup of index 2)"
    )
    assert sg.relation(225, "Fm3m").kind == "same"


def test_cubic_relations():
    # zinc blende is a maximal t-subgroup of diamond (not merely a common subgroup)
    assert sg.maximal_subgroups("Fd-3m", "t") == ((141, 3), (166, 4), (203, 2), (210, 2), (216, 2))
    assert sg.relation("Fd-3m", "F-43m").kind == "maximal supergroup"
    # I4/mmm is a maximal t-subgroup of Fm-3m (Bain path), index 3
    assert sg.relation("I4/mmm", "Fm-3m").detail == (
        "I4/mmm (139) is a maximal subgroup of Fm-3m (225), index 3"
    )
    # Fd-3m is a (non-maximal) subgroup of Fm-3m with a doubled cell, via Pn-3m
    assert sg.relation("Fd-3m", "Fm-3m").kind == "subgroup"
    assert not sg.is_maximal_subgroup("Fd-3m", "Fm-3m")


def test_mutual_subgroups_through_larger_cells():
    assert sg.is_subgroup(221, 225) and sg.is_subgroup(225, 221)
    assert sg.is_maximal_subgroup(76, 78) and sg.is_maximal_subgroup(78, 76)  # P4_1, P4_3
    assert "each is a subgroup of the other" in sg.relation(123, 139).detail
    assert "each is a subgroup of the other" not in sg.relation(2, 14).detail


def test_unrelated():
    rel = sg.relation("P2", "P3")
    assert (rel.kind, rel.shared) == ("unrelated", None)
    assert sg.common_subgroups("P2", "P3") == {1}


def test_subgroup_closure_properties():
    for n in sg.ALL_230:
        assert not sg.is_subgroup(n, n) and not sg.is_maximal_subgroup(n, n)
        if n != 1:
            assert sg.is_subgroup(1, n)
        assert not sg.is_subgroup(n, 1)
        for m, _index in sg.maximal_subgroups(n):
            assert m == n or sg.is_subgroup(m, n)
    # the point group of a subgroup is a subgroup of the point group: orders divide
    for a, b in itertools.product(sg.PAPER_45, repeat=2):
        if sg.is_subgroup(a, b):
            pa, pb = (POINT_GROUP_ORDER[sg.get(x).point_group] for x in (a, b))
            assert pb % pa == 0, (a, b)


def test_maximal_subgroups_kinds():
    assert sg.maximal_subgroups(14, "t") == ((2, 2), (4, 2), (7, 2))
    assert {n for n, _ in sg.maximal_subgroups(14, "k")} == {14}  # only isomorphic ones
    assert set(sg.maximal_subgroups(14)) >= set(sg.maximal_subgroups(14, "t"))
    with pytest.raises(ParamsError):
        sg.maximal_subgroups(14, "x")  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_stored_table_is_up_to_date():
    pytest.importorskip("pyxtal")
    path = ROOT / "tools" / "make_spacegroup_table.py"
    spec = importlib.util.spec_from_file_location("make_spacegroup_table", path)
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.main(["--check"]) == 0


def test_bravais_lattices_and_laue_classes_of_all_groups():
    from collections import Counter

    from pdfsg.spacegroups import all_groups, get

    lattices = Counter(g.bravais_lattice for g in all_groups())
    assert len(lattices) == 14
    assert lattices["aP"] == 2 and lattices["hR"] == 7 and lattices["cF"] == 11
    assert lattices["tI"] == 19 and lattices["mC"] == 5 and lattices["oF"] == 5
    laue = Counter(g.laue_class for g in all_groups())
    assert len(laue) == 11
    assert laue["m-3m"] == 24 and laue["-1"] == 2
    assert (get(38).bravais_lattice, get(186).bravais_lattice) == ("oC", "hP")
    assert (get(227).laue_class, get(160).laue_class, get(14).laue_class) == (
        "m-3m",
        "-3m",
        "2/m",
    )
