"""Tests of pdfsg.io.read_pdf_file: formats, header metadata, and one-line errors."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import numpy as np
import pytest

from pdfsg.errors import PdfFileError
from pdfsg.io import MeasuredPDF, read_pdf_file

R = np.round(np.arange(0.0, 20.0001, 0.05), 2)


def g_of(r: np.ndarray) -> np.ndarray:
    """A G(r)-like test curve: negative baseline at low r, damped oscillations above."""
    return np.round(np.sin(2.3 * r) * np.exp(-0.05 * r) * (r > 1.8) - 0.4 * r * (r < 1.8), 6)


def rows(*cols: np.ndarray, sep: str = " ") -> str:
    return "\n".join(sep.join(f"{v:g}" for v in vals) for vals in zip(*cols, strict=True)) + "\n"


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def check_curve(m: MeasuredPDF, r: np.ndarray = R) -> None:
    np.testing.assert_allclose(m.r, r)
    np.testing.assert_allclose(m.g, g_of(r), atol=1e-6)


# --------------------------------------------------------------------------- formats

PDFGETX3_HEADER = """[DEFAULT]

version = pdfgetx3-1.1

# input and output specifications
dataformat = twotheta
inputfile = sample.chi
outputtype = gr

# PDF calculation setup
mode = xray
wavelength = 0.21281
composition = NaCl
qmaxinst = 23
qmin = 0.01
qmax = 21
rmin = 0.0
rmax = 20
rstep = 0.05

# End of config --------------------------------------------------------------

#### start data
#S 1
#L r($\\AA$)  G($\\AA^{-2}$)
"""


def test_pdfgetx3(tmp_path):
    m = read_pdf_file(write(tmp_path, "x3.gr", PDFGETX3_HEADER + rows(R, g_of(R))))
    check_curve(m)
    assert (m.qmax, m.qdamp, m.radiation, m.source_format) == (21.0, None, "xray", "pdfgetx3")
    assert m.dg is None
    assert "qmaxinst" in m.header and "0.05 " not in m.header


def test_header_composition_is_read_and_a_bad_one_is_not_fatal(tmp_path):
    m = read_pdf_file(write(tmp_path, "x3.gr", PDFGETX3_HEADER + rows(R, g_of(R))))
    assert m.composition == {"Na": 1.0, "Cl": 1.0} and m.composition_warning is None
    bad = PDFGETX3_HEADER.replace("composition = NaCl", "composition = Xx2")
    m = read_pdf_file(write(tmp_path, "bad.gr", bad + rows(R, g_of(R))))
    check_curve(m)
    assert m.composition is None
    assert m.composition_warning.startswith(f"{tmp_path / 'bad.gr'}: composition in the header")
    assert "unknown element 'Xx'" in m.composition_warning
    m = read_pdf_file(write(tmp_path, "x2.gr", PDFGETX2_HEADER + rows(R[1:], g_of(R[1:]))))
    assert m.composition == {"Ni": 1.0}
    m = read_pdf_file(write(tmp_path, "plain.gr", rows(R, g_of(R))))
    assert (m.composition, m.composition_warning) == (None, None)


def test_xpdfsuite_qmaxinst_only_and_neutron_mode(tmp_path):
    header = (
        "# xPDFsuite Configuration #\n[PDF]\nwavelength = 0.1863\nmode = neutron\n"
        "qmaxinst = 25.0\nqmin = 0.1\n\n#### start data\n#S 1\n#L r($\\AA$)  G($\\AA^{-2}$)\n"
    )
    m = read_pdf_file(write(tmp_path, "np.gr", header + rows(R, g_of(R))))
    check_curve(m)
    assert (m.qmax, m.radiation, m.source_format) == (25.0, "neutron", "xpdfsuite")


PDFGETX2_HEADER = """History written: Mon May 10 09:51:01 2004
####### Get_XPDF #######
##### General_Setting
title=X-ray PDF
sourcedir=/usr/local/pdfgetx2/
det#  used  xcol detcol deterrcol xmin  xmax
  0    1    0    1    3    0.700000    38.2000
##### Sample_Setup information    num_atoms=1
#L symbol valence fractions z
  Ni    0.00   1.000000    28
multiscat_isa=1    xraypolar_isa=1
##### SqGr_Optimization Setup
## S(q)  qmin=0.600000    qmax=14.000000    qgrid=0.000000
optqmin=20.0000    optqmax=40.0000    optqgrid=0.00000
##### start data
#F sample.gr
#C
#S 1    G(r)
#L r(A)    G(r)    d_r    d_Gr
"""


def test_pdfgetx2_four_columns(tmp_path):
    r = R[1:]
    body = rows(r, g_of(r), -0.07 * r, 0.01 + 0.001 * r)
    m = read_pdf_file(write(tmp_path, "x2.gr", PDFGETX2_HEADER + body))
    check_curve(m, r)
    np.testing.assert_allclose(m.dg, 0.01 + 0.001 * r)
    assert (m.qmax, m.radiation, m.source_format) == (14.0, "xray", "pdfgetx2")


PDFGETN_HEADER = """History written: Mon Apr 30 17:19:28 2007
##### Run Information     runCorrection=T
prep=gsas     machine=gppd
##### Banks=6  deltaQ=0.02  matchRef=0
bank   angle   blendQmin   blendQmax       (0.0 means no info)
  1    145.0        2.59    37.00
  2    125.0        2.42    34.41
##### Program Specific Information
numRpoints=2000     maxR=20.0     numDensity=0.0   intMaxR=1.5
## Damp     Qmin=0.95     Qmax=27.00     startDampQ=27.00    QAveMin=0.6
##### start data
#O0 rg_int sig_rg_int low_int sig_low_int rmax rhofit
#S 1 - PDF from PDFgetN
#P0    3.63025    7.56024    0.15089    0.23482    1.50  0.0744
#L r G(r) dr dG(r)
"""


def test_pdfgetn(tmp_path):
    r = R[1:]
    body = rows(r, g_of(r), 0 * r, 0.1 + 0 * r)
    m = read_pdf_file(write(tmp_path, "n.gr", PDFGETN_HEADER + body))
    check_curve(m, r)
    assert (m.qmax, m.radiation, m.source_format) == (27.0, "neutron", "pdfgetn")


def test_pdfgetx_2_and_mantid_dialects(tmp_path):
    x = "[DEFAULT]\n\nversion = diffpy.pdfgetx-2.2.1\n\nmode = xray\nqmaxinst = 34.2\nqmax = 28\n"
    x += "\n#### start data\n#S 1\n#L r(Å)  G(Å$^{-2}$)\n"
    m = read_pdf_file(write(tmp_path, "x.gr", x + rows(R, g_of(R))))
    check_curve(m)
    assert (m.qmax, m.radiation, m.source_format) == (28.0, "xray", "pdfgetx3")
    n = "#Comment: neutron, Qmin=0.910607, Qmax=34.9906, Qdamp=0.017659, Qbroad= 0.0191822\n"
    n += "##### start data\n#S 1 - PDF from Mantid 6.10.0.1\n#L r G(r) dr dG(r)\n"
    m = read_pdf_file(write(tmp_path, "m.gr", n + rows(R, g_of(R), 0 * R, 0.03 + 0 * R)))
    check_curve(m)
    assert (m.qmax, m.qdamp, m.radiation, m.source_format) == (
        34.9906,
        0.017659,
        "neutron",
        "mantid",
    )


def test_pdfgui_fgr_and_cgr(tmp_path):
    fgr = (
        "History written: Tue Jan  6 12:00:00 2026\nproduced by test\n##### PDFgui fit\n"
        "stype=N  neutron scattering\nqmax=25.00\nqdamp=0.005\nqbroad=0.02\ndscale=0.08\n"
        "##### start data\n#L r(A) G(r) d_r d_Gr Gdiff\n"
    )
    body = rows(R, g_of(R), 0 * R, 0.02 + 0 * R, 0.3 + 0 * R)
    m = read_pdf_file(write(tmp_path, "fit.fgr", fgr + body))
    check_curve(m)
    np.testing.assert_allclose(m.dg, 0.02)
    assert (m.qmax, m.qdamp, m.radiation, m.source_format) == (25.0, 0.005, "neutron", "pdfgui")

    cgr = (
        "History written: now\nproduced by test\n##### PDFgui calculation\n"
        "stype=X  x-ray scattering\npctype=PC  real space PDF calculator\n"
        "qmax=0   correction not applied\nqmin=0\nqdamp=0.01\n##### start data\n#L r(A) G(r)\n"
    )
    m = read_pdf_file(write(tmp_path, "calc.cgr", cgr + rows(R, g_of(R))))
    check_curve(m)
    assert (m.qmax, m.qdamp, m.radiation) == (None, 0.01, "xray")


@pytest.mark.parametrize(
    "name, text",
    [
        ("two.gr", rows(R, g_of(R))),
        ("tabs.txt", rows(R, g_of(R), sep="\t")),
        ("comma.csv", "r,G\n" + rows(R, g_of(R), sep=",")),
        ("comma_noheader.csv", rows(R, g_of(R), sep=", ")),
        ("semicolon.csv", "# r;G\n" + rows(R, g_of(R), sep=";")),
        ("crlf.dat", ("# r G\n" + rows(R, g_of(R))).replace("\n", "\r\n")),
        ("named.xy", "r G dG\n" + rows(R, g_of(R), 0.01 + 0 * R)),
        ("count.xy", f"{R.size}\n" + rows(R, g_of(R))),
        ("units.csv", "r (A), G (A^-2)\n" + rows(R, g_of(R), sep=", ")),
        ("quoted.csv", '"r","G"\n' + '"' + rows(R, g_of(R), sep='","').replace("\n", '"\n"')[:-1]),
    ],
)
def test_plain_text(tmp_path, name, text):
    m = read_pdf_file(write(tmp_path, name, text))
    check_curve(m)
    assert m.qmax is None and m.radiation is None
    assert m.source_format == ("csv" if name.endswith(".csv") else "text")


def test_utf16_text(tmp_path):
    m = read_pdf_file(
        write(tmp_path, "u16.gr", ("# qmax = 20\n" + rows(R, g_of(R))).encode("utf-16"))
    )
    check_curve(m)
    assert m.qmax == 20.0


def test_three_columns_are_r_g_dg(tmp_path):
    m = read_pdf_file(write(tmp_path, "three.gr", rows(R, g_of(R), 0.05 + 0 * R)))
    check_curve(m)
    np.testing.assert_allclose(m.dg, 0.05)


def test_comments_blank_lines_fortran_and_mixed_widths(tmp_path):
    lines = [f"{r:.8E}  {g:.8E}" for r, g in zip(R[:200], g_of(R[:200]), strict=True)]
    lines.insert(50, "")
    lines.insert(100, "# a comment in the data")
    lines[10] = lines[10].replace("E", "D")  # Fortran double-precision exponent
    lines[20] += "   # trailing comment"
    lines += [f" {r:.6f}  {g:.8E}  0.0  0.0" for r, g in zip(R[200:], g_of(R[200:]), strict=True)]
    m = read_pdf_file(write(tmp_path, "mixed.gr", "#S 1 silicon\n#L r G(r)\n" + "\n".join(lines)))
    check_curve(m)
    assert m.dg is None  # only some rows have a dG, and it is 0 there


def test_a_title_naming_the_material_gives_the_composition_when_the_header_has_none(tmp_path):
    m = read_pdf_file(write(tmp_path, "si.gr", "#S 1 silicon\n#L r G(r)\n" + rows(R, g_of(R))))
    assert (m.composition, m.composition_from) == ({"Si": 1.0}, "title")
    m = read_pdf_file(write(tmp_path, "x3.gr", PDFGETX3_HEADER + rows(R, g_of(R))))
    assert (m.composition, m.composition_from) == ({"Na": 1.0, "Cl": 1.0}, "header")
    m = read_pdf_file(write(tmp_path, "plain.gr", "#S 1 scan 7\n#L r G(r)\n" + rows(R, g_of(R))))
    assert (m.composition, m.composition_from) == (None, None)


def test_named_columns_decide_which_is_g(tmp_path):
    text = "#L r dG G\n" + rows(R, 0.01 + 0 * R, g_of(R))
    m = read_pdf_file(write(tmp_path, "order.gr", text))
    check_curve(m)
    np.testing.assert_allclose(m.dg, 0.01)


def test_r_in_nanometres_is_converted(tmp_path):
    text = "#L r(nm) G(nm^-2)\n" + rows(R / 10, g_of(R) * 100)
    m = read_pdf_file(write(tmp_path, "nm.gr", text))
    check_curve(m)


@pytest.mark.parametrize(
    "header, qmax, qdamp, radiation",
    [
        ("# radiation = neutron\n# Qmax=27.00\n", 27.0, None, "neutron"),
        ("Source: neutron\nqmax: 30\nQdamp = 0.04\n", 30.0, 0.04, "neutron"),
        ("# X-ray PDF\n# Qmax (1/nm) = 250\n", 25.0, None, "xray"),
        ("# measured at a synchrotron, q_max = 24.5 1/A\n", 24.5, None, "xray"),
        ("# wavelength = 0.1665\n", None, None, "xray"),
        ("# x-ray and neutron data combined\n", None, None, None),
        ("# sourcedir=/opt/x\n# optqmax=40 blendQmax\n", None, None, None),
    ],
)
def test_header_metadata(tmp_path, header, qmax, qdamp, radiation):
    m = read_pdf_file(write(tmp_path, "h.gr", header + rows(R, g_of(R))))
    assert (m.qmax, m.qdamp, m.radiation) == (qmax, qdamp, radiation)
    check_curve(m)


# --------------------------------------------------------------------------- bad input


def raises_one_line(path: Path | str, pattern: str) -> str:
    with pytest.raises(PdfFileError) as info:
        read_pdf_file(path)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: "), msg
    assert re.search(pattern, msg), msg
    return msg


def test_missing_file_and_directory(tmp_path):
    raises_one_line(tmp_path / "nope.gr", "file not found")
    raises_one_line(tmp_path, "directory")


def test_empty_and_blank_files(tmp_path):
    raises_one_line(write(tmp_path, "empty.gr", ""), "empty")
    raises_one_line(write(tmp_path, "blank.gr", "\n  \n\t\n"), "empty")
    raises_one_line(write(tmp_path, "header.gr", "# qmax = 25\n#### start data\n"), "no numeric")
    raises_one_line(write(tmp_path, "words.gr", "hello world\nthis is text\n"), "no numeric")


def test_binary_file(tmp_path):
    blob = bytes(range(256)) * 8
    raises_one_line(write(tmp_path, "blob.gr", blob), "binary")
    raises_one_line(write(tmp_path, "ctrl.gr", "\x01\x02\x03\x04 1 2\n" * 20), "binary")


def test_nan_and_inf(tmp_path):
    g = g_of(R)
    g[30] = np.nan
    raises_one_line(write(tmp_path, "nan.gr", rows(R, g)), r"G is nan at line 31")
    r = R.copy()
    r[5] = np.inf
    raises_one_line(write(tmp_path, "inf.gr", "#L r G\n" + rows(r, g_of(R))), r"r is inf at line 7")


def test_r_not_increasing_names_the_line(tmp_path):
    r = R.copy()
    r[[55, 56]] = r[[56, 55]]
    msg = raises_one_line(write(tmp_path, "data.gr", rows(r, g_of(R))), "not increasing")
    assert msg == f"{tmp_path / 'data.gr'}: r is not increasing at line 57"
    r = R.copy()
    r[100] = r[99]
    msg = raises_one_line(write(tmp_path, "dup.gr", rows(r, g_of(R))), "duplicated r")
    assert msg.endswith("dup.gr: duplicated r = 4.95 at line 101 (also at line 100)")
    raises_one_line(write(tmp_path, "desc.gr", rows(R[::-1], g_of(R))), "not increasing at line 2")


def test_gzip_files_are_read_by_suffix_and_by_content(tmp_path):
    import gzip

    text = "# qmax = 24.5\n#L r G\n" + rows(R, g_of(R))
    packed = gzip.compress(text.encode())
    for name in ("x.gr.gz", "renamed.gr", "no_suffix"):
        m = read_pdf_file(write(tmp_path, name, packed))
        check_curve(m)
        assert m.qmax == 24.5
    raises_one_line(write(tmp_path, "cut.gr.gz", packed[: len(packed) // 2]), "gzip-compressed")
    # a compressed reciprocal-space file is still refused by its inner suffix
    raises_one_line(write(tmp_path, "a.iq.gz", gzip.compress(rows(R, g_of(R)).encode())), "recip")


def test_header_value_of_a_series_file(tmp_path):
    import gzip

    from pdfsg.io import read_header_value

    text = "# Temperature = 305.5 K\n# qmax = 24\n" + rows(R, g_of(R))
    assert read_header_value(write(tmp_path, "a.gr", text), "temperature") == 305.5
    assert read_header_value(write(tmp_path, "b.gr.gz", gzip.compress(text.encode())), "qmax") == 24
    assert read_header_value(write(tmp_path, "c.gr", rows(R, g_of(R))), "temperature") is None


def test_negative_r(tmp_path):
    raises_one_line(write(tmp_path, "neg.gr", rows(R - 1.0, g_of(R))), r"r is negative .* line 1")


def test_single_column(tmp_path):
    raises_one_line(write(tmp_path, "one.gr", rows(g_of(R))), "one numeric column")
    lines = rows(R, g_of(R)).splitlines()
    lines[40] = lines[40].split()[0]
    raises_one_line(write(tmp_path, "short.gr", "\n".join(lines)), "line 41 has 1 value")


def test_g_in_wrong_column(tmp_path):
    # r, dr (constant), G
    raises_one_line(
        write(tmp_path, "rdrg.gr", rows(R, 0 * R, g_of(R))), "column 2 is constant.*column 3"
    )
    # r, dG (positive, tiny), G
    raises_one_line(
        write(tmp_path, "rdgg.gr", rows(R, 1e-3 + 1e-4 * R, g_of(R))),
        "column 2 never changes sign.*column 3",
    )
    # r, g(r) >= 0: not a reduced PDF
    raises_one_line(write(tmp_path, "gofr.gr", rows(R, 1 + g_of(R) ** 2)), "never negative")
    # G constant
    raises_one_line(write(tmp_path, "flat.gr", "#L r G\n" + rows(R, 0 * R + 2)), "constant")


def test_corrupt_line_inside_data(tmp_path):
    lines = rows(R, g_of(R)).splitlines()
    lines[120] = "0.6 garbage"
    raises_one_line(write(tmp_path, "corrupt.gr", "\n".join(lines)), "line 121 .* not numeric")


def test_reciprocal_space_file(tmp_path):
    q = np.linspace(0.5, 25, 100)
    raises_one_line(write(tmp_path, "fq.gr", "#L Q F(Q)\n" + rows(q, np.sin(q))), "not G")
    raises_one_line(write(tmp_path, "data.fq", rows(q, np.sin(q))), "reciprocal-space")


# --------------------------------------------------------------------------- shared data


def _index_qmax(notes: str) -> float | None:
    m = re.search(r"header_qmax=([^;]+);", notes)
    if m is None or m.group(1).strip() == "n/a":
        return None
    return float(m.group(1))


@pytest.mark.shared_data
def test_every_shared_experimental_file(shared_data):
    folder = shared_data / "experimental"
    with open(folder / "index.csv", newline="", encoding="utf-8") as fh:
        index = {row["file"]: row for row in csv.DictReader(fh)}
    files = sorted(folder.glob("*.gr"))
    assert files
    for path in files:
        m = read_pdf_file(path)
        assert m.r.size > 500 and m.r.size == m.g.size, path.name
        assert 0 <= m.r[0] < 1.0 and m.r[-1] >= 19.9, path.name
        assert np.all(np.diff(m.r) > 0) and np.isfinite(m.g).all(), path.name
        assert m.g.min() < 0 < m.g.max(), path.name
        assert m.radiation in ("xray", "neutron", None)
        if path.name in index:
            expected = _index_qmax(index[path.name]["notes"])
            if expected is None:
                assert m.qmax is None, path.name
            else:
                assert m.qmax is not None and math.isclose(m.qmax, expected), path.name
