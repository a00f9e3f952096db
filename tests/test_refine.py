"""Refinement of candidate structures against G(r) (pdfsg.refine) and ``predict --refine``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pdfsg.errors import CompositionError, PdfFileError
from pdfsg.params import PdfParams

A_NACL = 5.64


def _rocksalt(a: float, species=("Na", "Cl")):
    from pymatgen.core import Lattice, Structure

    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(a), list(species), [[0, 0, 0], [0.5, 0.5, 0.5]]
    )


def _zincblende(a: float):
    from pymatgen.core import Lattice, Structure

    return Structure.from_spacegroup(
        "F-43m", Lattice.cubic(a), ["Na", "Cl"], [[0, 0, 0], [0.25, 0.25, 0.25]]
    )


@pytest.fixture(scope="module")
def nacl_curve():
    """G(r) of rock-salt NaCl (a = 5.64 Å) by pdffit2: r 1.5–20 Å, Qmax 25, Qdamp 0.03."""
    from pdfsg.pdf import simulate_pdffit2

    params = PdfParams(rmin=1.5, rmax=20.0, rstep=0.05, qmin=0.0, qmax=25.0, qdamp=0.03,
                       qbroad=0.0, uiso=0.01, delta2=0.0)  # fmt: skip
    return params.r_grid(), simulate_pdffit2(_rocksalt(A_NACL), params)


@pytest.fixture(scope="module")
def nacl_data(nacl_curve):
    from pdfsg.refine.fit import prepare_data

    r, g = nacl_curve
    return prepare_data(r, g, qmax=25.0, qdamp=0.03, source="nacl.gr")


@pytest.fixture(scope="module")
def nacl_fits(nacl_data):
    from pdfsg.refine.fit import Candidate, refine_candidate

    right = Candidate(_rocksalt(A_NACL * 1.03), 225, "file", "rocksalt-3pc")
    wrong = Candidate(_zincblende(A_NACL * 1.03), 216, "file", "zincblende")
    return refine_candidate(right, nacl_data), refine_candidate(wrong, nacl_data)


def test_refinement_recovers_the_lattice_from_a_3_percent_wrong_start(nacl_fits):
    right, _ = nacl_fits
    assert right.ok, right.reason
    assert abs(right.lattice["a"] / A_NACL - 1) < 0.005
    assert right.lattice["a"] == right.lattice["b"] == right.lattice["c"]  # cubic constraint
    assert right.rw < 0.05
    assert 0.005 < right.params["uiso"]["Na"] < 0.02
    assert right.cif is not None and "Fm-3m" in right.cif


def test_fit_ranks_the_right_group_above_a_wrong_groups_candidate(nacl_fits):
    from pdfsg.refine.rank import combine

    right, wrong = nacl_fits
    assert wrong.rw is None or wrong.rw > right.rw + 0.2
    # the model prefers the wrong group 3:1; the fit turns it round
    ranking = combine([(216, "F-43m", 0.6), (225, "Fm-3m", 0.2)], [right, wrong])
    assert [g.space_group for g in ranking] == [225, 216]
    assert ranking[0].best_rw == right.rw and ranking[0].model_rank == 2
    # tau = inf is the model alone
    assert [g.space_group for g in combine([(216, "", 0.6), (225, "", 0.2)], [right, wrong],
                                           tau=math.inf)] == [216, 225]  # fmt: skip


def test_untested_group_does_not_outrank_a_good_fit(nacl_fits):
    from pdfsg.refine.rank import combine, fit_order

    right, _ = nacl_fits
    groups = [(123, "P4/mmm", 0.5), (225, "Fm-3m", 0.1)]
    ranking = combine(groups, [right])
    assert ranking[0].space_group == 225
    assert ranking[1].best_rw is None and ranking[1].fit_rank is None
    assert fit_order(groups, [right]) == [225, 123]


def test_a_diverging_candidate_is_reported_not_raised():
    from pdfsg.refine.fit import Candidate, prepare_data, refine_candidate

    r = np.arange(1.5, 20.0, 0.05)
    data = prepare_data(r, np.full(r.size, 0.5), qmax=25.0, qdamp=0.03)  # no structure at all
    fit = refine_candidate(Candidate(_rocksalt(A_NACL), 225, "file", "rs"), data)
    assert fit.status == "failed" and not fit.ok
    assert fit.reason.startswith("refinement diverged: ") and "\n" not in fit.reason


def test_data_too_short_is_one_line_naming_the_file(nacl_curve):
    from pdfsg.refine.fit import prepare_data

    r, g = nacl_curve
    keep = r < 5.0
    with pytest.raises(PdfFileError, match=r"^short\.gr: data cover r = 1\.50–4\.95 Å, too short"):
        prepare_data(r[keep], g[keep], qmax=25.0, source="short.gr")


def test_integer_formula():
    from pdfsg.refine.candidates import integer_formula

    assert integer_formula({"Na": 0.5, "Cl": 0.5}) == "NaCl"
    assert integer_formula({"Si": 0.9, "Ni": 0.1}) == "Si9Ni"
    with pytest.raises(CompositionError, match="not an integer formula"):
        integer_formula({"La": 0.72, "Ca": 0.28, "Mn": 1, "O": 3}, "x.gr: composition")


@pytest.fixture(scope="module")
def small_library(tmp_path_factory):
    """A library built from CIF files: KBr rock salt, NaCl zinc blende (exact formula)."""
    from pdfsg.refine.library import build_library, read_library, write_library

    folder = tmp_path_factory.mktemp("cifs")
    _rocksalt(6.60, ("K", "Br")).to(filename=str(folder / "kbr.cif"))
    _zincblende(6.0).to(filename=str(folder / "nacl-zb.cif"))
    (folder / "broken.cif").write_text("data_x\n_cell_length_a 1\n")
    lib, skipped = build_library([folder], attribution="test")
    assert len(lib) == 2 and len(skipped) == 1 and "broken" in skipped[0]
    path = write_library(lib, folder / "lib.json.gz")
    return read_library(path)


def test_library_round_trip_and_lookups(small_library):
    assert {(e.formula, e.anonymous, e.space_group) for e in small_library.entries} == {
        ("KBr", "AB", 225),
        ("NaCl", "AB", 216),
    }
    assert small_library.meta["attribution"] == "test"
    assert [e.formula for e in small_library.same_type("AB", 225)] == ["KBr"]
    assert len(small_library.without(["kbr"])) == 1


def test_candidates_substitute_elements_and_fall_back_to_prototypes(small_library):
    from pdfsg.refine.candidates import find_candidates

    found = find_candidates({"Na": 1, "Cl": 1}, [225, 216, 1], library=small_library)
    rs, proto = found.by_group[225]  # the library's, then the classic type, always tried
    assert rs.source == "library" and rs.id == "kbr"
    assert (proto.source, proto.id, proto.formula) == ("prototype", "rocksalt", "NaCl")
    assert rs.formula == "NaCl" and "Na for K" in rs.note and "Cl for Br" in rs.note
    # volume scaled by the elements' sizes: NaCl is smaller than KBr
    assert 5.0 < rs.structure.lattice.a < 6.4
    zb = found.by_group[216][0]
    assert zb.note == "exact formula" and zb.structure.lattice.a == pytest.approx(6.0)
    assert "no candidate structure of NaCl (AB)" in found.missing[1]
    # an element the library lacks: the classic prototypes
    ni = find_candidates({"Ni": 1}, [225, 229], library=small_library)
    assert [c.id for c in ni.by_group[225]] == ["fcc"]
    assert [c.id for c in ni.by_group[229]] == ["bcc"]
    assert ni.by_group[225][0].structure.composition.reduced_formula == "Ni"


def test_read_library_refuses_other_files(tmp_path):
    from pdfsg.refine.library import LibraryError, read_library

    bad = tmp_path / "x.json.gz"
    bad.write_text("{}")
    with pytest.raises(LibraryError, match=r"x\.json\.gz: not a structure library file"):
        read_library(bad)


def test_shipped_library_reads():
    from pdfsg.refine.library import read_library, shipped_library_path

    if not shipped_library_path().is_file():
        pytest.skip("no shipped structure library in this checkout")
    lib = read_library()
    assert len(lib) > 1000
    assert "CC BY 4.0" in lib.meta["attribution"]


@pytest.fixture(scope="module")
def nacl_file(tmp_path_factory):
    """The NaCl curve to 30 Å (the test model's range) as a .gr file."""
    from pdfsg.io import write_gr
    from pdfsg.pdf import simulate_pdffit2

    params = PdfParams(rmin=1.5, rmax=30.0, rstep=0.05, qmin=0.0, qmax=25.0, qdamp=0.03,
                       qbroad=0.0, uiso=0.01, delta2=0.0)  # fmt: skip
    r, g = params.r_grid(), simulate_pdffit2(_rocksalt(A_NACL), params)
    path = tmp_path_factory.mktemp("gr") / "nacl.gr"
    write_gr(path, r, g, title="NaCl", settings={"qmax": 25.0, "qdamp": 0.03, "mode": "xray"})
    return path


def test_cli_predict_refine_json_csv_cif_and_plot(tmp_path, nacl_file, random_logreg_model):
    from pdfsg.cli import main

    cands = tmp_path / "cands"
    cands.mkdir()
    _rocksalt(A_NACL * 0.98).to(filename=str(cands / "nacl.cif"))
    out = tmp_path / "out"
    args = ["predict", str(nacl_file), "--model", str(random_logreg_model), "--refine",
            "--library", "none", "--composition", "NaCl", "--candidates", str(cands),
            "--refine-workers", "1", "--refine-top", "8"]  # fmt: skip
    rc = main([*args, "--format", "json", "-o", str(tmp_path / "r.json"),
               "--refine-out", str(out), "--plot", str(tmp_path / "p.png")])  # fmt: skip
    assert rc == 0
    (res,) = json.loads((tmp_path / "r.json").read_text())
    ref = res["refinement"]
    assert ref["ranking"][0]["space_group"] == 225
    best = next(c for c in ref["candidates"] if c["source"] == "file")
    assert best["rw"] < 0.05 and abs(best["lattice"]["a"] / A_NACL - 1) < 0.005
    assert len(res["predictions"]) == 6  # --top, not --refine-top
    (cif,) = out.glob("nacl-sg225-*.cif")
    assert "_symmetry_space_group_name_H-M   Fm-3m" in cif.read_text()
    assert (tmp_path / "p-nacl-fit.png").stat().st_size > 10_000
    assert any("no candidate structure of NaCl" in n for n in ref["notes"])
    assert main([*args, "--format", "csv", "-o", str(tmp_path / "r.csv")]) == 0
    rows = (tmp_path / "r.csv").read_text().splitlines()
    assert rows[0].startswith("file,group_rank,space_group")
    assert rows[1].split(",")[1:3] == ["1", "225"]


def test_cli_refine_bad_input(tmp_path, nacl_file, random_logreg_model, capsys):
    from pdfsg.cli import main

    assert main(["predict", str(nacl_file), "--refine-out", str(tmp_path)]) == 2
    assert "--refine-out needs --refine" in capsys.readouterr().err
    assert main(["predict", str(nacl_file), "--refine", "--candidates", "/nonexistent"]) == 2
    assert "--candidates: /nonexistent: no such file" in capsys.readouterr().err
    # no composition: the file's one-line reason, the prediction still answered
    out = str(tmp_path / "r.json")
    rc = main(["predict", str(nacl_file), "--model", str(random_logreg_model), "--refine",
               "--library", "none", "--format", "json", "-o", out])  # fmt: skip
    assert rc == 0
    (res,) = json.loads((tmp_path / "r.json").read_text())
    assert res["predictions"] and "no composition" in res["refinement"]["error"]


def test_cli_library_build_and_show(tmp_path, capsys):
    from pdfsg.cli import main

    folder = tmp_path / "cifs"
    folder.mkdir()
    _rocksalt(6.6, ("K", "Br")).to(filename=str(folder / "kbr.cif"))
    out = tmp_path / "lib.json.gz"
    assert main(["library", "build", str(folder), "-o", str(out)]) == 0
    assert "1 structures" in capsys.readouterr().err
    assert main(["library", "show", str(out), "--formula", "NaCl"]) == 0
    assert "kbr" in capsys.readouterr().out
    assert np.isfinite(out.stat().st_size)


def test_parallel_refinement_gives_the_sequential_answers_in_order(nacl_data, nacl_fits):
    from pdfsg.refine.fit import Candidate
    from pdfsg.refine.pipeline import refine_all

    cands = [
        Candidate(_rocksalt(A_NACL * 1.03), 225, "file", "rocksalt-3pc"),
        Candidate(_zincblende(A_NACL * 1.03), 216, "file", "zincblende"),
    ]
    seen = []
    fits = refine_all(cands, nacl_data, workers=2, progress=seen.append)
    assert [f.id for f in fits] == ["rocksalt-3pc", "zincblende"] and len(seen) == 2
    assert fits[0].rw == pytest.approx(nacl_fits[0].rw, rel=1e-9)
    assert fits[0].lattice == nacl_fits[0].lattice
