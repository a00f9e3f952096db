from __future__ import annotations

import importlib.util
import os
from pathlib import Path

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


#: labels of the random model the web tests serve
RANDOM_MODEL_LABELS = (2, 14, 62, 136, 166, 194, 221, 225)


def make_logreg_model(folder, labels, *, intercept=None, seed: int = 0, name: str = ""):
    """A real model folder: logistic regression on X with random coefficients (no
    training) over ``labels`` (``intercept``: one per label, default zeros), for tests of
    serving and ranking, not of accuracy."""
    import numpy as np

    from pdfsg.artifact import save_model
    from pdfsg.models import LogRegClassifier
    from pdfsg.params import PdfParams

    params = PdfParams()
    rng = np.random.default_rng(seed)
    clf = LogRegClassifier(
        labels=tuple(labels),
        params=params,
        coef=rng.normal(0.0, 0.15, size=(len(labels), params.npoints)),
        intercept=np.zeros(len(labels)) if intercept is None else np.asarray(intercept),
        config={"feature": "x"},
    )
    return save_model(folder, clf, name=name or folder.name)


@pytest.fixture(scope="session")
def random_logreg_model(tmp_path_factory):
    """:func:`make_logreg_model` over :data:`RANDOM_MODEL_LABELS` (the web tests' model)."""
    folder = tmp_path_factory.mktemp("model") / "random-logreg"
    return make_logreg_model(folder, RANDOM_MODEL_LABELS)


def load_benchmark(name: str):
    """The script ``benchmarks/<name>.py`` as a module (its functions, without running it)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
