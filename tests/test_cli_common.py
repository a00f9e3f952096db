"""The CLI's shared rules: every output path checked before any work (one line naming the
option, exit 2, nothing created), and PdfParams errors that name the option typed."""

from __future__ import annotations

from pathlib import Path

import pytest

from pdfsg.cli import main
from pdfsg.cli.common import check_output_path
from pdfsg.errors import PdfsgError
from pdfsg.predict import example_files

EXAMPLE = str(example_files()[0])
NI_CIF = str(Path(__file__).parent / "data" / "structures" / "cifs" / "Ni.cif")


def one_line_error(capsys, command: str, option: str) -> str:
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"pdfsg {command}: error: {option}") and err.count("\n") == 1, err
    return err


def test_output_path_rule_on_its_own(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    assert check_output_path(tmp_path / "a.json", "-o") == tmp_path / "a.json"
    assert check_output_path("relative.json", "-o") == Path("relative.json")
    assert check_output_path(tmp_path / "new-folder", "--report", folder=True)
    with pytest.raises(PdfsgError, match=r"^-o: folder .*missing does not exist"):
        check_output_path(tmp_path / "missing" / "a.json", "-o")
    with pytest.raises(PdfsgError, match=r"^--plot: folder .*file.txt is not a folder"):
        check_output_path(tmp_path / "file.txt" / "a.png", "--plot")
    with pytest.raises(PdfsgError, match=r"^-o: .* is a folder; give a file name"):
        check_output_path(tmp_path, "-o")
    with pytest.raises(PdfsgError, match=r"^--report: .*file.txt exists and is not a folder"):
        check_output_path(tmp_path / "file.txt", "--report", folder=True)
    with pytest.raises(PdfsgError, match=r"^--report: folder .*missing does not exist"):
        check_output_path(tmp_path / "missing" / "rep", "--report", folder=True)


@pytest.mark.parametrize(
    "argv, command, option",
    [
        # the input file does not exist either: the output is checked first
        (["predict", "missing.gr", "-o", "{m}/x.json"], "predict", "-o"),
        (["predict", "missing.gr", "--plot", "{m}/x.png"], "predict", "--plot"),
        (["simulate", "missing.cif", "-o", "{m}/x.gr"], "simulate", "-o"),
        (["simulate", "missing.csv", "-o", "{m}/pdfs/"], "simulate", "-o"),
        (["evaluate", "missing.h5", "--json", "{m}/m.json"], "evaluate", "--json"),
        (["evaluate", "missing.h5", "--report", "{m}/rep"], "evaluate", "--report"),
        (["train", "missing.h5", "--model", "logreg-x", "--out", "{m}/run"], "train", "--out"),
        (["dataset", "build", "missing.csv", "-o", "{m}/d.h5"], "dataset", "-o"),
        (["dataset", "merge", "a.h5", "b.h5", "-o", "{m}/d.h5"], "dataset", "-o"),
    ],
)
def test_a_missing_output_folder_is_refused_before_any_work(
    argv, command, option, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "no" / "such"
    code = main([a.format(m=missing) for a in argv])
    assert code == 2
    err = one_line_error(capsys, command, option)
    assert "does not exist" in err
    assert not (tmp_path / "no").exists()


def test_plot_into_a_folder_at_the_root_is_not_created(capsys):
    assert not Path("/pdfsg-no-such-folder").exists()
    assert main(["predict", EXAMPLE, "--plot", "/pdfsg-no-such-folder/x.png"]) == 2
    one_line_error(capsys, "predict", "--plot")
    assert not Path("/pdfsg-no-such-folder").exists()


def test_simulate_creates_its_output_folder_but_not_its_parent(tmp_path, capsys):
    out = tmp_path / "pdfs"
    assert main(["simulate", NI_CIF, NI_CIF, "-o", str(out)]) == 0
    assert [p.name for p in out.iterdir()] == ["Ni.gr"]
    assert "wrote 2 PDFs to" in capsys.readouterr().err
    assert main(["simulate", NI_CIF, "-o", str(tmp_path / "one.gr")]) == 0
    assert (tmp_path / "one.gr").read_text().startswith("# G(r) of Ni")


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--rstep", "1e-7"], "--rstep = 1e-07 Å gives 2.85e+08 r points"),
        (["--rmax", "5000"], "--rmax must be <= 500 Å, got 5000"),
        (["--qmax", "-5"], "--qmax must be > 0, got -5"),
        (["--qdamp", "-1"], "--qdamp must be >= 0, got -1"),
        (["--rmin", "40"], "--rmax (30) must be > rmin (40)"),
    ],
)
def test_simulate_settings_errors_name_the_option(flags, message, tmp_path, capsys):
    assert main(["simulate", NI_CIF, "-o", str(tmp_path / "x.gr"), *flags]) == 2
    err = one_line_error(capsys, "simulate", message.split()[0])
    assert message in err and "PdfParams" not in err
    assert not (tmp_path / "x.gr").exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--qmax", "-5"], "--qmax must be > 0 [1/Å], got -5"),
        (["--qmax", "nan"], "--qmax must be > 0 [1/Å], got nan"),
        (["--qdamp", "-1"], "--qdamp must be >= 0 [1/Å], got -1"),
        (["--top", "0"], "--top must be >= 1"),
        (["--top", "-1"], "--top must be >= 1"),
    ],
)
def test_predict_option_errors_name_the_option(flags, message, capsys):
    assert main(["predict", EXAMPLE, *flags]) == 2
    err = one_line_error(capsys, "predict", flags[0])
    assert message in err and "resample_to_grid" not in err
