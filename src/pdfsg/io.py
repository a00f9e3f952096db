"""Read measured PDF files: G(r) with its header metadata (Qmax, Qdamp, radiation, composition).

:func:`read_pdf_file` reads the text formats that PDF reduction and modelling programs write:

* ``.gr`` from PDFgetX3 and xPDFsuite / PDFgetXgui (an INI-style configuration header,
  ``#### start data``, ``#S`` and ``#L`` lines, two columns ``r G``);
* ``.gr`` from PDFgetX2 (``####### Get_XPDF`` header) and PDFgetN (``##### Run Information``
  header), four columns ``r G dr dG``;
* PDFgui data, fit (``.fgr``: ``r Gcalc dr dG Gdiff``) and calculation (``.cgr``: ``r Gcalc``)
  files, and Mantid's SavePDFGui files (``#Comment: neutron, Qmin=..., Qmax=...``);
* plain whitespace-, comma- or semicolon-separated text with two or more columns, with or
  without a header line naming the columns;
* any of these gzip-compressed (``x.gr.gz``, or gzip content under any name: recognised by
  its magic bytes, not its suffix).

The data block is the longest run of all-numeric lines after the ``start data`` marker (or in
the whole file when there is none); ``#``, ``!`` and ``%`` lines and blank lines inside it are
skipped.  Column names from an ``#L`` line (or a plain header line) decide which column is G;
without names the PDFgui convention holds: ``r G``, ``r G dG``, ``r G dr dG``.

Every problem with a file raises :class:`~pdfsg.errors.PdfFileError` with a one-line message
that starts with the file name, e.g. ``data.gr: r is not increasing at line 57``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pdfsg.composition import composition_from_header, composition_from_title
from pdfsg.errors import CompositionError, PdfFileError

__all__ = ["MeasuredPDF", "read_header_value", "read_pdf_file"]

#: leading characters of comment lines
_COMMENT_CHARS = ("#", "!", "%")
#: a data line has at least this many rows around a bad line before we call it corrupt
_MIN_NEIGHBOUR_ROWS = 5
#: suffixes of reciprocal-space files written by the same programs
_Q_SPACE_SUFFIXES = {".iq", ".sq", ".fq", ".chi", ".xye"}
#: first bytes of a gzip stream
_GZIP_MAGIC = b"\x1f\x8b"
#: most bytes a compressed file may expand to (a 2-million-row text file is ~60 MB)
MAX_GUNZIPPED_BYTES = 512 * 1024 * 1024

_FLOAT = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eEdD][-+]?\d+)?"
_KEY_START = r"(?<![A-Za-z0-9_])"
_UNITS = r"(?:\s*(?:\([^)\n]*\)|\[[^\]\n]*\]))?"
_SEP = r"\s*[=:]\s*"
#: control characters other than \t \n \v \f \r (binary data)
_CONTROL_BYTES = bytes(c for c in range(32) if chr(c) not in "\t\n\r\f\v")
_RE_START_DATA = re.compile(r"^\s*#+\s*start\s+data\b", re.IGNORECASE)
_RE_SPLIT = re.compile(r"[,;\s]+")
_RE_FORTRAN_D = re.compile(r"^([-+]?(?:\d+\.?\d*|\.\d+))[dD]([-+]?\d+)$")


def _key_value_regex(keys: str) -> re.Pattern[str]:
    """``key [(units)] = value [units]``; groups: units in brackets, value, units after."""
    return re.compile(
        _KEY_START + rf"(?:{keys})({_UNITS}){_SEP}({_FLOAT})([ \t]*\S{{0,8}})", re.IGNORECASE
    )


_RE_QMAX = _key_value_regex(r"q[ _-]?max")
_RE_QMAXINST = _key_value_regex(r"q[ _-]?max[ _-]?inst")
_RE_QDAMP = _key_value_regex(r"q[ _-]?damp|qsig")
_RE_WAVELENGTH = _key_value_regex(r"wavelength|lambda")
_RE_RADIATION_KEY = re.compile(
    _KEY_START
    + r"(?:mode|radiation|radiation[ _]?type|source|probe|stype|scattering[ _]?type|beam)"
    + _SEP
    + r"[\"']?([A-Za-z][A-Za-z\-]*)",
    re.IGNORECASE,
)
_RE_NEUTRON_WORD = re.compile(r"\bneutrons?\b|\bpdfgetn\b", re.IGNORECASE)
_RE_XRAY_WORD = re.compile(
    r"\bx-?rays?\b|\bsynchrotron\b|\bpdfgetx\d?\b|\bget_xpdf\b|\bxpdfsuite\b|\bpdfgetxgui\b",
    re.IGNORECASE,
)
_RADIATION_WORDS = {
    "x": "xray",
    "xray": "xray",
    "x-ray": "xray",
    "xrays": "xray",
    "x-rays": "xray",
    "synchrotron": "xray",
    "xrd": "xray",
    "n": "neutron",
    "neutron": "neutron",
    "neutrons": "neutron",
    "tof": "neutron",
    "spallation": "neutron",
    "reactor": "neutron",
}

_ROLE_NAMES = {
    "r": {"r", "ra", "r_a", "x", "distance", "radius", "rcalc", "robs"},
    "g": {"g", "gr", "g_r", "gobs", "gcalc", "gexp", "gmeas", "pdf", "gofr", "g_of_r"},
    "dr": {"dr", "d_r", "sigr", "sigmar", "sigma_r", "esd_r", "r_err", "drobs", "drcalc"},
    "dg": {
        "dg",
        "d_g",
        "d_gr",
        "dgr",
        "sigg",
        "sigmag",
        "sigma_g",
        "esd_g",
        "g_err",
        "gerr",
        "dgobs",
        "dgcalc",
        "err",
        "error",
        "sigma",
        "uncertainty",
        "std",
    },
    "q": {"q", "f", "fq", "s", "sq", "i", "iq", "q_a", "twotheta", "tth", "2theta"},
}


@dataclass(frozen=True, eq=False)
class MeasuredPDF:
    """A measured reduced PDF read from a file.

    Attributes
    ----------
    path : str
        The file, as given.
    r : np.ndarray  [Å]
        Strictly increasing, >= 0.
    g : np.ndarray  [Å⁻²]
        Reduced PDF G(r).
    dg : np.ndarray or None  [Å⁻²]
        Uncertainty of G when the file has a usable (positive, finite) column for it.
    qmax : float or None  [1/Å]
        Qmax of the Fourier transform from the header (``qmax``; ``qmaxinst`` when only that
        is given); None when absent or 0 ("no termination" in PDFgui files).
    qdamp : float or None  [1/Å]
        Instrumental Q resolution from the header (``qdamp`` / ``qsig``).
    radiation : str or None
        ``"xray"`` or ``"neutron"`` when the header says so (or names a program that reduces
        only one of them); None when unknown.
    source_format : str
        ``"pdfgetx3"``, ``"xpdfsuite"``, ``"pdfgetx2"``, ``"pdfgetn"``, ``"pdfgui"``,
        ``"mantid"``, ``"csv"`` or ``"text"``.
    header : str
        Every line of the file that is not a data row, joined with newlines.
    composition : dict[str, float] or None
        Element -> amount as written in the header (``composition = ...``, PDFgetX2's
        ``Sample_Setup`` or PDFgetN's ``Sample Material`` table; see
        :func:`pdfsg.composition.composition_from_header`), else the one a sample title
        that is just a material's name gives (``#S 1 silicon``:
        :func:`pdfsg.composition.composition_from_title`); None when the header gives none
        or gives one that cannot be read.
    composition_warning : str or None
        One line saying why the header's composition could not be read (not fatal: the
        curve is still usable, and a composition given by the user replaces it).
    composition_from : str or None
        Where ``composition`` was found: ``"header"`` (a composition line or table) or
        ``"title"``; None without one.
    """

    path: str
    r: np.ndarray
    g: np.ndarray
    dg: np.ndarray | None
    qmax: float | None
    qdamp: float | None
    radiation: str | None
    source_format: str
    header: str
    composition: dict[str, float] | None = None
    composition_warning: str | None = None
    composition_from: str | None = None


def read_pdf_file(path: str | os.PathLike[str]) -> MeasuredPDF:
    """Read a measured G(r) file (PDFgetX3/X2/N, xPDFsuite, PDFgui or plain columns).

    Parameters
    ----------
    path : str or path-like
        The file.

    Returns
    -------
    MeasuredPDF
        r [Å], G [Å⁻²], optional dG, and Qmax [1/Å], Qdamp [1/Å] and radiation parsed from
        the header when present.

    Raises
    ------
    PdfFileError
        With a one-line message naming the file and the problem: missing or unreadable
        file, empty or binary file, no numeric data, a single column, a non-numeric line
        inside the data, a NaN/inf value, negative or non-increasing r, G constant, or G
        apparently in the wrong column.
    """
    name = str(path)
    text = _read_text(Path(path), name)
    lines = text.splitlines()
    start = _data_section_start(lines)
    fast = _plain_numeric_tail(lines, start)
    data_lines: Sequence[int]
    if fast is not None:  # the usual file: a header, then only rows of numbers
        first, table = fast
        data_lines = range(first, first + len(table))
        header = "\n".join(lines[:first] + lines[first + len(table) :])
        block_start = first
        widths = [table.shape[1]] * min(len(table), 2)
    else:
        kinds, rows = _classify(lines, start)
        block = _pick_block(kinds, rows, lines, start, name)
        data_lines = [i for i in block if kinds[i] == "num"]
        data_set = set(data_lines)
        header = "\n".join(line for i, line in enumerate(lines) if i not in data_set)
        block_start = block[0]
        widths = [len(rows[i]) for i in data_lines]

    names, names_from_file = _column_names(lines, start, block_start)
    plain = Path(path)
    if plain.suffix.lower() == ".gz":
        plain = plain.with_suffix("")
    _reject_q_space(plain, names, name)
    _check_width(widths, data_lines, name)
    ncol = min(widths)
    cols, g_named = _assign_columns(names, ncol)

    if fast is None:
        table = np.array([rows[i][:ncol] for i in data_lines], dtype=np.float64)
    r = np.ascontiguousarray(table[:, cols["r"]])
    g = np.ascontiguousarray(table[:, cols["g"]])
    _check_finite(r, data_lines, name, "r")
    _check_finite(g, data_lines, name, "G")
    _check_r(r, data_lines, name)
    if not g_named:
        _check_g_column(table, cols["g"], ncol, r, name)
    if np.ptp(g) == 0:
        raise PdfFileError(f"{name}: G is constant ({g[0]:g}) in all {g.size} rows")

    dg = None
    if "dg" in cols and cols["dg"] < ncol:
        dg_col = np.ascontiguousarray(table[:, cols["dg"]])
        if np.isfinite(dg_col).all() and (dg_col > 0).all():
            dg = dg_col

    if names_from_file and _r_in_nm(names, cols["r"]):
        r = r * 10.0
        g = g / 100.0
        dg = None if dg is None else dg / 100.0

    try:
        composition, composition_warning = composition_from_header(header, name), None
    except CompositionError as exc:
        composition, composition_warning = None, str(exc)
    composition_from = "header" if composition else None
    if composition is None and composition_warning is None:
        titled = composition_from_title(header)
        if titled is not None:
            composition, composition_from = titled[0], "title"
    return MeasuredPDF(
        path=name,
        r=r,
        g=g,
        dg=dg,
        qmax=_parse_qmax(header),
        qdamp=_parse_qdamp(header),
        radiation=_parse_radiation(header),
        source_format=_source_format(header, lines, data_lines),
        header=header,
        composition=composition,
        composition_warning=composition_warning,
        composition_from=composition_from,
    )


# --------------------------------------------------------------------------- file level


def _read_text(path: Path, name: str) -> str:
    if not path.exists():
        raise PdfFileError(f"{name}: file not found")
    if path.is_dir():
        raise PdfFileError(f"{name}: is a directory, not a file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PdfFileError(f"{name}: cannot read file ({exc.strerror or exc})") from exc
    if raw.startswith(_GZIP_MAGIC):
        raw = _gunzip(raw, name)
    if not raw.strip():
        raise PdfFileError(f"{name}: file is empty")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            raw = raw.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError as exc:
            raise PdfFileError(f"{name}: not a text file (bad UTF-16)") from exc
    if b"\x00" in raw[:65536]:
        raise PdfFileError(f"{name}: not a text file (binary data)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    sample = text[:65536]
    encoded = sample.encode("utf-8", "surrogatepass")  # control characters are 1 byte
    control = len(encoded) - len(encoded.translate(None, _CONTROL_BYTES))
    if control > 0.01 * len(sample):
        raise PdfFileError(f"{name}: not a text file (binary data)")
    return text


def _gunzip(raw: bytes, name: str) -> bytes:
    """The content of a gzip stream, at most :data:`MAX_GUNZIPPED_BYTES`."""
    import gzip
    import io
    import zlib

    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as fh:
            out = fh.read(MAX_GUNZIPPED_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise PdfFileError(f"{name}: gzip-compressed but corrupt ({exc})") from None
    if len(out) > MAX_GUNZIPPED_BYTES:
        raise PdfFileError(
            f"{name}: expands to more than {MAX_GUNZIPPED_BYTES // 2**20} MB when uncompressed"
        )
    return out


def read_header_value(path: str | os.PathLike[str], key: str) -> float | None:
    """The number of a ``key = value`` (or ``key: value``) line in a PDF file's header, e.g.
    ``temperature = 300 K`` -> 300.0; None when the file has no such line.  Gzip-compressed
    files are read too; the match ignores case and the units after the value.

    Raises
    ------
    PdfFileError
        When the file cannot be read (see :func:`read_pdf_file`).
    """
    text = _read_text(Path(path), str(path))
    regex = _key_value_regex(re.escape(key.strip()))
    for line in text.splitlines():
        s = line.strip()
        if s and not s.lstrip("#!% ")[:1].isdigit():
            m = regex.search(s)
            if m:
                value = _to_float(m.group(2))
                if value is not None and math.isfinite(value):
                    return value
    return None


#: bytes a plain numeric data block may hold: digits, signs, point, exponent, blanks
_PLAIN_NUMERIC = b"0123456789+-.eE \t\n"


def _plain_numeric_tail(lines: list[str], start: int) -> tuple[int, np.ndarray] | None:
    """The fast path of :func:`read_pdf_file`: when, from the first numeric line after
    ``start`` to the end (trailing blank lines aside), every line holds the same number (>= 2)
    of plain numbers and nothing else, the index of that line and the values (n, ncol),
    parsed in one pass (no per-line Python work; a few bytes per value of memory).  None for
    anything else (comments or text among the rows, other separators, ragged rows, Fortran
    exponents, nan...), which the general reader handles."""
    import warnings

    first = next((i for i in range(start, min(len(lines), start + 5000))
                  if _classify([lines[i]], 0)[0][0] == "num"), None)  # fmt: skip
    if first is None:
        return None
    last = len(lines)
    while last > first and not lines[last - 1].strip():
        last -= 1
    n = last - first
    if n < 2:
        return None
    try:
        raw = "\n".join(lines[first:last]).encode("ascii")
    except UnicodeEncodeError:
        return None
    if raw.translate(None, _PLAIN_NUMERIC):  # a byte that is none of those
        return None
    b = np.frombuffer(raw, dtype=np.uint8)
    blank = (b == 32) | (b == 9) | (b == 10)
    starts = ~blank
    starts[1:] &= blank[:-1]  # first byte of each number
    first_of_line = np.searchsorted(np.flatnonzero(starts), np.flatnonzero(b == 10))
    per_line = np.diff(first_of_line, prepend=0, append=int(np.count_nonzero(starts)))
    ncol = int(per_line[0])
    if ncol < 2 or per_line.size != n or (per_line != ncol).any():
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        try:
            values = np.fromstring(raw, dtype=np.float64, sep=" ")
        except (ValueError, DeprecationWarning):  # a token that is not a number
            return None
    if values.size != n * ncol:
        return None
    return first, values.reshape(n, ncol)


def _data_section_start(lines: list[str]) -> int:
    """Index of the first line after a ``#### start data`` marker (0 when there is none)."""
    for i, line in enumerate(lines):
        if _RE_START_DATA.match(line):
            return i + 1
    return 0


def _to_float(token: str) -> float | None:
    try:
        return float(token)
    except ValueError:
        m = _RE_FORTRAN_D.match(token)
        if m:
            return float(f"{m.group(1)}e{m.group(2)}")
        return None


def _classify(lines: list[str], start: int) -> tuple[list[str], dict[int, list[float]]]:
    """Kind of each line ("blank", "comment", "num", "text") and the values of "num" lines."""
    kinds = ["header"] * len(lines)
    rows: dict[int, list[float]] = {}
    for i in range(start, len(lines)):
        s = lines[i].strip()
        if not s:
            kinds[i] = "blank"
            continue
        if s.startswith(_COMMENT_CHARS):
            kinds[i] = "comment"
            continue
        s = s.split("#", 1)[0].strip()
        tokens = [t.strip("\"'") for t in _RE_SPLIT.split(s) if t.strip("\"'")]
        values = [_to_float(t) for t in tokens]
        if tokens and all(v is not None for v in values):
            kinds[i] = "num"
            rows[i] = [float(v) for v in values if v is not None]
        else:
            kinds[i] = "text"
    return kinds, rows


def _blocks(kinds: list[str], start: int) -> list[list[int]]:
    """Runs of lines holding numeric rows, broken only by text lines (or header)."""
    blocks: list[list[int]] = []
    current: list[int] = []
    for i in range(start, len(kinds)):
        k = kinds[i]
        if k == "text":
            if any(kinds[j] == "num" for j in current):
                blocks.append(current)
            current = []
        elif k == "num" or current:
            current.append(i)
    if any(kinds[j] == "num" for j in current):
        blocks.append(current)
    # trim trailing blank/comment lines
    out = []
    for b in blocks:
        last = max(j for j in b if kinds[j] == "num")
        out.append([j for j in b if j <= last])
    return out


def _pick_block(
    kinds: list[str], rows: dict[int, list[float]], lines: list[str], start: int, name: str
) -> list[int]:
    blocks = _blocks(kinds, start)
    if not blocks:
        raise PdfFileError(f"{name}: no numeric data found")

    def nrows(b: list[int]) -> int:
        return sum(1 for j in b if kinds[j] == "num")

    best = max(range(len(blocks)), key=lambda k: (nrows(blocks[k]), k))
    # a text line between two substantial runs of rows that continue each other is a
    # corrupt data line, not the end of a header
    for k in (best - 1, best + 1):
        if not 0 <= k < len(blocks):
            continue
        a, b = (blocks[k], blocks[best]) if k < best else (blocks[best], blocks[k])
        ra = [rows[j] for j in a if kinds[j] == "num"]
        rb = [rows[j] for j in b if kinds[j] == "num"]
        if min(len(ra), len(rb)) < _MIN_NEIGHBOUR_ROWS:
            continue
        if len(ra[-1]) != len(rb[0]) or len(ra[-1]) < 2 or ra[-1][0] >= rb[0][0]:
            continue
        bad = next(j for j in range(a[-1] + 1, b[0]) if kinds[j] == "text")
        shown = lines[bad].strip()
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise PdfFileError(f"{name}: line {bad + 1} in the data is not numeric: {shown!r}")
    return _drop_leading_odd_rows(blocks[best], kinds, rows)


def _drop_leading_odd_rows(
    block: list[int], kinds: list[str], rows: dict[int, list[float]]
) -> list[int]:
    """Leave out up to 3 leading rows narrower or wider than the rest (e.g. a point count)."""
    nums = [j for j in block if kinds[j] == "num"]
    widths = [len(rows[j]) for j in nums]
    modal = max(set(widths), key=widths.count)
    k = 0
    while k < min(3, len(nums) - 2) and widths[k] != modal:
        k += 1
    if 0 < k and widths[k] == modal:
        return [j for j in block if j >= nums[k]]
    return block


# --------------------------------------------------------------------------- columns


def _column_names(lines: list[str], start: int, first_data: int) -> tuple[list[str], bool]:
    """Column names from the last ``#L`` line (or plain header line) before the data."""
    for i in range(first_data - 1, start - 1, -1):
        s = lines[i].strip()
        if s.startswith("#L"):
            return _split_names(s[2:]), True
    # a plain (or commented) header line right before the data: "r G dG", "# r,G"
    for i in range(first_data - 1, max(start, first_data - 3) - 1, -1):
        s = lines[i].strip()
        if not s:
            continue
        tokens = _split_names(s.lstrip("#!% "))
        if len(tokens) >= 2 and _role(tokens[0]) in ("r", "q"):
            return tokens, True
        break
    return [], False


def _split_names(s: str) -> list[str]:
    """Column names of a header line: comma/semicolon/tab separated, else whitespace."""
    s = re.sub(r"\s+(?=[(\[])", "", s.strip())  # "r (A)" -> "r(A)"
    for sep in (",", ";", "\t"):
        if sep in s:
            return [t.strip().strip("\"'") for t in s.split(sep) if t.strip()]
    return s.split()


def _role(token: str) -> str | None:
    unit_free = re.sub(r"\(.*?\)|\[.*?\]|\{.*?\}", "", token)
    base = re.sub(r"[$\\\"'`]", "", unit_free).strip().lower()
    if not base:
        base = token.strip("$\\\"'`").lower()
    for role, names in _ROLE_NAMES.items():
        if base in names:
            return role
    return None


def _assign_columns(names: list[str], ncol: int) -> tuple[dict[str, int], bool]:
    """Column index of each role ("r", "g", "dr", "dg") and whether names placed G."""
    roles = [_role(t) for t in names[:ncol]]
    if "g" in roles:
        named = {role: i for i, role in reversed(list(enumerate(roles))) if role}
        cols = {k: named[k] for k in ("g", "dr", "dg") if k in named}
        cols["r"] = named.get("r", 0)
        return cols, True
    cols = {"r": 0, "g": 1}
    if ncol == 3:
        cols["dg"] = 2
    elif ncol >= 4:
        cols["dr"], cols["dg"] = 2, 3
    return cols, False


def _r_in_nm(names: list[str], r_col: int) -> bool:
    if r_col >= len(names):
        return False
    units = re.findall(r"\((.*?)\)|\[(.*?)\]", names[r_col])
    return any(u.strip().lower() == "nm" for pair in units for u in pair)


def _reject_q_space(path: Path, names: list[str], name: str) -> None:
    if names and _role(names[0]) == "q":
        raise PdfFileError(f"{name}: first column is {names[0]!r}: reciprocal-space data, not G(r)")
    if path.suffix.lower() in _Q_SPACE_SUFFIXES and not names:
        raise PdfFileError(f"{name}: a {path.suffix} file holds reciprocal-space data, not G(r)")


def _check_width(widths: list[int], data_lines: Sequence[int], name: str) -> None:
    if len(widths) < 2:
        raise PdfFileError(f"{name}: only {len(widths)} data row; need a curve")
    if max(widths) < 2:
        raise PdfFileError(f"{name}: only one numeric column; need r and G")
    if min(widths) < 2:
        i = widths.index(min(widths))
        raise PdfFileError(f"{name}: line {data_lines[i] + 1} has 1 value; need r and G")


def _check_finite(values: np.ndarray, data_lines: Sequence[int], name: str, what: str) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise PdfFileError(f"{name}: {what} is {values[i]} at line {data_lines[i] + 1}")


def _check_r(r: np.ndarray, data_lines: Sequence[int], name: str) -> None:
    if (r < 0).any():
        i = int(np.flatnonzero(r < 0)[0])
        raise PdfFileError(f"{name}: r is negative ({r[i]:g}) at line {data_lines[i] + 1}")
    steps = np.diff(r)
    if (steps <= 0).any():
        i = int(np.flatnonzero(steps <= 0)[0]) + 1
        if steps[i - 1] == 0:
            raise PdfFileError(
                f"{name}: duplicated r = {r[i]:g} at line {data_lines[i] + 1} "
                f"(also at line {data_lines[i - 1] + 1})"
            )
        raise PdfFileError(f"{name}: r is not increasing at line {data_lines[i] + 1}")


def _sign_changes(v: np.ndarray) -> bool:
    scale = float(np.max(np.abs(v))) if v.size else 0.0
    return bool(scale > 0 and v.min() < -1e-9 * scale and v.max() > 1e-9 * scale)


def _check_g_column(table: np.ndarray, g_col: int, ncol: int, r: np.ndarray, name: str) -> None:
    """Without column names, refuse a second column that cannot be G(r).

    A reduced PDF changes sign (it runs along -4πρ0 r below the first peak and oscillates
    about zero above it); an uncertainty column never does, a dr column is constant or
    monotonic, g(r) and R(r) are never negative.
    """
    cols = table[:, :ncol]
    g = cols[:, g_col]
    if _sign_changes(g):
        return
    others = [k for k in range(ncol) if k not in (0, g_col) and np.isfinite(cols[:, k]).all()]
    better = [k for k in others if _sign_changes(cols[:, k])]
    what = "is constant" if np.ptp(g) == 0 else "never changes sign"
    if better:
        raise PdfFileError(
            f"{name}: column {g_col + 1} {what} (an error or dr column?) but column "
            f"{better[0] + 1} does; G must be column 2 or named on a '#L r G dr dG' line"
        )
    if r[0] < 1.0 and g.min() >= 0 and np.ptp(g) > 0:
        raise PdfFileError(
            f"{name}: column {g_col + 1} is never negative: g(r) or R(r), not the reduced PDF G(r)"
        )


# --------------------------------------------------------------------------- header


_RE_PER_NM = re.compile(r"1/nm|nm\^?-1|nm⁻¹|nm\^\{-1\}", re.IGNORECASE)


def _first_value(regex: re.Pattern[str], header: str) -> float | None:
    """Value of the first ``key = value`` match, in 1/Å when the units say 1/nm."""
    for m in regex.finditer(header):
        value = _to_float(m.group(2))
        if value is not None and math.isfinite(value):
            if _RE_PER_NM.search(m.group(1) + " " + m.group(3)):
                value /= 10.0
            return value
    return None


def _parse_qmax(header: str) -> float | None:
    for regex in (_RE_QMAX, _RE_QMAXINST):
        value = _first_value(regex, header)
        if value is not None:
            return value if value > 0 else None
    return None


def _parse_qdamp(header: str) -> float | None:
    value = _first_value(_RE_QDAMP, header)
    return None if value is None or value < 0 else value


def _parse_radiation(header: str) -> str | None:
    for m in _RE_RADIATION_KEY.finditer(header):
        word = m.group(1).lower().rstrip("-")
        if word in _RADIATION_WORDS:
            return _RADIATION_WORDS[word]
    neutron = bool(_RE_NEUTRON_WORD.search(header))
    xray = bool(_RE_XRAY_WORD.search(header))
    if neutron != xray:
        return "neutron" if neutron else "xray"
    if not (neutron or xray):
        wavelength = _first_value(_RE_WAVELENGTH, header)
        # high-energy X-rays (0.1-0.3 Å) are the usual PDF source that writes a wavelength;
        # neutron diffractometers used for PDF work at >= 0.35 Å or by time of flight
        if wavelength is not None and 0 < wavelength <= 0.3:
            return "xray"
    return None


def _source_format(header: str, lines: list[str], data_lines: Sequence[int]) -> str:
    h = header.lower()
    if "get_xpdf" in h or "pdfgetx2" in h:
        return "pdfgetx2"
    if "pdfgetn" in h or ("run information" in h and "prep=" in h):
        return "pdfgetn"
    if "xpdfsuite" in h or "pdfgetxgui" in h:
        return "xpdfsuite"
    if "pdfgetx3" in h or "diffpy.pdfgetx" in h or ("[default]" in h and "qmaxinst" in h):
        return "pdfgetx3"
    if "mantid" in h:
        return "mantid"
    if "pdfgui" in h:
        return "pdfgui"
    first = lines[data_lines[0]]
    return "csv" if "," in first or ";" in first else "text"


def write_gr(
    path: str | os.PathLike[str],
    r: np.ndarray,
    g: np.ndarray,
    *,
    title: str,
    settings: dict[str, object],
) -> None:
    """Write a two-column ``.gr`` file whose header records ``settings`` as ``key = value``
    lines (read back by :func:`read_pdf_file`: qmax, qdamp and radiation); gzip-compressed
    when the name ends in ``.gz``."""
    from pdfsg import __version__

    lines = [f"# {title}", f"# written by pdfsg {__version__}", "# [settings]"]
    lines += [f"# {k} = {v}" for k, v in settings.items()]
    lines += ["#### start data", "#L r($\\AA$)  G($\\AA^{-2}$)"]
    body = "\n".join(f"{ri:.6f} {gi:.8f}" for ri, gi in zip(r, g, strict=True))
    text = "\n".join(lines) + "\n" + body + "\n"
    if str(path).lower().endswith(".gz"):  # x.gr.gz: gzip-compressed
        import gzip

        Path(path).write_bytes(gzip.compress(text.encode("utf-8"), mtime=0))
    else:
        Path(path).write_text(text)
