"""pdfsg.composition: formulas as users and reduction programs write them, and file headers."""

from __future__ import annotations

import csv
import math
import subprocess
import sys

import pytest
from pymatgen.core import Composition

from pdfsg.composition import (
    ELEMENTS,
    as_composition,
    composition_from_header,
    composition_from_title,
    format_composition,
    fractions,
    parse_composition,
)
from pdfsg.errors import CompositionError, PdfsgError

#: every form found in real files and in the issue, with what it must read as
FORMS = {
    "Ni": {"Ni": 1},
    "Cd Se": {"Cd": 1, "Se": 1},
    "In4Sn3O12": {"In": 4, "Sn": 3, "O": 12},
    "C 10 H 8": {"C": 10, "H": 8},
    "Ir0.80Rh0.20Te2": {"Ir": 0.8, "Rh": 0.2, "Te": 2},
    "Ti O2": {"Ti": 1, "O": 2},
    "La0.72Ca0.28MnO3": {"La": 0.72, "Ca": 0.28, "Mn": 1, "O": 3},
    "CuIr1.76Cr0.24S4": {"Cu": 1, "Ir": 1.76, "Cr": 0.24, "S": 4},
    "In1.9Sn0.1O3": {"In": 1.9, "Sn": 0.1, "O": 3},
    "Au144S60C480H400": {"Au": 144, "S": 60, "C": 480, "H": 400},
    "Au144 S60 C180": {"Au": 144, "S": 60, "C": 180},
    "Si0.9Ni0.1": {"Si": 0.9, "Ni": 0.1},
    "Ca(OH)2": {"Ca": 1, "O": 2, "H": 2},
    "Mg3(PO4)2": {"Mg": 3, "P": 2, "O": 8},
    "K4[Fe(CN)6]": {"K": 4, "Fe": 1, "C": 6, "N": 6},
    "CuSO4·5H2O": {"Cu": 1, "S": 1, "O": 9, "H": 10},
    "CuSO4*5H2O": {"Cu": 1, "S": 1, "O": 9, "H": 10},
    "  SrTiO3 ": {"Sr": 1, "Ti": 1, "O": 3},
    "'NaCl'": {"Na": 1, "Cl": 1},
    "CoO": {"Co": 1, "O": 1},
    "CO": {"C": 1, "O": 1},
    "FeFe2O4": {"Fe": 3, "O": 4},
    "D2O": {"H": 2, "O": 1},
    "C6D6": {"C": 6, "H": 6},
}


@pytest.mark.parametrize("text", list(FORMS))
def test_every_form_is_read_with_the_amounts_as_written(text):
    got = parse_composition(text)
    expected = FORMS[text]
    assert list(got) == list(expected)  # order of first appearance
    for el, n in expected.items():
        assert got[el] == pytest.approx(n, rel=1e-12)


@pytest.mark.parametrize("text", [t for t in FORMS if "*" not in t and "·" not in t])
def test_parser_agrees_with_pymatgen(text):
    """pymatgen's Composition is the reference reader (it is not imported by pdfsg)."""
    ours = fractions(parse_composition(text))
    ref = Composition(text.strip().strip("'")).fractional_composition.get_el_amt_dict()
    assert set(ours) == set(ref)
    for el, f in ref.items():
        assert ours[el] == pytest.approx(f, abs=1e-9)


def test_hydrate_agrees_with_pymatgen_summed_parts():
    ours = fractions(parse_composition("CuSO4·5H2O"))
    ref = (Composition("CuSO4") + 5 * Composition("H2O")).fractional_composition
    for el, f in ref.get_el_amt_dict().items():
        assert ours[el] == pytest.approx(f, abs=1e-12)


def test_element_table_is_pymatgens_periodic_table():
    from pymatgen.core.periodic_table import Element

    assert len(ELEMENTS) == 118
    for z, symbol in enumerate(ELEMENTS, 1):
        assert Element(symbol).Z == z


def test_fractions_and_formatting():
    comp = parse_composition("La0.72Ca0.28MnO3")
    frac = fractions(comp)
    assert math.isclose(sum(frac.values()), 1.0)
    assert frac["O"] == pytest.approx(3 / 5)
    assert format_composition(comp) == "La0.72Ca0.28MnO3"
    assert format_composition(parse_composition("C 10 H 8")) == "C10H8"
    assert format_composition(parse_composition("Ti O2")) == "TiO2"
    assert format_composition({"Si": 0.9, "Ni": 0.1}) == "Si0.9Ni0.1"
    # PDFgetN tables give fractions: 0.6 O, 0.2 Mn, 0.2 La
    assert format_composition({"O": 0.6, "Mn": 0.2, "La": 0.2}) == "O0.6Mn0.2La0.2"


BAD = {
    "Xx2": "unknown element 'Xx'",
    "Ni-": "unexpected '-' at position 3",
    "": "composition is empty",
    "   ": "composition is empty",
    "Ni0": "amount of Ni is 0",
    "Ni0.0O": "amount of Ni is 0",
    "Ni-1": "negative amount of Ni",
    "Fe2O-3": "negative amount of O",
    "hello world": "'hello' is not an element symbol",
    "ni": "capitalised: Ni",
    "Ca(OH": "missing ')'",
    "Ca)2": "unmatched ')'",
    "(OH)0": "amount of (...) is 0",
    "12": "no element",
    "NaCl·": "no element",
    "Ni$": "unexpected '$'",
    "Au144(PET)60": "unknown element 'E'",
    "Dx2": "unknown element 'Dx'",
}


@pytest.mark.parametrize("text", list(BAD))
def test_unreadable_compositions_are_one_line_errors_naming_the_source(text):
    with pytest.raises(CompositionError) as info:
        parse_composition(text, source="--composition")
    msg = str(info.value)
    assert msg.startswith("--composition: ") and "\n" not in msg
    assert BAD[text] in msg
    assert isinstance(info.value, PdfsgError) and isinstance(info.value, ValueError)


def test_mappings_are_checked_like_formulas():
    assert as_composition({"Ni": 1}) == {"Ni": 1.0}
    assert as_composition("TiO2") == {"Ti": 1.0, "O": 2.0}
    for bad, fragment in (
        ({"Xx": 1}, "unknown element 'Xx'"),
        ({"Ni": 0}, "amount of Ni is 0"),
        ({"Ni": -1}, "amount of Ni is -1"),
        ({"Ni": float("nan")}, "amount of Ni is nan"),
        ({"Ni": "a"}, "not a number"),
        ({}, "non-empty"),
    ):
        with pytest.raises(CompositionError, match=fragment):
            as_composition(bad, "sample.gr")


def test_importing_the_module_does_not_import_pymatgen():
    code = "import sys, pdfsg.composition, pdfsg.io; print('pymatgen' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------- headers
# Short header snippets copied from real files (the files of ../shared/data/experimental,
# whose index.csv names the public source of each):
#   X3: diffpy/cmi_exchange cmi_scripts/fitNaClBVS/NaCl.gr (b76dda7), PDFgetX3 1.1
#   XGUI: EmilSkaaning/DeepStruc data/PDFs_experimental/Au144PET_100K-00000.gr (7b5088e)
#   XPDFSUITE: diffpy/diffpy.cmi docs/examples/pdf/ch03NiModelling/data/Pt-nanoparticles.gr
#   X2_*: diffpy/diffpy.pdfgui doc/tutorial/CdSe-bulk.gr (0cdf5e0), diffpy/diffpy.srfit
#         docs/examples/data/si90ni10-q27r60-xray.gr (ecd9e96), diffpy/diffpy.srmise
#         applications/examples/SrTiO3_qmax26.gr (af534c7)
#   N_*: diffpy/diffpy.pdfgui doc/tutorial/300K.gr and Ni-neutron.gr (0cdf5e0)
# The PDFgetN layout matches the writer in PDFgetN's own history code ("##### Sample
# Material     numElements=...", "Element relAtomNum atomMass atomCoherCS ...").

X3 = """[DEFAULT]

version = pdfgetx3-1.1.post2

# PDF calculation setup
mode = xray
wavelength = 0.21281
composition = NaCl
bgscale = 1
"""

XGUI = """# PDFgetXgui Configuration #
[PDF]
wavelength = 0.18597
mode = xray
bgscale = 0.9
composition = Au144 S60 C180
outputtype = gr
"""

XPDFSUITE = """# xPDFsuite Configuration #
[PDF]
wavelength = 0.1863
dataformat = Qnm
composition = Pt
outputtype = gr
"""

X2_CDSE = """##### Sample_Setup information    num_atoms=2
#L symbol valence fractions z user_f1 user_f2 user_macoef
  Cd    0.00   1.000000    48   0.000000   0.000000   0.001000
  Se    0.00   1.000000    34   0.000000   0.000000   0.001000
geometry=2    mut=0.20000000    numberdensity=0.0280000
"""

X2_SINI = """##### Sample_Setup information    num_atoms=2
#L symbol valence fractions z user_f1 user_f2 user_macoef
  Si    0.00   0.900000    14   0.000000   0.000000   0.001000
  Ni    0.00   0.100000    28   0.000000   0.000000   0.001000
geometry=2    mut=0.50000000    numberdensity=0.00600000
"""

X2_SRTIO3 = """##### Experiment_Setup
lambda=0.142479    energy=87.0198    polartype=2    polardegree=0.960000

##### Sample_Setup information    num_atoms=3
#L symbol valence fractions z user_f1 user_f2 user_macoef
  Sr    0.00   1.000000    38   0.000000   0.000000   0.001000
  Ti    0.00   1.000000    22   0.000000   0.000000   0.001000
   O    0.00   3.000000     8   0.000000   0.000000   0.001000
geometry=2    mut=0.50000000    numberdensity=0.00600000
"""

N_LAMNO3 = """##### Container     runCorrection=T
wallThick=0.023     atomDensity=0.072110
atomic information: scattCS=5.100     absorpCS=5.080

##### Sample Material     numElements=3     NormLaue=0.47445
Element relAtomNum atomMass atomCoherCS atomIncoherCS atomAbsorpCS
   O        0.6000   15.999      4.2320        0.0008      0.00019
  Mn        0.2000   54.931     -1.7500        0.4000     13.30000
  La        0.2000  138.905      8.5300        1.1300      8.97000
density=     effDensity=3.4138
"""

N_NI = """##### Sample Material     numElements=1     NormLaue=0.00000
Element relAtomNum atomMass atomCoherCS atomIncoherCS atomAbsorpCS
  Ni        1.0000   58.693     13.3000        5.2000      4.49000
density=2.934     effDensity=3.2444
"""

HEADERS = {
    "X3": (X3, "NaCl"),
    "XGUI": (XGUI, "Au144S60C180"),
    "XPDFSUITE": (XPDFSUITE, "Pt"),
    "X2_CDSE": (X2_CDSE, "CdSe"),
    "X2_SINI": (X2_SINI, "Si0.9Ni0.1"),
    "X2_SRTIO3": (X2_SRTIO3, "SrTiO3"),
    "N_LAMNO3": (N_LAMNO3, "O0.6Mn0.2La0.2"),
    "N_NI": (N_NI, "Ni"),
}


@pytest.mark.parametrize("name", list(HEADERS))
def test_real_header_snippets(name):
    header, formula = HEADERS[name]
    comp = composition_from_header(header, "sample.gr")
    assert comp is not None and format_composition(comp) == formula


def test_pdfgetn_fractions_are_the_parent_compound():
    comp = composition_from_header(N_LAMNO3)
    assert fractions(comp) == pytest.approx(fractions(parse_composition("LaMnO3")))


@pytest.mark.parametrize("value", ["Cd Se", "C 10 H 8", "Ir0.80Rh0.20Te2", "Ti O2", "In4Sn3O12"])
def test_pdfgetx3_line_in_every_form(value):
    header = X3.replace("composition = NaCl", f"composition = {value}")
    assert composition_from_header(header) == parse_composition(value)


def test_headers_without_a_composition():
    assert composition_from_header("") is None
    assert composition_from_header("[DEFAULT]\nmode = xray\ncomposition =\nqmax = 20\n") is None
    assert composition_from_header("#S 1 silicon\n#L r G(r)") is None
    # a Sample_Setup title whose table has another layout is not guessed at
    assert composition_from_header("##### Sample_Setup information\n#L a b c\n 1 2 3\n") is None
    # rows of a PDFgetX2 table with fraction 0 are unused
    assert composition_from_header(X2_CDSE.replace("1.000000    34", "0.000000    34")) == {
        "Cd": 1.0
    }


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("#S 1 silicon\n#L r G(r)", {"Si": 1.0}),
        ("#S 3 Nickel", {"Ni": 1.0}),
        ("#S 1 aluminum", {"Al": 1.0}),
        ("title=NaCl\nqmax=26", {"Na": 1.0, "Cl": 1.0}),
        ("# title: La0.7Ca0.3MnO3", {"La": 0.7, "Ca": 0.3, "Mn": 1.0, "O": 3.0}),
        ("#S 1 CdSe", {"Cd": 1.0, "Se": 1.0}),
    ],
)
def test_a_title_that_is_a_material_name_gives_the_composition(header, expected):
    composition, title = composition_from_title(header)
    assert composition == expected and title in header


@pytest.mark.parametrize(
    "header",
    [
        "title=X-ray PDF",  # PDFgetX2's default title
        "title=Ni at 300K with MAR345 Image Plate",  # free text, even if it starts with Ni
        "runTitle=Run 1018: LMO - RT (before), HIPPO-furnace",  # PDFgetN: not a title line
        "#S 1 BTO",  # abbreviations in capitals: B-T-O is not boron, tritium, oxygen
        "#S 1 YBCO",
        "#S 1 Sample 3",
        "title=In situ",
        "#S 1 TiO2 D2O",  # deuterium/tritium in a title: an abbreviation or a solvent
        "",
    ],
)
def test_titles_that_are_not_a_material_name_are_not_read(header):
    assert composition_from_title(header) is None


def test_unreadable_header_compositions_name_the_file():
    with pytest.raises(CompositionError, match=r"^run7\.gr: composition in the header: .*'Xx'"):
        composition_from_header(X3.replace("NaCl", "Xx2"), "run7.gr")
    with pytest.raises(CompositionError, match=r"^run7\.gr: fractions table .*'Qq'"):
        composition_from_header(X2_CDSE.replace("  Se ", "  Qq "), "run7.gr")
    with pytest.raises(CompositionError, match=r"^run7\.gr: relatomnum table .*-0\.2"):
        composition_from_header(N_LAMNO3.replace("0.2000   54", "-0.2000  54"), "run7.gr")


@pytest.mark.shared_data
def test_every_shared_file_header_matches_the_index(shared_data):
    """The composition read from each measured file's header is the one the index records
    (the experimenter's formula), up to normalisation; Si_cmi-ch05 has no composition in
    its header, only the title ``#S 1 silicon``, read as Si."""
    from pdfsg.io import read_pdf_file

    folder = shared_data / "experimental"
    with open(folder / "index.csv", newline="", encoding="utf-8") as fh:
        index = {row["file"]: row["composition"] for row in csv.DictReader(fh)}
    read = 0
    for name, formula in sorted(index.items()):
        m = read_pdf_file(folder / name)
        assert m.composition_warning is None, name
        assert m.composition_from == ("title" if name == "Si_cmi-ch05.gr" else "header"), name
        read += 1
        ours, theirs = m.composition, parse_composition(formula)
        if name.startswith("Au144"):  # the reduction used Au144 S60 C180, without hydrogen
            assert set(ours) < set(theirs) and ours["Au"] / ours["S"] == 144 / 60
            continue
        assert fractions(ours) == pytest.approx(fractions(theirs), abs=1e-9), name
    assert read == len(index)


# --------------------------------------------------------------------------- prediction
# The random logistic-regression model of conftest does not use composition; a thin wrapper
# around it that does (``uses_composition = True``) checks what a composition-aware model
# is given, without depending on a trained composition model.


class _CompositionAware:
    """The wrapped model's probabilities, all moved onto one label when a composition
    is given (so the test sees whether the composition reached the model)."""

    uses_composition = True

    def __init__(self, inner, favourite: int) -> None:
        from pdfsg.composition_vector import COMPOSITION_DIM

        self.composition_dim = COMPOSITION_DIM
        self.inner = inner
        self.favourite = list(inner.labels).index(favourite)
        self.seen: list = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def predict_proba(self, X, start=0, comp=None):
        import numpy as np

        self.seen.append(comp)
        proba = self.inner.predict_proba(X, start=start)
        if comp is None:
            return proba
        out = np.full_like(proba, 0.01)
        out[:, self.favourite] = 1 - 0.01 * (proba.shape[1] - 1)
        return out


@pytest.fixture(scope="module")
def predictor(random_logreg_model):
    from pdfsg.predict import Predictor

    return Predictor.load(random_logreg_model)


@pytest.fixture(scope="module")
def curve():
    from pdfsg.io import read_pdf_file
    from pdfsg.predict import example_files

    m = read_pdf_file(example_files()[0])
    return m.r, m.g


def _write(tmp_path, name, curve, **settings):
    from pdfsg.io import write_gr

    path = tmp_path / name
    write_gr(path, *curve, title=name, settings={"qmax": 25.0, **settings})
    return path


def test_header_composition_is_reported_and_a_g_only_model_says_it_ignores_it(
    predictor, curve, tmp_path
):
    import numpy as np

    every = len(predictor.labels)
    plain = predictor.predict_file(_write(tmp_path, "plain.gr", curve), top=every)
    path = _write(tmp_path, "tio2.gr", curve, composition="Ti O2")
    res = predictor.predict_file(path, top=every)
    ds = res.data_settings
    assert (ds["composition"], ds["composition_from"], ds["composition_used"]) == (
        "TiO2",
        "header",
        False,
    )
    assert ds["qmax_from"] == "header"  # the other settings are kept
    assert res.notes == [
        "ranked from G(r) alone (random-logreg does not use composition; "
        "TiO2 from the header was not used)"
    ]
    assert not any("composition" in w for w in res.warnings)
    # a G(r)-only model ranks exactly as without a composition
    assert [p.space_group for p in res.predictions] == [p.space_group for p in plain.predictions]
    np.testing.assert_array_equal(
        [p.probability for p in res.predictions], [p.probability for p in plain.predictions]
    )
    assert plain.data_settings["composition_from"] == "none"
    assert plain.data_settings["composition"] is None
    assert plain.notes == ["ranked from G(r) alone (random-logreg does not use composition)"]
    assert res.to_dict()["notes"] == res.notes


def test_option_overrides_the_header_and_accepts_a_mapping(predictor, curve, tmp_path):
    path = _write(tmp_path, "tio2.gr", curve, composition="TiO2")
    res = predictor.predict_file(path, composition="La0.72Ca0.28MnO3")
    assert res.data_settings["composition"] == "La0.72Ca0.28MnO3"
    assert res.data_settings["composition_from"] == "option"
    res = predictor.predict_file(path, composition={"Ni": 1})
    assert res.data_settings["composition"] == "Ni"
    res = predictor.predict(*curve, composition="Cd Se", source="cdse")
    assert (res.data_settings["composition"], res.data_settings["composition_from"]) == (
        "CdSe",
        "option",
    )


def test_unreadable_option_names_the_file_and_a_bad_header_is_only_a_warning(
    predictor, curve, tmp_path
):
    from pdfsg.errors import CompositionError

    path = _write(tmp_path, "bad.gr", curve, composition="Xx2")
    with pytest.raises(CompositionError, match=r"good\.gr: composition: cannot read 'Ni-'"):
        predictor.predict_file(_write(tmp_path, "good.gr", curve), composition="Ni-")
    with pytest.raises(CompositionError, match=r"^data: composition: .*amount of Ni is 0"):
        predictor.predict(*curve, composition="Ni0")
    res = predictor.predict_file(path)
    assert res.predictions and res.data_settings["composition_from"] == "none"
    (warning,) = [w for w in res.warnings if "composition" in w]
    assert warning.startswith(f"{path}: composition in the header: cannot read 'Xx2'")
    assert warning.endswith("ranked without it")
    # the option replaces the unreadable header: no warning then
    res = predictor.predict_file(path, composition="TiO2")
    assert res.data_settings["composition_from"] == "option"
    assert not any("composition" in w for w in res.warnings)


def test_a_composition_aware_model_gets_the_encoded_composition(predictor, curve, tmp_path):
    import numpy as np

    from pdfsg.composition_vector import COMPOSITION_DIM, encode
    from pdfsg.predict import Predictor

    aware = _CompositionAware(predictor.models[0], favourite=225)
    p = Predictor([aware], name="aware")
    every = len(predictor.labels)
    unknown = p.predict(*curve, source="x.gr", top=every)
    assert aware.seen[-1] is None
    assert unknown.data_settings["composition_used"] is False
    assert unknown.notes == ["ranked from G(r) alone: no composition known (the model can use one)"]
    direct = predictor.predict(*curve, top=every)
    assert unknown.predictions == direct.predictions

    res = p.predict_file(_write(tmp_path, "nacl.gr", curve, composition="NaCl"))
    comp = aware.seen[-1]
    assert comp.shape == (1, COMPOSITION_DIM) and comp.dtype == np.float32
    np.testing.assert_array_equal(comp[0], encode({"Na": 0.5, "Cl": 0.5}))
    assert res.predictions[0].space_group == 225
    assert res.predictions[0].probability == pytest.approx(1 - 0.01 * (len(aware.labels) - 1))
    assert res.data_settings["composition_used"] is True
    assert res.notes == ["ranked from G(r) and the composition NaCl (from the header)"]
    # amounts are normalised before encoding: Na2Cl2 reads as NaCl
    p.predict(*curve, composition="Na2Cl2")
    np.testing.assert_array_equal(aware.seen[-1], comp)


def test_composition_false_ignores_the_header(predictor, curve, tmp_path, capsys):
    from pdfsg.cli import main
    from pdfsg.predict import Predictor

    aware = _CompositionAware(predictor.models[0], favourite=225)
    p = Predictor([aware], name="aware")
    path = _write(tmp_path, "nacl.gr", curve, composition="NaCl")
    res = p.predict_file(path, composition=False)
    assert aware.seen[-1] is None
    assert res.data_settings["composition_from"] == "none"
    assert res.predictions[0].space_group != 225 or res.predictions[0].probability < 0.9
    (res2,) = p.predict_many([path], composition=False)
    assert res2.data_settings["composition_from"] == "none"
    assert main(["predict", str(path), "--no-composition", "--composition", "Ni"]) == 2
    assert "exclude each other" in capsys.readouterr().err


def test_an_element_the_encoder_does_not_know_is_a_one_line_error(predictor, curve):
    from pdfsg.errors import CompositionError
    from pdfsg.predict import Predictor

    p = Predictor([_CompositionAware(predictor.models[0], favourite=225)])
    with pytest.raises(CompositionError, match=r"^og\.gr: composition Og: ") as info:
        p.predict(*curve, composition="Og", source="og.gr")
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- CLI


def test_cli_bad_composition_option_is_refused_up_front(random_logreg_model, tmp_path, capsys):
    from pdfsg.cli import main

    code = main(["predict", "--model", str(tmp_path / "no-model"), "x.gr", "--composition", "Xx2"])
    assert code == 2
    out, err = capsys.readouterr()
    assert out == ""  # before the model is loaded or a file read
    assert err == "pdfsg predict: error: --composition: cannot read 'Xx2': unknown element 'Xx'\n"
    assert main(["predict", "--model", str(random_logreg_model), "x.gr", "--composition", ""]) == 2
    assert "--composition: composition is empty" in capsys.readouterr().err


def test_cli_shows_the_composition_in_table_json_and_csv(
    random_logreg_model, curve, tmp_path, capsys
):
    import json

    from pdfsg.cli import main

    header = _write(tmp_path, "cdse.gr", curve, composition="Cd Se")
    bad = _write(tmp_path, "bad.gr", curve, composition="Cd Se-")
    plain = _write(tmp_path, "plain.gr", curve)
    base = ["predict", "--model", str(random_logreg_model), str(header), str(bad), str(plain)]

    assert main([*base, "--format", "json"]) == 0  # a bad header is no failure
    a, b, c = json.loads(capsys.readouterr().out)
    assert (a["data_settings"]["composition"], a["data_settings"]["composition_from"]) == (
        "CdSe",
        "header",
    )
    assert b["predictions"] and b["data_settings"]["composition_from"] == "none"
    assert any("composition in the header: cannot read 'Cd Se-'" in w for w in b["warnings"])
    assert c["data_settings"]["composition"] is None
    assert all("G(r) alone" in r["notes"][0] for r in (a, b, c))

    assert main([*base, "--composition", "In1.9Sn0.1O3", "--format", "csv"]) == 0
    rows = list(csv.DictReader(capsys.readouterr().out.splitlines()))
    assert {(r["composition"], r["composition_from"]) for r in rows} == {("In1.9Sn0.1O3", "option")}
    assert len(rows) == 3 * 6

    assert main([*base[:4], "--top", "2"]) == 0
    table = capsys.readouterr().out
    assert "   composition: CdSe (from the header)\n" in table
    assert "   note: ranked from G(r) alone (random-logreg does not use composition; " in table


def test_a_real_composition_branch_network_is_fed_through_the_predictor(curve):
    """An (untrained) pdfsg-net with the composition branch, as the lead's models are built:
    the Predictor's ranking is the network's own output for encode(fractions), and a
    different composition gives different numbers."""
    torch = pytest.importorskip("torch")
    import numpy as np

    from pdfsg.composition_vector import COMPOSITION_DIM, encode
    from pdfsg.models import NetClassifier
    from pdfsg.models.cnn import PdfsgNetConfig, build_network
    from pdfsg.params import PdfParams
    from pdfsg.predict import Predictor
    from pdfsg.preprocess import prepare_input

    labels = (2, 14, 62, 136, 194, 225)
    cfg = PdfsgNetConfig(
        n_classes=len(labels),
        stem_channels=8,
        stages=((8, 2, 1), (8, 2, 1)),
        composition_dim=COMPOSITION_DIM,
        composition_hidden=8,
    )
    torch.manual_seed(0)
    net = build_network("pdfsg-net", cfg).eval()
    params = PdfParams()
    clf = NetClassifier("pdfsg-net", labels, params, cfg.to_dict(), [net], manifest={"name": "n"})
    assert clf.uses_composition
    p = Predictor([clf])
    every = len(labels)

    prepared = prepare_input(*curve, params, qmax_data=None, source="x")
    x, start = prepared.x[None, :], prepared.start_index

    def ranked(res):
        return {g.space_group: g.probability for g in res.predictions}

    nacl = p.predict(*curve, composition="NaCl", top=every)
    expected = clf.predict_proba(x, start=start, comp=encode({"Na": 0.5, "Cl": 0.5})[None, :])[0]
    assert ranked(nacl) == pytest.approx(dict(zip(labels, expected.tolist(), strict=True)))
    assert nacl.data_settings["composition_used"] is True

    unknown = p.predict(*curve, top=every)
    expected = clf.predict_proba(x, start=start, comp=None)[0]
    assert ranked(unknown) == pytest.approx(dict(zip(labels, expected.tolist(), strict=True)))

    ni = p.predict(*curve, composition="Ni", top=every)
    diff = max(abs(ranked(ni)[sg] - ranked(nacl)[sg]) for sg in labels)
    assert diff > 1e-4
    assert np.isclose(sum(ranked(ni).values()), 1.0)
