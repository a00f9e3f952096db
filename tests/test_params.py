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


def test_the_point_cap_allows_fine_measured_grids():
    fine = PdfParams(rmin=0.01, rmax=29.99, rstep=0.001)
    assert fine.npoints == 29_981 <= MAX_NPOINTS
    with pytest.raises(ParamsError, match=r"gives 3\.6e\+04 r points .* more than 30,000"):
        PdfParams(rmin=0.0, rmax=36.0, rstep=0.001)
