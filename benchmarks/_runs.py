"""Helpers the benchmark scripts share: a resumable train-then-score run, and the measured
PDFs of the shared data with their known space groups.

The scripts run as ``python benchmarks/<name>.py``, so this folder is on ``sys.path``.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class ScoredRun:
    """A trained model folder scored on a dataset's test split."""

    classifier: Any
    evaluation: Any
    history: dict | None
    train_seconds: float | None


def train_and_score(dataset, model: str, out: Path, **train_kwargs) -> ScoredRun:
    """Train preset ``model`` into ``out`` unless it is finished there (an unfinished run
    resumes from its checkpoint), then evaluate it on the test split and write its report.

    ``train_seconds`` is the wall time of an uninterrupted training run (None when it was
    resumed: its time is not one measurement).
    """
    from pdfsg.artifact import load_history, load_model
    from pdfsg.evaluate import evaluate
    from pdfsg.report import write_report
    from pdfsg.train import train

    timing_file = out / "timing.json"
    if not (out / "manifest.json").exists():
        resume = (out / "checkpoint.pt").exists()
        t = time.perf_counter()
        train(dataset, model, out, resume=resume, **train_kwargs)
        if not resume:
            timing_file.write_text(json.dumps({"train_seconds": time.perf_counter() - t}))
    clf = load_model(out)
    ev = evaluate(clf, dataset, "test")
    history = load_history(out)
    write_report(ev, out / "report", history=history)
    timing = json.loads(timing_file.read_text()) if timing_file.exists() else {}
    return ScoredRun(clf, ev, history, timing.get("train_seconds"))


def measured_files(data: Path) -> Iterator[tuple[Path, dict[str, str], int | None]]:
    """``(path, index row, known space-group number or None)`` for every measured PDF in
    ``<data>/experimental/index.csv``; None for samples without one space group (mixtures,
    clusters)."""
    folder = data / "experimental"
    with open(folder / "index.csv") as fh:
        for item in csv.DictReader(fh):
            known = item["space_group_number"].strip()
            yield folder / item["file"], item, int(float(known)) if known else None


def _is_default_model(model: str) -> bool:
    """Whether ``model`` names the shipped default family (the same member folders)."""
    from pdfsg.errors import ModelError
    from pdfsg.predict import DEFAULT_MODEL, resolve_model_paths

    if model == DEFAULT_MODEL:
        return True
    try:
        return resolve_model_paths(model) == resolve_model_paths(DEFAULT_MODEL)
    except ModelError:
        return False


def result_stem(base: str, model: str, label_set: str | None = None) -> str:
    """The results-file stem of a benchmark run: ``base`` for the default model (by any of
    its names: ``default``, ``shipped`` or the default family's own, such as ``pdfsg-v8``)
    and every group, ``base_<model>[_<label set>]`` otherwise."""
    stem = base if _is_default_model(model) else f"{base}_{Path(model).name}"
    return stem + (f"_{label_set}" if label_set else "")


def rank_of(result, space_group: int) -> int | None:
    """1-based rank of ``space_group`` in a prediction ranking all groups (None: absent)."""
    order = [p.space_group for p in result.predictions]
    return order.index(space_group) + 1 if space_group in order else None


def top_k_hits(
    proba: np.ndarray, labels: np.ndarray, truth: np.ndarray, ks=(1, 2, 3, 4, 5, 6)
) -> dict[str, float]:
    """top-k accuracy of rows whose true group (a space-group number) may lie outside
    ``labels`` (then never a hit)."""
    order = np.argsort(-proba, axis=1)[:, : max(ks)]
    hit = np.asarray(labels)[order] == np.asarray(truth)[:, None]
    return {str(k): round(float(hit[:, :k].any(axis=1).mean()), 4) for k in ks}


def uncalibrated_test_rows(ds, families) -> tuple[np.ndarray, int]:
    """The test rows of ``ds`` that no model of ``families`` (lists of loaded models) was
    calibrated on, and how many were left out for that reason."""
    from pdfsg.calibration import used_for_calibration

    test = np.flatnonzero(ds.split == 1)
    used = np.zeros(test.size, dtype=bool)
    for family in families:
        for model in family:
            used |= used_for_calibration(model.manifest, ds.ids[test])
    return test[~used], int(used.sum())


@dataclass
class MemoryTestRows:
    """A model with a PDF memory and the clean mpts52 test rows of its groups that it was
    not calibrated on: their dataset rows, model inputs ``X`` and class indices ``y``."""

    model: Any
    dataset: Any
    rows: np.ndarray
    X: np.ndarray
    y: np.ndarray


def pdf_memory_test_rows(model_name: str, dataset: Path, mpts52: Path) -> MemoryTestRows:
    """:class:`MemoryTestRows` of ``model_name`` (exits with a one-line error when the model
    has no PDF memory) on the test split of ``dataset`` (rows whose ids ``mpts52`` holds)."""
    from pdfsg.artifact import load_model
    from pdfsg.datasets import read_dataset
    from pdfsg.preprocess import normalize_minmax

    model = load_model(model_name)
    if model.pdf_memory is None:
        raise SystemExit(f"--model {model_name}: has no PDF memory")
    ds = read_dataset(dataset)
    mp52 = set(map(str, read_dataset(mpts52).ids))
    test, _ = uncalibrated_test_rows(ds, [[model]])
    rows = np.array([i for i in test if str(ds.ids[i]) in mp52])
    index = {int(v): i for i, v in enumerate(model.labels)}
    y = np.array([index.get(int(g), -1) for g in ds.y[rows]])
    rows, y = rows[y >= 0], y[y >= 0]
    X = normalize_minmax(ds.G[rows][:, : model.params.npoints]).astype(np.float32)
    return MemoryTestRows(model, ds, rows, X, y)
