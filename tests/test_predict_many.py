"""Many files in one call: ``Predictor.predict_many``, the CLI on many files, lazy imports."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from pdfsg.cli import SUBCOMMANDS, build_parser, main
from pdfsg.errors import ParamsError
from pdfsg.io import read_pdf_file, write_gr
from pdfsg.predict import PredictionError, Predictor, example_files


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor.load()


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    """The example curve, a noisy copy, one cut at 20 Å (answered by the short model), one
    starting at 2.2 Å (fewer grid points), and a file that is not a PDF."""
    folder = tmp_path_factory.mktemp("series")
    data = read_pdf_file(example_files()[0])
    rng = np.random.default_rng(0)
    paths = []
    for name, keep, noise in (
        ("a", data.r > 0, 0.0),
        ("b", data.r > 0, 0.02),
        ("c", data.r <= 20.0, 0.0),
        ("d", data.r >= 2.2, 0.01),
    ):
        g = data.g[keep] + noise * rng.normal(size=int(keep.sum()))
        path = folder / f"{name}.gr"
        write_gr(path, data.r[keep], g, title=name, settings={"qmax": 23.0})
        paths.append(path)
    bad = folder / "bad.gr"
    bad.write_text("not a pdf\n")
    paths.insert(2, bad)
    return [str(p) for p in paths]


def test_predict_many_gives_predict_files_answers_in_order(predictor, series):
    many = predictor.predict_many(series, top=5)
    assert [getattr(m, "file", None) for m in many] == series
    assert isinstance(many[2], PredictionError) and "bad.gr" in many[2].error
    assert many[2].to_dict() == {"file": series[2], "error": many[2].error}
    models = set()
    for path, got in zip(series, many, strict=True):
        if path.endswith("bad.gr"):
            continue
        one = predictor.predict_file(path, top=5)
        assert got.to_dict()["predictions"][0]["space_group"] == one.predictions[0].space_group
        assert np.allclose(got.probabilities, one.probabilities, atol=1e-6)
        assert got.warnings == one.warnings and got.data_settings == one.data_settings
        assert len(got.predictions) == 5
        models.add(got.model)
    assert len(models) == 2  # the 20 Å file went to the short model, in its own batch


def test_predict_many_takes_curves_and_refuses_bad_options(predictor):
    data = read_pdf_file(example_files()[0])
    curves = [(data.r, data.g), (data.r[:5], data.g[:5])]
    got = predictor.predict_many(curves, qmax=23.0)
    one = predictor.predict(data.r, data.g, qmax=23.0)
    assert np.allclose(got[0].probabilities, one.probabilities, atol=1e-6)
    assert isinstance(got[1], PredictionError) and got[1].file is None
    with pytest.raises(ParamsError):
        predictor.predict_many(curves, top=-1)
    assert predictor.predict_many([]) == []


def test_cli_many_files_one_bad_and_threads(series, capsys):
    assert main(["predict", *series, "--format", "json", "--threads", "2"]) == 2
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert [o["file"] for o in out] == series
    assert "error" in out[2] and all("predictions" in o for i, o in enumerate(out) if i != 2)
    assert "bad.gr" in captured.err
    assert main(["predict", "--example", "--threads", "0"]) == 2
    assert "--threads must be >= 1" in capsys.readouterr().err


def test_predict_imports_no_heavy_module():
    code = (
        "import sys, io, contextlib\n"
        "from pdfsg.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['predict', '--example']) == 0\n"
        "heavy = ('torch', 'scipy', 'pymatgen', 'dask', 'matplotlib', 'pandas', 'sklearn')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_subcommand_help_lines_are_the_modules_own():
    full = build_parser()
    (sub,) = [a for a in full._actions if a.dest == "command"]
    helps = {c.dest: c.help for c in sub._choices_actions}
    assert helps == SUBCOMMANDS
    lazy = build_parser([])
    assert lazy.format_help() == full.format_help()
