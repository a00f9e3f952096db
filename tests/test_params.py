"""PdfParams validation: typed errors that name the field, and a cap on absurd grids."""

from __future__ import annotations

import pytest

from pdfsg.errors import ParamsError
from pdfsg.params import MAX_NPOINTS, PdfParams


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"rstep": 1e-7}, "rstep"),  # 2.85e8 points: used to try to allocate 7.9 TiB
        ({"rstep": 0.0}, "rstep"),
        ({"rmax": 1e4}, "rmax"),
        ({"qmax": -5.0}, "qmax"),
        ({"qdamp": -1.0}, "qdamp"),
        ({"qmin": 30.0}, "qmin"),
        ({"radiation": "electron"}, "radiation"),
    ],
)
def test_bad_settings_are_typed_and_name_the_field(changes, field):
    with pytest.raises(ParamsError) as info:
        PdfParams(**changes)
    assert info.value.field == field and info.value.subject == f"PdfParams.{field}"
    assert str(info.value).startswith(f"PdfParams.{field} ") and "\n" not in str(info.value)


def test_the_caps_allow_fine_measured_grids_and_refuse_what_would_not_fit():
    assert PdfParams(rmin=0.01, rmax=29.99, rstep=0.003).npoints == 9_994 <= MAX_NPOINTS
    assert PdfParams(rmin=0.01, rmax=75.0, rstep=0.01).npoints == 7_500
    with pytest.raises(ParamsError, match=r"gives 1\.1e\+04 r points .* more than 10,000"):
        PdfParams(rmin=0.0, rmax=22.0, rstep=0.002)
    with pytest.raises(ParamsError) as info:  # 9,851 points to 100 Å
        PdfParams(rmin=1.5, rmax=100.0, rstep=0.01)
    assert info.value.field == "rstep"
    assert "9,851 r points up to rmax 100 Å, which would need about 7.4 GB" in str(info.value)
