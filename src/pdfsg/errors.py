"""Typed exceptions. Every user-facing error is a :class:`PdfsgError` whose message is one line
that names the file or field at fault; the CLI prints it and exits with code 2."""


class PdfsgError(Exception):
    """Base class for errors caused by user input (bad file, bad parameter)."""


class ParamsError(PdfsgError, ValueError):
    """A PdfParams field (or another numeric option) is out of range."""


class StructureError(PdfsgError):
    """A structure file cannot be read, has partial occupancy, or cannot be labelled."""


class PdfFileError(PdfsgError):
    """A measured PDF file cannot be read or is unusable (empty, NaN, wrong columns...)."""


class DatasetError(PdfsgError):
    """A dataset file is missing, malformed, or incompatible with a model."""


class ModelError(PdfsgError):
    """A model artifact or checkpoint is missing, corrupted, or incompatible."""
