"""The fast paths of prediction's input: one-pass reading of plain numeric files, the cached
band-limiting filter; each gives what the general code gives."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize(
    ("body", "fast"),
    [
        ("1.0 0.5\n1.1 -0.25\n1.2 0.75\n1.3 -1.5e-1\n", True),  # plain two columns
        ("1.0 0.5 0.01\n1.1 -0.25 0.02\n1.2 0.75 0.01\n1.3 -0.15 0.02\n\n\n", True),  # dG
        ("4\n1.0 0.5\n1.1 -0.25\n1.2 0.75\n1.3 -0.15\n", False),  # a point count first
        ("1.0 0.5\n# a comment\n1.1 -0.25\n1.2 0.75\n1.3 -0.15\n", False),  # comment
        ("1.0,0.5\n1.1,-0.25\n1.2,0.75\n1.3,-0.15\n", False),  # CSV
        ("1.0 0.5\n1.1 -0.25 7\n1.2 0.75\n1.3 -0.15\n", False),  # ragged
        ("1.0 0.5D0\n1.1 -0.25\n1.2 0.75\n1.3 -0.15\n", False),  # Fortran exponent
        ("1.0 0.5\n1.1 nan\n1.2 0.75\n1.3 -0.15\n", False),  # nan
        ("1.0 0.5\n1.1 1.2.3\n1.2 0.75\n1.3 -0.15\n", False),  # not a number
        ("1.0 0.5\n1.1 -0.25\n1.1 0.75\n1.3 -0.15\n", True),  # duplicated r: same error
    ],
)
def test_fast_reader_gives_the_general_readers_answer(body, fast, tmp_path, monkeypatch):
    """read_pdf_file's one-pass path for a plain block of numbers returns exactly what the
    line-by-line reader does (or the same error), and steps aside for anything else."""
    from pdfsg import io as pio

    path = tmp_path / "x.gr"
    path.write_text("# qmax = 25\n#### start data\n#L r G dG\n" + body)

    def read():
        try:
            return pio.read_pdf_file(path)
        except Exception as exc:  # the error is part of the answer
            return f"{type(exc).__name__}: {exc}"

    assert (pio._plain_numeric_tail(path.read_text().splitlines(), 2) is not None) == fast
    got = read()
    monkeypatch.setattr(pio, "_plain_numeric_tail", lambda lines, start: None)
    slow = read()
    if isinstance(slow, str):
        assert got == slow
        return
    for key in ("r", "g", "dg"):
        a, b = getattr(got, key), getattr(slow, key)
        assert (a is None and b is None) or np.array_equal(a, b), key
    assert (got.qmax, got.header, got.source_format) == (
        slow.qmax,
        slow.header,
        slow.source_format,
    )


def test_cached_filter_gives_the_blockwise_sum(monkeypatch):
    """A curve on the same grid as the one before reuses its filter matrix; the answer is
    the block-by-block sum's (forced here by a tiny block size) to rounding."""
    from pdfsg import preprocess
    from pdfsg.io import read_pdf_file
    from pdfsg.params import PdfParams
    from pdfsg.predict import example_files

    data = read_pdf_file(example_files()[0])
    params = PdfParams()
    preprocess._filter_matrix.cache_clear()
    cached = [preprocess.prepare_input(data.r, data.g * k, params, qmax_data=25.0) for k in (1, 2)]
    assert preprocess._filter_matrix.cache_info().hits == 1
    monkeypatch.setattr(preprocess, "_BLOCK_ENTRIES", 20_000)  # many blocks, no cache
    blocks = [preprocess.prepare_input(data.r, data.g * k, params, qmax_data=25.0) for k in (1, 2)]
    assert preprocess._filter_matrix.cache_info().hits == 1
    for a, b in zip(cached, blocks, strict=True):
        # the blocked path sums sine products (preprocess._filter_long): equal to ~1e-11
        assert np.allclose(a.g, b.g, rtol=0, atol=1e-10 * np.abs(b.g).max())
        assert np.allclose(a.x, b.x, rtol=0, atol=1e-10)
    assert np.allclose(cached[1].g, 2 * cached[0].g, rtol=1e-12)
