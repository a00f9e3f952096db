from __future__ import annotations

import gzip
import shutil
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from pdfsg.errors import StructureError
from pdfsg.sources import (
    StructureRecord,
    count_records,
    iter_records,
    register_source,
    source_fingerprint,
)
from pdfsg.structures import (
    StructureReadError,
    deduplicate,
    label_space_group,
    parse_structure,
    read_structure,
)

DATA = Path(__file__).parent / "data" / "structures"
CSV = DATA / "textbook.csv"
CIFS = DATA / "cifs"


def rocksalt(a: float = 5.64, species=("Na", "Cl")) -> Structure:
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(a), list(species), [[0, 0, 0], [0.5, 0.5, 0.5]]
    )


# --------------------------------------------------------------------------- sources


def test_csv_records_are_lazy_and_named():
    it = iter_records(CSV)
    assert isinstance(it, types.GeneratorType)
    first = next(it)
    assert first.id == "tb-Ni" and first.cif.startswith("# generated using pymatgen")
    assert "textbook.csv row 1" in first.where
    rest = list(it)
    assert [r.id for r in rest][-2:] == ["tb-bad", "tb-partial"]
    assert count_records(CSV) == 10


def test_csv_gz_and_row_ids(tmp_path):
    gz = tmp_path / "t.csv.gz"
    text = CSV.read_text().replace("material_id,cif", "name,cif", 1)
    with gzip.open(gz, "wt", newline="") as handle:
        handle.write(text)
    ids = [r.id for r in iter_records(gz)]
    assert ids[:2] == ["row1", "row2"] and len(ids) == 10


def test_folder_and_single_cif():
    recs = list(iter_records(CIFS))
    assert [r.id for r in recs] == sorted(p.stem for p in CIFS.glob("*.cif"))
    assert count_records(CIFS) == len(recs)
    (one,) = iter_records(CIFS / "Ni.cif")
    assert one.id == "Ni" and one.where.endswith("Ni.cif")


def test_iterable_and_registered_sources():
    s = rocksalt()
    recs = list(iter_records([StructureRecord("a", structure=s), s]))
    assert [r.id for r in recs] == ["a", "structure-1"]
    register_source("toyrocksalt", lambda spec: [rocksalt(float(spec))])
    (rec,) = iter_records("toyrocksalt:5.5")
    assert rec.structure.lattice.a == pytest.approx(5.5)
    assert source_fingerprint("toyrocksalt:5.5") == {"description": "toyrocksalt:5.5"}
    with pytest.raises(StructureError, match="not a StructureRecord"):
        list(iter_records([1]))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda d: d / "missing.csv", "no such file or folder"),
        (lambda d: d, "folder holds no .cif files"),
        (lambda d: _write(d / "x.txt", "hello"), "unknown structure source"),
        (lambda d: _write(d / "x.csv", "material_id,formula\nmp-1,Ni\n"), "no 'cif' column"),
    ],
)
def test_source_errors_are_one_line(tmp_path, make, match):
    path = make(tmp_path)
    with pytest.raises(StructureError, match=match) as info:
        list(iter_records(path))
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_fingerprint_of_file_and_folder(tmp_path):
    fp = source_fingerprint(CSV)
    assert len(fp["sha256"]) == 64 and fp["path"].endswith("textbook.csv")
    folder = tmp_path / "cifs"
    shutil.copytree(CIFS, folder)
    before = source_fingerprint(folder)
    (folder / "Ni.cif").write_text((folder / "Ni.cif").read_text() + "\n")
    assert source_fingerprint(folder)["sha256"] != before["sha256"]


def test_record_digest_changes_with_content():
    a = StructureRecord("x", cif="data_a")
    assert a.digest() != StructureRecord("x", cif="data_b").digest()
    assert a.digest() != StructureRecord("y", cif="data_a").digest()
    s1 = StructureRecord("s", structure=rocksalt(5.6))
    assert s1.digest() != StructureRecord("s", structure=rocksalt(5.7)).digest()


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("name", "reason", "match"),
    [
        ("not_a_cif.cif", "not_cif", "not a CIF"),
        ("partial.cif", "partial_occupancy", "partial occupancies"),
        ("no_atoms.cif", "no_atoms", "no atom"),
        ("no_symmetry.cif", "no_symmetry", "no symmetry information"),
    ],
)
def test_bad_cifs(name, reason, match):
    path = CIFS / name
    with pytest.raises(StructureReadError, match=match) as info:
        read_structure(path)
    assert info.value.reason == reason
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_missing_cif_file(tmp_path):
    with pytest.raises(StructureError, match="no such file"):
        read_structure(tmp_path / "nope.cif")


def test_p1_and_symmetrised_cifs_read_without_warnings():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ni = read_structure(CIFS / "Ni.cif")  # P1 with 'x, y, z'
        nacl = read_structure(CIFS / "NaCl_symmetrized.cif")  # asymmetric unit + Fm-3m ops
    assert not caught
    assert len(ni) == 4 and len(nacl) == 8
    assert label_space_group(nacl) == 225


def test_space_group_name_alone_is_symmetry_information():
    # the no-symmetry fixture plus only a space-group name: read (as the name says)
    text = (CIFS / "no_symmetry.cif").read_text()
    text = text.replace("_cell_length_a", "_symmetry_space_group_name_H-M   'P 1'\n_cell_length_a")
    assert len(parse_structure(text, "si")) == 8


def test_csv_row_errors_name_the_row():
    recs = {r.id: r for r in iter_records(CSV)}
    with pytest.raises(StructureReadError, match=r"textbook.csv row 9 \(tb-bad\): not a CIF"):
        parse_structure(recs["tb-bad"].cif, recs["tb-bad"].where)


# --------------------------------------------------------------------------- labels


def test_labels_of_textbook_structures():
    expected = {
        "tb-Ni": 225,
        "tb-NaCl": 225,
        "tb-Si": 227,
        "tb-CsCl": 221,
        "tb-TiO2": 136,
        "tb-ZnO": 186,
        "tb-W": 229,
    }
    got = {
        r.id: label_space_group(parse_structure(r.cif, r.where))
        for r in iter_records(CSV)
        if r.id in expected
    }
    assert got == expected


def test_symprec_decides_a_slightly_distorted_cell():
    s = rocksalt()
    s.translate_sites([0], [0.004, 0, 0])  # 0.02 Å off the ideal site
    assert label_space_group(s, symprec=0.1) == 225
    assert label_space_group(s, symprec=1e-4) != 225


def test_label_failure_is_a_structure_error():
    s = Structure(
        Lattice.cubic(4.0), ["Na", "Na"], [[0, 0, 0], [0, 0, 0]], validate_proximity=False
    )
    with pytest.raises(StructureReadError, match="overlap-test") as info:
        label_space_group(s, name="overlap-test")
    assert info.value.reason == "label_failed"


# --------------------------------------------------------------------------- duplicates


def test_dedupe_same_composition_and_structure():
    nacl = rocksalt()
    copy = nacl.get_primitive_structure()
    copy.scale_lattice(copy.volume * 1.03)
    kcl = rocksalt(6.29, ("K", "Cl"))
    cscl_type = Structure(Lattice.cubic(3.4), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    items = [
        ("nacl", nacl, 225),
        ("kcl", kcl, 225),
        ("copy", copy, 225),
        ("nacl-b2", cscl_type, 221),  # same formula, other structure
    ]
    res = deduplicate(items)
    assert res.kept == ["nacl", "kcl", "nacl-b2"]
    assert res.duplicates == {"copy": "nacl"}


def test_dedupe_needs_the_same_label_and_unique_keys():
    nacl = rocksalt()
    # identical structures with different labels (a labelling disagreement) are both kept
    assert deduplicate([(1, nacl, 225), (2, nacl.copy(), 221)]).duplicates == {}
    with pytest.raises(ValueError, match="unique"):
        deduplicate([(1, nacl, 225), (1, nacl, 225)])


def test_dedupe_keeps_distinct_members_of_a_group():
    a = rocksalt(5.64)
    b = a.copy()
    b.translate_sites([0], [0.1, 0.0, 0.0])  # a different structure, same formula
    res = deduplicate([("a", a, 225), ("b", b, 225), ("a2", a.copy(), 225)])
    assert res.kept == ["a", "b"] and res.duplicates == {"a2": "a"}
    assert np.all(np.isfinite(a.frac_coords))
