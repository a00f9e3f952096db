"""Check the model's top space groups against the data: refine candidate structures.

``refine_prediction(prediction, r, g)`` finds candidate structures of the sample's
composition in the model's top groups (the user's CIFs, a structure library, classic
prototypes), refines each with diffpy.pdffit2 and ranks the groups by fit combined with
the model's probability.  Modules:

``library``     build / read / write structure library files
``candidates``  candidates of a composition in given groups
``fit``         one pdffit2 refinement with a time bound
``rank``        the combined ranking
``pipeline``    the whole check, CIF and plot output
"""

from __future__ import annotations

from pdfsg.refine.fit import Candidate, CandidateFit, FitSettings
from pdfsg.refine.library import LibraryError, StructureLibrary, build_library, read_library
from pdfsg.refine.pipeline import (
    RefinementResult,
    plot_fit,
    refine_prediction,
    write_best_cif,
)
from pdfsg.refine.rank import TAU, GroupScore, combine

__all__ = [
    "TAU",
    "Candidate",
    "CandidateFit",
    "FitSettings",
    "GroupScore",
    "LibraryError",
    "RefinementResult",
    "StructureLibrary",
    "build_library",
    "combine",
    "plot_fit",
    "read_library",
    "refine_prediction",
    "write_best_cif",
]
