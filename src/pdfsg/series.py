"""Space-group probabilities along a series of measurements (temperature, time, doping...).

A phase transition shows as one candidate's probability falling while another's rises.
:func:`build_series` takes the :class:`~pdfsg.predict.PredictionResult` of each file (in
series order) and tabulates, for the union of every file's top candidates, that candidate's
probability in every file, read from the full probability vector of each result (not only
from its top-K list, so a candidate that drops out of one file's top K keeps its value).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pdfsg.errors import ParamsError, PdfFileError

__all__ = ["Series", "build_series", "series_keys"]


@dataclass(frozen=True)
class Series:
    """Probabilities of candidate space groups along a series.

    Attributes
    ----------
    x : np.ndarray (n,)
        The series coordinate of each file: 1..n (file order) or a header value.
    x_label : str
        ``"index"`` (file order, 1..n) or the header key (``"temperature"``).
    files : list of str
        The files, in the order of ``x``.
    candidates : list of int
        Space-group numbers, highest mean probability first.
    symbols : list of str
        Their Hermann-Mauguin symbols.
    probabilities : np.ndarray (n, len(candidates))
        Probability of each candidate in each file.
    """

    x: np.ndarray
    x_label: str
    files: list[str]
    candidates: list[int]
    symbols: list[str]
    probabilities: np.ndarray

    def columns(self) -> list[str]:
        return [f"{s} ({n})" for s, n in zip(self.symbols, self.candidates, strict=True)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "x_label": self.x_label,
            "candidates": [
                {"space_group": n, "symbol": s}
                for n, s in zip(self.candidates, self.symbols, strict=True)
            ],
            "rows": [
                {
                    "file": f,
                    self.x_label: float(x),
                    "probabilities": [round(float(p), 6) for p in row],
                }
                for f, x, row in zip(self.files, self.x, self.probabilities, strict=True)
            ],
        }

    def to_csv(self) -> str:
        """One row per file: file, x, then one column per candidate ``symbol (number)``."""
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["file", self.x_label, *self.columns()])
        for f, x, row in zip(self.files, self.x, self.probabilities, strict=True):
            w.writerow([f, f"{x:g}", *(f"{p:.6f}" for p in row)])
        return buf.getvalue()

    def to_table(self) -> str:
        """A fixed-width text table (file names without their folders)."""
        names = [Path(f).name for f in self.files]
        wf = max(4, *(len(n) for n in names))
        wx = max(len(self.x_label), 6)
        cols = self.columns()
        widths = [max(7, len(c)) for c in cols]
        head = f"{'file':<{wf}}  {self.x_label:>{wx}}  " + "  ".join(
            f"{c:>{w}}" for c, w in zip(cols, widths, strict=True)
        )
        lines = [head]
        for n, x, row in zip(names, self.x, self.probabilities, strict=True):
            lines.append(
                f"{n:<{wf}}  {x:>{wx}g}  "
                + "  ".join(f"{p:>{w}.3f}" for p, w in zip(row, widths, strict=True))
            )
        return "\n".join(lines) + "\n"


def series_keys(paths: Sequence[str], key: str) -> list[float]:
    """The value of header ``key`` (``temperature = 300 K``) in each file.

    Raises
    ------
    PdfFileError
        Naming the first file whose header lacks ``key``.
    """
    from pdfsg.io import read_header_value

    out = []
    for p in paths:
        value = read_header_value(p, key)
        if value is None:
            raise PdfFileError(f"{p}: no '{key} = value' line in the header (--series-key)")
        out.append(value)
    return out


def build_series(
    results: Sequence[Any],
    *,
    x: Sequence[float] | None = None,
    x_label: str = "index",
    top: int = 3,
) -> Series:
    """Tabulate the probabilities of the union of each file's ``top`` candidates.

    Parameters
    ----------
    results : PredictionResult per file, in series (file) order; each must carry its full
        ``probabilities`` and ``labels`` (as :meth:`~pdfsg.predict.Predictor.predict` sets)
    x : series coordinate of each result (e.g. :func:`series_keys`); default 1..n.  Rows are
        sorted by it (stable, so equal values keep the file order).
    x_label : name of the coordinate (``"index"`` or the header key)
    top : how many of each file's most probable groups join the candidates (>= 1)

    Raises
    ------
    ParamsError
        ``top`` < 1, no results, ``x`` of another length, or results without probabilities
        or over different label sets.
    """
    from pdfsg.spacegroups import get

    if top < 1:
        raise ParamsError(f"top must be >= 1, got {top}", field="top")
    if not results:
        raise ParamsError("a series needs at least one result", field="files")
    labels = tuple(results[0].labels)
    for res in results:
        if res.probabilities is None or tuple(res.labels) != labels or not labels:
            raise ParamsError(
                f"{res.file}: result has no full probability vector over the series' labels",
                field="files",
            )
    xs = np.arange(1, len(results) + 1, dtype=np.float64) if x is None else np.asarray(x, float)
    if xs.shape != (len(results),):
        raise ParamsError(f"x has {xs.size} values for {len(results)} results", field="x")
    order = np.argsort(xs, kind="stable")
    proba = np.stack([np.asarray(results[i].probabilities, dtype=np.float64) for i in order])
    chosen: set[int] = set()
    for row in proba:
        chosen.update(int(i) for i in np.argsort(-row, kind="stable")[:top])
    idx = sorted(chosen, key=lambda i: (-proba[:, i].mean(), i))
    return Series(
        x=xs[order],
        x_label=x_label,
        files=[str(results[i].file) for i in order],
        candidates=[labels[i] for i in idx],
        symbols=[get(labels[i]).symbol for i in idx],
        probabilities=proba[:, idx],
    )
