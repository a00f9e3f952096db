"""Trained classifiers: the objects :func:`pdfsg.artifact.load_model` returns.

Every classifier has ``kind``, ``labels`` (space-group numbers in class order), ``params``
(the :class:`~pdfsg.params.PdfParams` its input grid comes from), ``config`` (constructor
arguments) and ``predict_proba(X) -> (n, n_classes)`` for normalised PDFs X (eq. 4) of shape
(n, npoints).  The network definitions are in :mod:`pdfsg.models.cnn`, the logistic
regression in :mod:`pdfsg.models.logreg`.

Kinds
    ``"logreg"``     elastic-net logistic regression on X or X² (numpy at prediction time)
    ``"cnn-paper"``  the paper's CNN (fixed input length)
    ``"pdfsg-net"``  our residual CNN (any input length; ``start`` gives the grid offset)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from pdfsg.errors import ModelError
from pdfsg.params import PdfParams

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

__all__ = ["KINDS", "NET_KINDS", "Classifier", "LogRegClassifier", "NetClassifier"]

NET_KINDS = ("cnn-paper", "pdfsg-net")
KINDS = ("logreg", *NET_KINDS)


class Classifier(Protocol):
    kind: str
    labels: tuple[int, ...]
    params: PdfParams
    config: dict[str, Any]

    @property
    def npoints(self) -> int: ...

    @property
    def variable_length(self) -> bool: ...

    def predict_proba(self, X: np.ndarray, start: int = 0) -> np.ndarray: ...


def _check_input(X: np.ndarray, npoints: int, start: int, variable: bool, what: str):
    X = np.asarray(X, dtype=np.float32)
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim != 2:
        raise ModelError(f"{what}: input must be a 2-D array (n, npoints), got {X.ndim}-D")
    if not np.isfinite(X).all():
        raise ModelError(f"{what}: input holds non-finite values")
    if variable:
        if start < 0 or X.shape[1] < 8:
            raise ModelError(f"{what}: needs at least 8 input points, got {X.shape[1]}")
    elif X.shape[1] != npoints or start != 0:
        raise ModelError(
            f"{what}: expects the full grid of {npoints} points from rmin, got {X.shape[1]} "
            f"points starting at grid index {start}"
        )
    return X


@dataclass
class LogRegClassifier:
    """Elastic-net logistic regression on ``feature`` ``"x"`` or ``"x2"``."""

    labels: tuple[int, ...]
    params: PdfParams
    coef: np.ndarray
    intercept: np.ndarray
    config: dict[str, Any]
    manifest: dict[str, Any] = field(default_factory=dict, repr=False)
    kind: str = "logreg"

    @property
    def feature(self) -> str:
        return str(self.config["feature"])

    @property
    def multiclass(self) -> str:
        """``"multinomial"`` (softmax) or ``"ovr"`` (one-vs-rest, normalised sigmoids)."""
        return str(self.config.get("multiclass", "multinomial"))

    @property
    def npoints(self) -> int:
        return self.params.npoints

    @property
    def variable_length(self) -> bool:
        return False

    def predict_proba(self, X: np.ndarray, start: int = 0) -> np.ndarray:
        """Class probabilities (n, n_classes) for normalised PDFs X (n, npoints)."""
        from pdfsg.models.logreg import logreg_predict_proba

        X = _check_input(X, self.npoints, start, False, f"logreg-{self.feature} model")
        return logreg_predict_proba(
            X, self.coef, self.intercept, self.feature, multiclass=self.multiclass
        )


@dataclass
class NetClassifier:
    """One network or an ensemble of them (softmax outputs averaged), in eval mode."""

    kind: str
    labels: tuple[int, ...]
    params: PdfParams
    config: dict[str, Any]
    networks: Sequence[nn.Module]
    manifest: dict[str, Any] = field(default_factory=dict, repr=False)
    device: str = "cpu"
    batch_size: int = 512

    def __post_init__(self) -> None:
        for net in self.networks:
            net.eval()
            net.to(self.device)

    @property
    def npoints(self) -> int:
        return self.params.npoints

    @property
    def variable_length(self) -> bool:
        return self.kind == "pdfsg-net"

    def predict_proba(self, X: np.ndarray, start: int = 0) -> np.ndarray:
        """Mean softmax of the ensemble members, (n, n_classes) float64.

        Parameters
        ----------
        X : np.ndarray, shape (n, L)
            Normalised PDFs; L = npoints for ``cnn-paper``; any L >= 8 for ``pdfsg-net``,
            the points being grid indices ``start .. start + L - 1``.
        start : int
            Grid index of the first input point (``pdfsg-net`` only).
        """
        import torch

        X = _check_input(X, self.npoints, start, self.variable_length, f"{self.kind} model")
        out = np.zeros((X.shape[0], len(self.labels)), dtype=np.float64)
        with torch.no_grad():
            for net in self.networks:
                for i in range(0, X.shape[0], self.batch_size):
                    xb = torch.from_numpy(X[i : i + self.batch_size]).to(self.device)
                    logits = net(xb, start) if self.variable_length else net(xb)
                    out[i : i + self.batch_size] += (
                        torch.softmax(logits.float(), dim=1).cpu().double().numpy()
                    )
        out /= len(self.networks)
        return out
