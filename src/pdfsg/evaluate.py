"""Metrics of a classifier on a dataset split: top-k accuracy, per-group and per-crystal-system
accuracy, the confusion matrix and a group-subgroup reading of its largest confusions.

Definitions (paper section 3)
    A_k = fraction of rows whose true space group is among the k most probable (Fig. 2);
    ΔA_k = A_k - A_(k-1) for k >= 2;
    the confusion matrix M has rows = true label, columns = predicted (top-1) label, and is
    row-normalised: M[i, j] = fraction of rows of true class i predicted as j (Fig. 6).

Label sets
    ``label_set="paper45"`` is the paper's protocol for a model of more groups: only rows
    whose true group is one of the 45 are scored, and each is ranked among the model's
    groups in the set (probabilities renormalised, :func:`pdfsg.hierarchy.restrict`).  A
    model of every group (trained with ``min_per_group``, manifest ``label_set: "all"``)
    knows only the groups that had enough training structures: rows of other groups are
    left out and counted (``dataset.rows_outside_model_groups``, a warning).  For a model of
    more than 45 groups the evaluation also gives (``breakdown``) top-k over the rows of the
    paper's 45 groups, ranked among all groups and among the 45, and top-k per crystal
    system.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from pdfsg.errors import DatasetError

if TYPE_CHECKING:  # pragma: no cover
    from pdfsg.datasets import Dataset

__all__ = [
    "Evaluation",
    "confusion_matrix",
    "delta_top_k",
    "evaluate",
    "evaluate_proba",
    "per_class_accuracy",
    "top_confusions",
    "top_k_accuracy",
    "training_overlap",
]

log = logging.getLogger(__name__)

SPLITS = ("test", "train", "all")


def top_k_accuracy(
    proba: np.ndarray, y: np.ndarray, ks: Iterable[int] = range(1, 7)
) -> dict[int, float]:
    """A_k: fraction of rows whose true class ``y`` is among the ``k`` highest ``proba``.

    Ties are broken by class order (stable sort of -proba).  ``k`` larger than the number of
    classes counts every row as correct.
    """
    proba = np.asarray(proba)
    y = np.asarray(y, dtype=np.int64)
    if proba.ndim != 2 or proba.shape[0] != y.shape[0]:
        raise ValueError(f"proba {proba.shape} and y {y.shape} do not match")
    if y.size == 0:
        raise ValueError("top_k_accuracy of zero rows")
    order = np.argsort(-proba, axis=1, kind="stable")
    rank = np.argmax(order == y[:, None], axis=1)  # 0-based rank of the true class
    return {int(k): float(np.mean(rank < k)) for k in ks}


def delta_top_k(acc: dict[int, float]) -> dict[int, float]:
    """ΔA_k = A_k - A_(k-1) for every k >= 2 present with its predecessor."""
    return {k: acc[k] - acc[k - 1] for k in sorted(acc) if k - 1 in acc}


def confusion_matrix(
    y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, normalize: bool = True
) -> np.ndarray:
    """Confusion matrix (rows true, columns predicted); row-normalised when ``normalize``
    (rows of classes without data stay zero)."""
    m = np.zeros((n_classes, n_classes), dtype=np.float64)
    np.add.at(m, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    if normalize:
        s = m.sum(axis=1, keepdims=True)
        m = np.divide(m, s, out=np.zeros_like(m), where=s > 0)
    return m


def per_class_accuracy(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Top-1 accuracy of each class (NaN for a class without rows)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    n = np.bincount(y_true, minlength=n_classes).astype(np.float64)
    ok = np.bincount(y_true[y_true == np.asarray(y_pred)], minlength=n_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, ok / n, np.nan)


def _sg_info(number: int) -> dict[str, Any]:
    try:
        from pdfsg import spacegroups

        g = spacegroups.get(int(number))
        return {"symbol": g.symbol, "crystal_system": g.crystal_system, "order": g.order}
    except Exception:
        return {"symbol": str(number), "crystal_system": "unknown", "order": None}


def _relation(a: int, b: int) -> dict[str, str]:
    try:
        from pdfsg import spacegroups

        rel = spacegroups.relation(int(a), int(b))
        return {"kind": str(rel.kind), "detail": rel.detail}
    except Exception:
        return {"kind": "unknown", "detail": "group-subgroup table unavailable"}


def top_confusions(
    cm: np.ndarray, labels: tuple[int, ...] | list[int], k: int = 10, min_rate: float = 0.0
) -> list[dict[str, Any]]:
    """The ``k`` largest off-diagonal entries of a row-normalised confusion matrix, each with
    the group-subgroup relation of (true, predicted) from :func:`pdfsg.spacegroups.relation`.
    """
    off = np.array(cm, dtype=np.float64, copy=True)
    np.fill_diagonal(off, -1.0)
    flat = np.argsort(-off, axis=None, kind="stable")
    out: list[dict[str, Any]] = []
    for f in flat[:k]:
        i, j = np.unravel_index(int(f), off.shape)
        rate = float(off[i, j])
        if rate <= min_rate:
            break
        t, p = int(labels[i]), int(labels[j])
        out.append(
            {
                "true": t,
                "true_symbol": _sg_info(t)["symbol"],
                "predicted": p,
                "predicted_symbol": _sg_info(p)["symbol"],
                "rate": rate,
                "relation": _relation(t, p),
            }
        )
    return out


@dataclass
class Evaluation:
    """All metrics of one evaluation; :meth:`to_json` gives the ``--json`` document."""

    n: int
    split: str
    labels: tuple[int, ...]
    top_k: dict[int, float]
    confusion: np.ndarray  # row-normalised, model class order
    counts: np.ndarray  # rows per class in the evaluated split
    train_counts: np.ndarray | None  # rows per class in the model's training data
    per_class: np.ndarray
    confusions: list[dict[str, Any]]
    model: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)
    #: overlap of the evaluated rows with the model's training data (:func:`training_overlap`)
    training_overlap: dict[str, Any] = field(default_factory=dict)
    #: one-line notes for the user (e.g. the evaluated rows were seen in training)
    warnings: list[str] = field(default_factory=list)
    #: how far the probabilities can be trusted (:func:`calibration_summary`)
    calibration: dict[str, Any] = field(default_factory=dict)
    #: the groups ranked: name ("all": the model's own, or e.g. "paper45"), n_groups,
    #: model_groups
    label_set: dict[str, Any] = field(default_factory=dict)
    #: models of more than 45 groups: top-k of the paper's 45 groups' rows and per crystal
    #: system (:func:`breakdown`)
    breakdown: dict[str, Any] = field(default_factory=dict)

    @property
    def delta_top_k(self) -> dict[int, float]:
        return delta_top_k(self.top_k)

    def per_crystal_system(self) -> dict[str, dict[str, float]]:
        """Row-weighted top-1 accuracy per crystal system."""
        acc: dict[str, list[float]] = {}
        for lab, n, a in zip(self.labels, self.counts, self.per_class, strict=True):
            if n == 0:
                continue
            cs = _sg_info(lab)["crystal_system"]
            s = acc.setdefault(cs, [0.0, 0.0])
            s[0] += a * n
            s[1] += n
        return {cs: {"accuracy": v[0] / v[1], "n": int(v[1])} for cs, v in acc.items()}

    def to_json(self) -> dict[str, Any]:
        per_group = []
        for i, lab in enumerate(self.labels):
            info = _sg_info(lab)
            per_group.append(
                {
                    "space_group": int(lab),
                    "symbol": info["symbol"],
                    "crystal_system": info["crystal_system"],
                    "order": info["order"],
                    "n": int(self.counts[i]),
                    "n_train": None if self.train_counts is None else int(self.train_counts[i]),
                    "accuracy": None if np.isnan(self.per_class[i]) else float(self.per_class[i]),
                }
            )
        return {
            "n": int(self.n),
            "split": self.split,
            "top_k_accuracy": {str(k): v for k, v in sorted(self.top_k.items())},
            "delta_top_k_accuracy": {str(k): v for k, v in sorted(self.delta_top_k.items())},
            "per_class_accuracy": per_group,
            "per_crystal_system_accuracy": self.per_crystal_system(),
            "top_confusions": self.confusions,
            "confusion_matrix": {
                "labels": [int(v) for v in self.labels],
                "normalized": "rows (true label)",
                "matrix": np.round(self.confusion, 6).tolist(),
            },
            "model": self.model,
            "dataset": self.dataset,
            "training_overlap": self.training_overlap,
            "calibration": self.calibration,
            "label_set": self.label_set,
            "breakdown": self.breakdown,
            "warnings": list(self.warnings),
        }


def calibration_summary(
    proba: np.ndarray, y: np.ndarray, conformal_threshold: float | None = None
) -> dict[str, Any]:
    """Expected calibration error and reliability-diagram bins of the top-1 answer, mean
    top-1 probability against accuracy, how often answers given at >= 90 % are wrong, and
    (with a model's conformal threshold) the prediction sets' coverage and mean size."""
    from pdfsg.calibration import prediction_set, reliability

    conf = proba.max(axis=1)
    right = proba.argmax(axis=1) == y
    sure = conf >= 0.9
    out: dict[str, Any] = {
        "ece": reliability(proba, y).ece,
        "mean_top1_probability": float(conf.mean()),
        "top1_accuracy": float(right.mean()),
        "n_answers_at_90": int(sure.sum()),
        "wrong_at_90": None if not sure.any() else float(1.0 - right[sure].mean()),
        "reliability": reliability(proba, y).to_dict(),
    }
    if conformal_threshold is not None:
        sets = [prediction_set(p, conformal_threshold) for p in proba]
        out["prediction_set"] = {
            "threshold": conformal_threshold,
            "coverage": float(np.mean([yi in s for yi, s in zip(y, sets, strict=True)])),
            "mean_size": float(np.mean([len(s) for s in sets])),
        }
    return out


def _top_k_json(proba: np.ndarray, y: np.ndarray) -> dict[str, float]:
    return {str(k): v for k, v in top_k_accuracy(proba, y).items()}


def breakdown(
    proba: np.ndarray, y: np.ndarray, labels: tuple[int, ...], *, paper45: bool = True
) -> dict[str, Any]:
    """Top-k (A1..A6) of subsets of the rows, for a model of more groups than the paper's:
    ``paper45_rows`` (rows whose true group is one of the 45: ``top_k_accuracy`` ranked
    among all the model's groups, ``top_k_accuracy_within_45`` among its groups in the 45,
    renormalised; left out with ``paper45=False``) and ``per_crystal_system`` (``n`` and
    ``top_k_accuracy`` of each system's rows).  ``y``: class indices into ``labels``."""
    from pdfsg.hierarchy import restrict, restriction
    from pdfsg.spacegroups import get, label_set

    y = np.asarray(y, dtype=np.int64)
    true_groups = np.asarray(labels, dtype=np.int64)[y]
    out: dict[str, Any] = {}
    if paper45:
        rows = np.isin(true_groups, label_set("paper45"))
        keep = restriction(labels, "paper45")
        entry: dict[str, Any] = {"n": int(rows.sum())}
        if rows.any():
            assert keep is not None
            position = np.full(len(labels), -1, dtype=np.int64)
            position[keep] = np.arange(keep.size)
            _, sub = restrict(labels, proba[rows], keep)
            entry["top_k_accuracy"] = _top_k_json(proba[rows], y[rows])
            entry["top_k_accuracy_within_45"] = _top_k_json(sub, position[y[rows]])
        out["paper45_rows"] = entry
    systems = np.array([get(int(g)).crystal_system for g in true_groups])
    per_system = {}
    for cs in dict.fromkeys(get(int(g)).crystal_system for g in sorted(set(true_groups))):
        rows = systems == cs
        per_system[cs] = {"n": int(rows.sum()), "top_k_accuracy": _top_k_json(proba[rows], y[rows])}
    out["per_crystal_system"] = per_system
    return out


def training_overlap(
    ids: Any, training_ids: set[str] | None, *, split: str = "test"
) -> tuple[dict[str, Any], str | None]:
    """How many of the evaluated structure ``ids`` the model was trained on.

    Parameters
    ----------
    ids : the evaluated rows' structure ids (augmented copies ``mp-1#aug2`` count as
        ``mp-1``)
    training_ids : the model's recorded hashes (:func:`pdfsg.artifact.read_training_ids`),
        or None when the model records none

    Returns
    -------
    (dict, str or None)
        ``{"checked", "n", "n_seen", "fraction", "examples"}`` and a one-line warning when
        rows were seen in training or the overlap cannot be checked (None otherwise).
    """
    from pdfsg.artifact import structure_id_hash

    ids = [str(i) for i in ids]
    if training_ids is None:
        return {"checked": False, "n": len(ids)}, (
            "the model records no training ids (saved before pdfsg recorded them): whether "
            f"the {split} rows were in its training data cannot be checked"
        )
    seen = [i for i in ids if structure_id_hash(i) in training_ids]
    info = {
        "checked": True,
        "n": len(ids),
        "n_seen": len(seen),
        "fraction": len(seen) / len(ids) if ids else 0.0,
        "examples": seen[:5],
    }
    if not seen:
        return info, None
    return info, (
        f"{len(seen)} of {len(ids)} {split} rows ({info['fraction']:.0%}) are structures the "
        f"model was trained on (e.g. {', '.join(seen[:3])}): these accuracies overstate it"
    )


def evaluate_proba(
    proba: np.ndarray,
    y: np.ndarray,
    labels: tuple[int, ...],
    *,
    split: str = "test",
    train_counts: np.ndarray | None = None,
    n_confusions: int = 10,
) -> Evaluation:
    """Metrics from predicted probabilities (n, K) and true class indices ``y`` (model order)."""
    y = np.asarray(y, dtype=np.int64)
    if y.size == 0:
        raise DatasetError(f"the {split} split is empty; nothing to evaluate")
    K = len(labels)
    pred = np.argmax(proba, axis=1)
    cm = confusion_matrix(y, pred, K)
    return Evaluation(
        n=int(y.size),
        split=split,
        labels=tuple(int(v) for v in labels),
        top_k=top_k_accuracy(proba, y, range(1, 7)),
        confusion=cm,
        counts=np.bincount(y, minlength=K),
        train_counts=train_counts,
        per_class=per_class_accuracy(y, pred, K),
        confusions=top_confusions(cm, labels, n_confusions),
    )


def _rows(ds: Dataset, split: str) -> np.ndarray:
    if split == "all":
        return np.arange(len(ds))
    if split == "train":
        return np.flatnonzero(ds.split == 0)
    if split == "test":
        return np.flatnonzero(ds.split == 1)
    raise DatasetError(f"unknown split {split!r}; choose test, train or all")


def _train_counts(classifier: Any) -> np.ndarray | None:
    """Training rows per model class from the model manifest (dataset counts), if recorded."""
    described = (classifier.manifest or {}).get("training", {}).get("dataset", {})
    counts = described.get("train_counts") or described.get("counts")
    if not isinstance(counts, dict):
        return None
    return np.array([int(counts.get(str(lab), 0)) for lab in classifier.labels], dtype=np.int64)


def evaluate(
    classifier: Any,
    dataset: Dataset,
    split: str = "test",
    *,
    allow_physics_mismatch: bool = False,
    n_confusions: int = 10,
    batch_size: int = 4096,
    composition: bool = False,
    label_set: str | None = None,
) -> Evaluation:
    """Evaluate a loaded classifier on one split of a dataset.

    Parameters
    ----------
    classifier : from :func:`pdfsg.artifact.load_model`
    dataset : Dataset
    split : ``"test"``, ``"train"`` or ``"all"``
    allow_physics_mismatch : bool
        Accept a dataset simulated with other non-grid PdfParams (Qdamp, Uiso...) than the
        model's; the grid must match regardless.
    composition : bool
        Give a composition-aware model each row's reduced formula (as a user who knows the
        sample would); otherwise it ranks from G(r) alone.
    label_set : str, optional
        ``"paper45"``: score only rows whose true group is in the set, ranked among the
        model's groups in it (see the module docstring); None or ``"all"``: every row.

    Raises
    ------
    DatasetError
        Other PdfParams or labels than the model's, or an empty split (or no row left).
    ParamsError
        An unknown ``label_set``, or one without any of the model's groups.
    """
    from pdfsg.artifact import check_compatible
    from pdfsg.hierarchy import OWN_LABEL_SET, restrict, restriction
    from pdfsg.spacegroups import label_set as named_set

    model_labels = tuple(int(v) for v in classifier.labels)
    keep = restriction(model_labels, label_set)
    m = classifier.manifest or {}
    # rows of groups the model lacks are left out (and counted) for a model of every group
    # with enough structures, and under a label set; any other model must know them all
    lenient = keep is not None or m.get("label_set") == "all"
    check_compatible(
        classifier,
        dataset.params,
        () if lenient else dataset.labels,
        allow_physics_mismatch=allow_physics_mismatch,
    )
    rows = _rows(dataset, split)
    if rows.size == 0:
        raise DatasetError(f"the {split} split of the dataset is empty; nothing to evaluate")
    notes = []
    if keep is not None:
        inside = np.isin(dataset.y[rows].astype(np.int64), named_set(str(label_set)))
        if not inside.all():
            notes.append(f"{int((~inside).sum())} rows of groups outside {label_set}")
        rows = rows[inside]
    n_outside = 0
    if lenient:
        known = np.isin(dataset.y[rows].astype(np.int64), model_labels)
        n_outside = int((~known).sum())
        if n_outside:
            notes.append(f"{n_outside} rows of groups the model does not have")
        rows = rows[known]
    if rows.size == 0:
        raise DatasetError(f"no {split} row is of a group the model ranks; nothing to evaluate")
    lookup = np.full(231, -1, dtype=np.int64)
    lookup[np.asarray(model_labels, dtype=np.int64)] = np.arange(len(model_labels))
    y = lookup[np.asarray(dataset.y[rows], dtype=np.int64)]
    X = dataset.X[rows]
    comp = None
    uses = composition and getattr(classifier, "uses_composition", False)
    if uses:
        from pdfsg.composition_vector import encode_formulas

        comp = encode_formulas(dataset.formula[rows])
    proba = np.concatenate(
        [
            classifier.predict_proba(X[i : i + batch_size])
            if comp is None
            else classifier.predict_proba(X[i : i + batch_size], comp=comp[i : i + batch_size])
            for i in range(0, len(rows), batch_size)
        ]
    )
    labels, proba = restrict(model_labels, proba, keep)
    train_counts = _train_counts(classifier)
    if keep is not None:
        position = np.full(len(model_labels), -1, dtype=np.int64)
        position[keep] = np.arange(keep.size)
        y = position[y]
        train_counts = None if train_counts is None else train_counts[keep]
    result = evaluate_proba(
        proba,
        y,
        labels,
        split=split,
        train_counts=train_counts,
        n_confusions=n_confusions,
    )
    result.label_set = {
        "name": OWN_LABEL_SET if keep is None else str(label_set),
        "n_groups": len(labels),
        "model_groups": len(model_labels),
    }
    if notes:
        result.warnings.append(f"left out of the {split} rows: " + "; ".join(notes))
    if len(model_labels) > 45:
        result.breakdown = breakdown(proba, y, labels, paper45=keep is None)
    cal = classifier.calibration(bool(uses)) if hasattr(classifier, "calibration") else None
    result.calibration = calibration_summary(
        proba, y, cal.get("conformal_threshold") if cal else None
    )
    result.calibration["composition_given"] = bool(uses)
    folder = m.get("_folder")
    if folder:
        from pdfsg.artifact import read_training_ids

        result.training_overlap, note = training_overlap(
            dataset.ids[rows], read_training_ids(folder), split=split
        )
        if note:
            result.warnings.append(note)
    result.model = {
        "name": m.get("name"),
        "kind": classifier.kind,
        "folder": m.get("_folder"),
        "preset": m.get("training", {}).get("preset"),
    }
    dm = dataset.manifest
    result.dataset = {
        "source": dm.get("source"),
        "label_set": dm.get("label_set"),
        "n": len(dataset),
        "rows_outside_model_groups": n_outside,
    }
    return result
