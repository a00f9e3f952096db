"""pdfsg: rank crystallographic space groups from an atomic pair distribution function G(r).

The data path is structure -> PDF -> dataset -> model -> prediction; each arrow is a
function of this package (see the modules' docstrings). Importing ``pdfsg`` is cheap: heavy
dependencies (pymatgen, torch, dask) are imported inside the functions that need them.
"""

from pdfsg.errors import PdfsgError
from pdfsg.params import PdfParams

__version__ = "0.1.0"

__all__ = ["PdfParams", "PdfsgError", "__version__"]
