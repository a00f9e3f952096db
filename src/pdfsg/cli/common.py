"""Argument helpers shared by subcommands (the PdfParams flags of ``simulate`` and ``dataset``)."""

from __future__ import annotations

import argparse
import dataclasses

from pdfsg.params import RADIATIONS, PdfParams

#: flag -> (PdfParams field, help text with units)
PDF_PARAM_FLAGS: dict[str, tuple[str, str]] = {
    "--rmin": ("rmin", "first r point [Å]"),
    "--rmax": ("rmax", "upper end of the r grid [Å]"),
    "--rstep": ("rstep", "r grid spacing [Å]"),
    "--qmin": ("qmin", "low-Q cut of the transform [1/Å]"),
    "--qmax": ("qmax", "high-Q cut (termination ripples) [1/Å]"),
    "--qdamp": ("qdamp", "instrumental resolution damping [1/Å]"),
    "--qbroad": ("qbroad", "resolution peak broadening [1/Å]"),
    "--uiso": ("uiso", "isotropic displacement parameter of every atom [Å²]"),
    "--delta2": ("delta2", "correlated-motion peak sharpening [Å²]"),
}


def add_pdf_params_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one flag per :class:`~pdfsg.params.PdfParams` field (default: the paper's value)."""
    defaults = PdfParams()
    group = parser.add_argument_group(
        "PDF settings", "default: the paper's Table 2 (X-ray, Qmin 0.5, Qmax 23, r 1.5-30 Å)"
    )
    for flag, (name, text) in PDF_PARAM_FLAGS.items():
        group.add_argument(
            flag,
            dest=f"pdf_{name}",
            type=float,
            default=None,
            metavar="X",
            help=f"{text} (default {getattr(defaults, name):.6g})",
        )
    group.add_argument(
        "--radiation",
        dest="pdf_radiation",
        choices=RADIATIONS,
        default=None,
        help=f"scattering weights (default {defaults.radiation})",
    )


def pdf_params_from_args(args: argparse.Namespace, base: PdfParams | None = None) -> PdfParams:
    """The PdfParams of parsed arguments: ``base`` (default ``PdfParams()``) with the flags
    that were given changed.  Raises :class:`~pdfsg.errors.ParamsError` on bad values."""
    base = base or PdfParams()
    changes = {}
    for field in dataclasses.fields(PdfParams):
        value = getattr(args, f"pdf_{field.name}", None)
        if value is not None:
            changes[field.name] = value
    return base.replace(**changes) if changes else base
