"""Typed exceptions. Every user-facing error is a :class:`PdfsgError` whose message is one line
that names the file or field at fault; the CLI prints it and exits with code 2."""


class PdfsgError(Exception):
    """Base class for errors caused by user input (bad file, bad parameter)."""


class ParamsError(PdfsgError, ValueError):
    """A PdfParams field (or another numeric option) is out of range.

    ``field`` is the name of the parameter at fault (``"qmax"``, ``"top"``...) and ``subject``
    how the message names it (``"PdfParams.qmax"``); the CLI replaces ``subject`` with the
    option (``--qmax``) so that its message names what the user typed.
    """

    def __init__(self, message: str, *, field: str | None = None, subject: str | None = None):
        super().__init__(message)
        self.field = field
        self.subject = subject or field


class StructureError(PdfsgError):
    """A structure file cannot be read, has partial occupancy, or cannot be labelled."""


class PdfFileError(PdfsgError):
    """A measured PDF file cannot be read or is unusable (empty, NaN, wrong columns...)."""


class DatasetError(PdfsgError):
    """A dataset file is missing, malformed, or incompatible with a model."""


class ModelError(PdfsgError):
    """A model artifact or checkpoint is missing, corrupted, or incompatible."""


class CompositionError(PdfsgError, ValueError):
    """A chemical composition (option, API argument or file header) cannot be read."""
