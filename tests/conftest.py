from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest

from pdfsg.shared_data import shared_data_dir


@pytest.fixture(scope="session")
def shared_data():
    """Path to ../shared/data; skips the test when the folder is absent (fresh clone)."""
    path = shared_data_dir()
    if path is None:
        pytest.skip("shared data folder not found (set PDFSG_SHARED_DATA)")
    return path
