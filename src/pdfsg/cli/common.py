"""Argument helpers shared by subcommands: the PdfParams flags of ``simulate`` and
``dataset``, option names in error messages, and the one rule for output paths.

Output paths (:func:`check_output_path`)
    Every option that names a file to write (``predict -o`` and ``--plot``, ``simulate -o``,
    ``evaluate --json`` and ``--report``, ``dataset ... -o``, ``train --out``...) is checked
    before any work is done, and the rule is the same everywhere: the folder the file goes
    into must already exist; pdfsg never creates missing parent folders.  The one exception
    is an option whose value *is* a folder that the command fills (``simulate -o pdfs/``,
    ``evaluate --report DIR``, ``train --out DIR``): that folder is created, but its own
    parent must exist.  A path that breaks the rule is a one-line error naming the option
    (exit code 2), e.g. ``-o: folder /nonexistent does not exist (for /nonexistent/x.json)``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

from pdfsg.errors import ParamsError, PdfsgError
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
    try:
        return base.replace(**changes) if changes else base
    except ParamsError as exc:
        raise option_error(exc) from None


def option_error(exc: ParamsError, options: dict[str, str] | None = None) -> PdfsgError:
    """The error ``exc`` with its parameter named as the command-line option: ``PdfParams.qmax
    must be > 0`` becomes ``--qmax must be > 0``.  ``options`` maps a field to its flag where
    it is not ``--<field>`` (underscores as dashes)."""
    message = str(exc)
    if exc.field and exc.subject:
        flag = (options or {}).get(exc.field, "--" + exc.field.replace("_", "-"))
        message = message.replace(exc.subject, flag, 1)
    return PdfsgError(message)


def check_output_path(path: str | os.PathLike[str], option: str, *, folder: bool = False) -> Path:
    """Check, before any work, that ``path`` can be written (the rule in the module docstring).

    Parameters
    ----------
    path : the value of the option
    option : the option's name for messages (``"-o"``, ``"--plot"``)
    folder : bool
        The option names a folder that the command creates and fills (its parent must exist).

    Returns
    -------
    Path
        ``path`` as a Path.

    Raises
    ------
    PdfsgError
        One line naming the option: a missing or non-folder parent, a file where a folder is
        wanted or a folder where a file is wanted, or a parent that cannot be written.
    """
    out = Path(path)
    if str(path).strip() == "":
        raise PdfsgError(f"{option}: empty path")
    if folder and out.exists() and not out.is_dir():
        raise PdfsgError(f"{option}: {out} exists and is not a folder")
    if not folder and out.is_dir():
        raise PdfsgError(f"{option}: {out} is a folder; give a file name")
    if folder and out.is_dir():
        parent = out
    else:
        parent = out.parent if str(out.parent) else Path(".")
        if not parent.is_dir():
            if parent.exists():
                raise PdfsgError(f"{option}: folder {parent} is not a folder (for {out})")
            raise PdfsgError(
                f"{option}: folder {parent} does not exist (for {out}); pdfsg does not "
                f"create it: mkdir -p {parent}"
            )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PdfsgError(f"{option}: folder {parent} is not writable")
    return out
