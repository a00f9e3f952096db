"""Series mode of ``pdfsg predict`` and the per-file outputs: a simulated NaCl -> rutile
"transition" (G mixed from the two), CSV with warnings, plots that say what they show."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from pdfsg import pdf
from pdfsg.cli import main
from pdfsg.errors import ParamsError, PdfFileError
from pdfsg.io import write_gr
from pdfsg.params import PdfParams
from pdfsg.predict import Predictor
from pdfsg.series import build_series, series_keys

#: the fraction of rutile in each file of the series, and its "temperature"
MIX = (0.0, 0.25, 0.5, 0.75, 1.0)
TEMPERATURES = (700, 600, 500, 400, 300)  # file order is the reverse of temperature order


@pytest.fixture(scope="module")
def series_files(tmp_path_factory):
    """Five files from pure rock salt (Fm-3m, 225) to pure rutile (P4_2/mnm, 136), measured
    like a PDFgetX3 user would have them (0.01 Å grid, Qmax 26); the middle one gzipped and
    the last without a Qmax in its header."""
    nacl = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    rutile = Structure.from_spacegroup(
        "P4_2/mnm", Lattice.tetragonal(4.594, 2.959), ["Ti", "O"], [[0, 0, 0], [0.3049] * 2 + [0]]
    )
    p = PdfParams(rmin=0.01, rmax=30.5, rstep=0.01, qmin=0.8, qmax=26.0, qdamp=0.03, uiso=0.005)
    ga, gb = pdf.simulate(nacl, p), pdf.simulate(rutile, p)
    ga, gb = ga / np.abs(ga).max(), gb / np.abs(gb).max()
    folder = tmp_path_factory.mktemp("series")
    paths = []
    for k, (t, temp) in enumerate(zip(MIX, TEMPERATURES, strict=True)):
        settings = {"temperature": f"{temp} K"}
        if k < 4:
            settings["qmax"] = 26.0
        path = folder / (f"s{k}.gr.gz" if k == 2 else f"s{k}.gr")
        write_gr(path, p.r_grid(), (1 - t) * ga + t * gb, title=f"mix {t}", settings=settings)
        paths.append(path)
    assert paths[2].read_bytes()[:2] == b"\x1f\x8b"
    return paths


@pytest.fixture(scope="module")
def results(series_files):
    predictor = Predictor.load()
    return [predictor.predict_file(p, top=6) for p in series_files]


def test_results_carry_the_full_probability_vector(results):
    res = results[0]
    assert res.probabilities.shape == (len(res.labels),) and len(res.labels) >= 45
    assert res.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    top = res.predictions[0]
    assert res.probabilities[res.labels.index(top.space_group)] == pytest.approx(top.probability)
    assert "probabilities" not in res.to_dict() and "labels" not in res.to_dict()


def test_series_follows_the_transition(results):
    s = build_series(results)
    assert s.x.tolist() == [1, 2, 3, 4, 5] and s.x_label == "index"
    for r in results:  # every file's top 3 is a candidate
        assert {p.space_group for p in r.predictions[:3]} <= set(s.candidates)
    nacl, rutile = s.candidates.index(225), s.candidates.index(136)
    p_nacl, p_rutile = s.probabilities[:, nacl], s.probabilities[:, rutile]
    # the values are each file's own probabilities, also where a group is not in its top 6
    for k, r in enumerate(results):
        assert p_nacl[k] == pytest.approx(r.probabilities[r.labels.index(225)])
    assert p_nacl[0] > 0.5 and p_rutile[-1] > 0.5
    assert p_nacl[-1] < 0.01 and p_rutile[0] < 0.01
    assert np.all(np.diff(p_nacl) < 0)  # rock salt fades as rutile grows
    assert p_rutile[-1] > p_rutile[0] and p_rutile[3] > p_rutile[1]


def test_series_by_a_header_value_sorts_the_files(series_files, results):
    temps = series_keys([str(p) for p in series_files], "temperature")
    assert temps == [700.0, 600.0, 500.0, 400.0, 300.0]
    s = build_series(results, x=temps, x_label="temperature")
    assert s.x.tolist() == [300, 400, 500, 600, 700]
    assert s.files == [str(p) for p in series_files[::-1]]
    assert s.probabilities[0, s.candidates.index(136)] > 0.5  # rutile at 300 K
    with pytest.raises(PdfFileError, match="no 'pressure = value' line in the header"):
        series_keys([str(series_files[0])], "pressure")
    with pytest.raises(ParamsError, match="top must be >= 1"):
        build_series(results, top=0)


def test_cli_series_table_csv_json_and_plot(series_files, results, tmp_path, capsys):
    files = [str(p) for p in series_files]
    ref = build_series(results, x=list(TEMPERATURES), x_label="temperature")
    assert main(["predict", *files, "--series", "--series-key", "temperature"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:2] == ["file", "temperature"] and "P4_2/mnm (136)" in table[0]
    assert table[1].split()[:2] == ["s4.gr", "300"] and len(table) == 6

    png = tmp_path / "series.png"
    argv = [
        *files,
        "--series",
        "--format",
        "csv",
        "--plot",
        str(png),
        "--series-key",
        "temperature",
    ]
    assert main(["predict", *argv]) == 0
    out, err = capsys.readouterr()
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0][:2] == ["file", "temperature"] and rows[0][2:] == ref.columns()
    got = np.array([[float(v) for v in row[2:]] for row in rows[1:]])
    np.testing.assert_allclose(got, ref.probabilities, atol=1e-6)
    assert [float(row[1]) for row in rows[1:]] == [300, 400, 500, 600, 700]
    assert png.read_bytes()[:4] == b"\x89PNG" and err == f"pdfsg predict: wrote {png}\n"

    assert main(["predict", *files, "--series", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["x_label"] == "index" and [r["index"] for r in doc["rows"]] == [1, 2, 3, 4, 5]
    assert main(["predict", *files, "--series-key", "temperature"]) == 2
    assert "--series-key needs --series" in capsys.readouterr().err


def test_no_qmax_in_the_header_says_which_was_assumed(results):
    last = results[-1]
    assert last.data_settings["qmax"] == 23.0
    assert last.data_settings["qmax_from"] == "assumed (the model's)"
    assert any(
        "no Qmax in the header (or --qmax); assumed the model's 23 1/Å" in w for w in last.warnings
    )
    assert results[0].data_settings["qmax_from"] == "header"
    assert not any("assumed" in w for w in results[0].warnings)


def test_csv_carries_the_warnings(series_files, capsys):
    files = [str(series_files[0]), str(series_files[4])]
    assert main(["predict", *files, "--format", "csv", "--top", "2"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 4 and "warnings" in rows[0]
    assert [r["warnings"] for r in rows[:2]] == ["", ""]
    assert all("assumed the model's 23 1/Å" in r["warnings"] for r in rows[2:])


def test_plots_name_the_file_show_a_legend_and_the_warnings(
    series_files, tmp_path, capsys, monkeypatch
):
    from matplotlib.figure import Figure

    figures = []
    save = Figure.savefig

    def keep(fig, *args, **kwargs):  # the figures that were written, to read them back
        figures.append(fig)
        return save(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    files = [str(series_files[0]), str(series_files[2]), str(series_files[4])]
    assert main(["predict", *files, "--plot", str(tmp_path / "out.png")]) == 0
    written = [tmp_path / f"out-{s}.png" for s in ("s0", "s2", "s4")]
    assert sorted(tmp_path.iterdir()) == written
    assert capsys.readouterr().err == f"pdfsg predict: wrote {', '.join(map(str, written))}\n"
    titles = [fig.axes[0].get_title() for fig in figures]
    assert titles == ["s0.gr", "s2.gr.gz", "s4.gr"]
    legend = figures[0].axes[1].get_legend()
    assert legend.get_title().get_text() == "crystal system"
    assert "cubic" in [t.get_text() for t in legend.get_texts()]
    assert [t.get_text() for t in figures[0].texts] == []
    notes = "\n".join(t.get_text() for t in figures[2].texts)
    assert "warning: " in notes and "assumed the model's 23 1/Å" in notes
    assert figures[2].get_figheight() > figures[0].get_figheight()
