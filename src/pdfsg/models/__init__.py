"""Trained classifiers: the objects :func:`pdfsg.artifact.load_model` returns.

Every classifier has ``kind``, ``labels`` (space-group numbers in class order), ``params``
(the :class:`~pdfsg.params.PdfParams` its input grid comes from), ``config`` (constructor
arguments) and ``predict_proba(X) -> (n, n_classes)`` for normalised PDFs X (eq. 4) of shape
(n, npoints).  The network definitions are in :mod:`pdfsg.models.cnn`, the logistic
regression in :mod:`pdfsg.models.logreg`.

Kinds
    ``"logreg"``     elastic-net logistic regression on X or X² (numpy at prediction time)
    ``"cnn-paper"``  the paper's CNN (fixed input length)
    ``"pdfsg-net"``  our residual CNN (any input length; ``start`` gives the grid offset;
                     optionally a composition branch, ``predict_proba(X, start, comp)``)

Networks predict with the NumPy forward of :mod:`pdfsg.models.numpy_net` on the CPU, so
prediction imports no torch; torch is used on other devices and in training.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from pdfsg.errors import ModelError
from pdfsg.params import PdfParams

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

__all__ = [
    "KINDS",
    "NET_KINDS",
    "Classifier",
    "LogRegClassifier",
    "NetClassifier",
    "limit_threads",
    "member_proba",
    "nested_mean",
]

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


#: the thread count set by :func:`limit_threads` (None: the libraries' defaults)
_THREADS: int | None = None


def limit_threads(n: int) -> None:
    """Run inference on ``n`` CPU threads: NumPy's BLAS (and any OpenMP pool) through
    threadpoolctl when it is installed, else the ``OMP/OPENBLAS/MKL_NUM_THREADS`` variables
    (effective only for libraries not loaded yet), and torch's intra-op threads when torch
    is used.  The CLI calls it with ``--threads`` (default 1: small matrix products gain
    nothing from a second thread, and a busy second core stalls them)."""
    global _THREADS
    n = int(n)
    if n < 1:
        raise ValueError(f"thread count must be >= 1, got {n}")
    _THREADS = n
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        import os

        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(n)
    else:
        threadpool_limits(limits=n)
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)


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


def _calibration(manifest: dict[str, Any], composition_known: bool) -> dict[str, Any] | None:
    """One input mode's entry of ``manifest["calibration"]["modes"]``, or None."""
    modes = (manifest.get("calibration") or {}).get("modes") or {}
    return modes.get("composition" if composition_known else "g_only")


def _load_memory(manifest: dict[str, Any]) -> Any:
    """The composition memory a manifest lists, from the model's folder (None if none)."""
    from pdfsg.composition_memory import FILENAME, CompositionMemory

    folder = manifest.get("_folder")
    if not (manifest.get("composition_memory") and folder):
        return None
    path = Path(folder) / FILENAME
    if not path.is_file():
        raise ModelError(f"{path}: missing (the manifest lists a composition memory)")
    return CompositionMemory.load(path)


def _load_pdf_memory(manifest: dict[str, Any], npoints: int) -> Any:
    """The PDF memory a manifest lists (``manifest["pdf_memory"]``: its ``file``, relative to
    the model's folder, and its settings), cut to the model's grid (None if none)."""
    from pdfsg.pdf_memory import PdfMemory

    entry, folder = manifest.get("pdf_memory"), manifest.get("_folder")
    if not (entry and folder):
        return None
    path = (Path(folder) / entry["file"]).resolve()
    if not path.is_file():
        raise ModelError(f"{path}: missing (the manifest lists a PDF memory)")
    names = ("k", "tau", "power", "floor_similarity", "type_k", "type_tau", "type_power")
    settings = {k: entry[k] for k in names if k in entry}
    return PdfMemory.load(path, npoints=npoints).with_settings(**settings)


def _with_memory(proba: np.ndarray, comp: np.ndarray | None, memory: Any) -> np.ndarray:
    """Rows with a known composition combined with the composition memory, if any."""
    if comp is None or memory is None:
        return proba
    known = comp[:, -1] > 0
    if known.any():
        proba[known] = memory.combine(proba[known], comp[known])
    return proba


def _calibrate(proba: np.ndarray, comp: np.ndarray | None, calibration: Any) -> np.ndarray:
    """Each row's input mode's calibration (temperature scaling, then a top-label map where
    the record has one), by whether the row's composition is known
    (``calibration(known) -> dict | None``)."""
    from pdfsg.calibration import calibrate_proba

    known = np.zeros(proba.shape[0], bool) if comp is None else comp[:, -1] > 0
    for flag in (False, True):
        cal = calibration(flag)
        rows = known == flag
        if cal and rows.any() and (cal.get("temperature", 1.0) != 1.0 or cal.get("top_label")):
            proba[rows] = calibrate_proba(proba[rows], cal)
    return proba


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


class _Calibrated:
    """What a network model and an ensemble share after their raw probabilities: the
    manifest's composition memory and calibration (``self.manifest``,
    ``self.uses_composition``)."""

    manifest: dict[str, Any]
    uses_composition: bool

    def calibration(self, composition_known: bool) -> dict[str, Any] | None:
        """The manifest's calibration of one input mode (``temperature``,
        ``conformal_threshold``, ...; see ``tools/shipped_model.py calibrate``), or None for
        an uncalibrated model."""
        return _calibration(self.manifest, composition_known and self.uses_composition)

    @property
    def composition_memory(self) -> Any:
        """The :class:`pdfsg.composition_memory.CompositionMemory` stored beside the model
        (``manifest["composition_memory"]``), loaded on first use; None when there is none."""
        if not hasattr(self, "_memory"):
            self._memory = _load_memory(self.manifest)
        return self._memory

    @property
    def pdf_memory(self) -> Any:
        """The :class:`pdfsg.pdf_memory.PdfMemory` the manifest lists
        (``manifest["pdf_memory"]``), loaded on first use; None when there is none."""
        if not hasattr(self, "_pdf_memory"):
            self._pdf_memory = _load_pdf_memory(self.manifest, self.npoints)
        return self._pdf_memory

    def _finish_proba(
        self,
        out: np.ndarray,
        comp: np.ndarray | None,
        calibrated: bool,
        memory: bool,
        X: np.ndarray | None = None,
        start: int = 0,
        diameters: np.ndarray | None = None,
    ) -> np.ndarray:
        """The PDF memory (every row of ``X``, as particles of ``diameters`` where given;
        its formula-type vote for rows with a known composition), the composition memory
        (those rows), then the temperature."""
        if memory and X is not None and self.pdf_memory is not None:
            out = self.pdf_memory.combine(out, X, start, comp, diameters)
        if memory:
            out = _with_memory(out, comp, self.composition_memory)
        return _calibrate(out, comp, self.calibration) if calibrated else out


class NetClassifier(_Calibrated):
    """One network or an ensemble of them (softmax outputs averaged), in eval mode.

    Built either from torch modules (``networks=``, as :mod:`pdfsg.train` does) or from
    their state dicts as NumPy arrays (``states=``, as :func:`pdfsg.artifact.load_model`
    does).  On the CPU the forward pass is the NumPy one of :mod:`pdfsg.models.numpy_net`
    (no torch import; the weights of torch modules are read once, at the first
    prediction); on another device, or with ``engine="torch"``, it is the torch modules'.

    Parameters
    ----------
    kind : str
        ``"cnn-paper"`` or ``"pdfsg-net"``.
    labels : tuple of int
        Space-group numbers in class order.
    params : PdfParams
        The settings of the input grid.
    config : dict
        The network config's ``to_dict()``.
    networks : sequence of torch.nn.Module, optional
        The ensemble members as torch modules.
    manifest : dict, optional
        The manifest the model was loaded from.
    device : str
        Torch device (``"cpu"``: NumPy inference unless ``engine="torch"``).
    batch_size : int
        Curves per torch forward pass.
    states : sequence of dict[str, np.ndarray], optional
        The members' state dicts (parameter name -> array) instead of ``networks``.
    engine : str
        ``"auto"`` (NumPy on the CPU, torch elsewhere), ``"numpy"`` or ``"torch"``.
    """

    def __init__(
        self,
        kind: str,
        labels: tuple[int, ...],
        params: PdfParams,
        config: dict[str, Any],
        networks: Sequence[nn.Module] | None = None,
        manifest: dict[str, Any] | None = None,
        device: str = "cpu",
        batch_size: int = 512,
        *,
        states: Sequence[Mapping[str, np.ndarray]] | None = None,
        engine: str = "auto",
    ) -> None:
        if (networks is None) == (states is None):
            raise ModelError("a NetClassifier needs either networks or states (not both)")
        if engine not in ("auto", "numpy", "torch"):
            raise ModelError(f"engine must be 'auto', 'numpy' or 'torch', got {engine!r}")
        self.kind = kind
        self.labels = tuple(labels)
        self.params = params
        self.config = config
        self.manifest = manifest if manifest is not None else {}
        self.device = device
        self.batch_size = batch_size
        self.engine = engine
        self._torch: list[nn.Module] | None = None
        self._states = None if states is None else [dict(s) for s in states]
        self._numpy: list[Any] | None = None
        if networks is not None:
            self._torch = list(networks)
            self._prepare_torch()
        if not (self._torch or self._states):
            raise ModelError("a NetClassifier needs at least one network")

    def __repr__(self) -> str:
        return (
            f"NetClassifier(kind={self.kind!r}, members={self.n_members}, "
            f"n_classes={len(self.labels)}, npoints={self.npoints}, device={self.device!r})"
        )

    def _prepare_torch(self) -> None:
        assert self._torch is not None
        for net in self._torch:
            net.eval()
            net.to(self.device)

    @property
    def n_members(self) -> int:
        return len(self._torch) if self._torch is not None else len(self._states or [])

    @property
    def networks(self) -> list[nn.Module]:
        """The ensemble members as torch modules (built from the state arrays, and torch
        imported, on first access when the classifier was loaded without them)."""
        if self._torch is None:
            import torch

            from pdfsg.models.cnn import build_network, config_from_dict

            cfg = config_from_dict(self.kind, self.config)
            nets = []
            for state in self._states or []:
                net = build_network(self.kind, cfg)
                net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()})
                nets.append(net)
            self._torch = nets
            self._prepare_torch()
        return self._torch

    def state_dicts(self) -> list[dict[str, np.ndarray]]:
        """Each member's state dict as NumPy arrays (what :func:`pdfsg.artifact.save_model`
        writes)."""
        if self._torch is not None:
            return [
                {k: v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()}
                for net in self._torch
            ]
        return [dict(s) for s in self._states or []]

    @property
    def npoints(self) -> int:
        return self.params.npoints

    @property
    def variable_length(self) -> bool:
        return self.kind == "pdfsg-net"

    @property
    def composition_dim(self) -> int:
        """Length of the composition vector the network reads (0: G(r) only)."""
        return int(self.config.get("composition_dim", 0) or 0) if self.kind == "pdfsg-net" else 0

    @property
    def uses_composition(self) -> bool:
        """True for a network with a composition branch (config ``composition_dim > 0``)."""
        return self.composition_dim > 0

    def _uses_torch(self) -> bool:
        if self.engine == "auto":
            return not self.device.startswith("cpu")
        return self.engine == "torch"

    def _numpy_members(self) -> list[Any]:
        if self._numpy is None:
            from pdfsg.models.numpy_net import numpy_network

            try:
                self._numpy = [numpy_network(self.kind, self.config, s) for s in self.state_dicts()]
            except ValueError as exc:
                raise ModelError(f"{self.kind} weights do not fit its config ({exc})") from None
        return self._numpy

    def _check_comp(self, comp: np.ndarray | None, n: int) -> np.ndarray | None:
        if comp is None or not self.uses_composition:
            return None
        comp = np.asarray(comp, dtype=np.float32)
        if comp.ndim == 1:
            comp = comp[None, :]
        if comp.shape != (n, self.composition_dim):
            raise ModelError(
                f"{self.kind} model: composition must have shape ({n}, {self.composition_dim}), "
                f"got {comp.shape}"
            )
        if not np.isfinite(comp).all():
            raise ModelError(f"{self.kind} model: composition holds non-finite values")
        return comp

    def predict_proba(
        self,
        X: np.ndarray,
        start: int = 0,
        comp: np.ndarray | None = None,
        *,
        calibrated: bool = True,
        memory: bool = True,
        diameters: np.ndarray | None = None,
    ) -> np.ndarray:
        """Mean softmax of the ensemble members, (n, n_classes) float64, temperature-scaled
        by the manifest's calibration unless ``calibrated=False``.

        Parameters
        ----------
        X : np.ndarray, shape (n, L)
            Normalised PDFs; L = npoints for ``cnn-paper``; any L >= 8 for ``pdfsg-net``,
            the points being grid indices ``start .. start + L - 1``.
        start : int
            Grid index of the first input point (``pdfsg-net`` only).
        comp : np.ndarray, shape (n, composition_dim), optional
            Composition vectors for a network with a composition branch
            (:attr:`uses_composition`); None (or a row of zeros) means unknown.  Ignored by
            G(r)-only networks.
        calibrated : bool
            Apply the manifest's temperature (per input mode); False gives the
            uncalibrated probabilities (what calibration is fitted on).
        memory : bool
            Combine the rows with the model's PDF memory (:mod:`pdfsg.pdf_memory`) and those
            with a known composition with its composition memory
            (:mod:`pdfsg.composition_memory`) where it has them; False gives the network
            alone.
        diameters : np.ndarray, shape (n,), optional
            Particle diameters [nm] of the rows (NaN: bulk), e.g. from
            :func:`pdfsg.particle_size.estimate_diameter`: the PDF memory compares such rows
            with its curves as particles of that size would show them.
        """
        X = _check_input(X, self.npoints, start, self.variable_length, f"{self.kind} model")
        comp = self._check_comp(comp, X.shape[0])
        if not self._uses_torch():
            from pdfsg.models.numpy_net import softmax

            out = np.zeros((X.shape[0], len(self.labels)), dtype=np.float64)
            for net in self._numpy_members():
                out += softmax(net(X, start, comp))
            out /= self.n_members
        else:
            out = self._predict_torch(X, start, comp)
        return self._finish_proba(out, comp, calibrated, memory, X, start, diameters)

    def _predict_torch(self, X: np.ndarray, start: int, comp: np.ndarray | None) -> np.ndarray:
        import torch

        if _THREADS is not None and torch.get_num_threads() != _THREADS:
            torch.set_num_threads(_THREADS)

        out = np.zeros((X.shape[0], len(self.labels)), dtype=np.float64)
        with torch.no_grad():
            for net in self.networks:
                for i in range(0, X.shape[0], self.batch_size):
                    xb = torch.from_numpy(X[i : i + self.batch_size]).to(self.device)
                    if not self.variable_length:
                        logits = net(xb)
                    elif comp is None:
                        logits = net(xb, start)
                    else:
                        cb = torch.from_numpy(comp[i : i + self.batch_size]).to(self.device)
                        logits = net(xb, start, cb)
                    out[i : i + self.batch_size] += (
                        torch.softmax(logits.float(), dim=1).cpu().double().numpy()
                    )
        out /= self.n_members
        return out


def member_proba(
    member: Any, X: np.ndarray, start: int = 0, comp: np.ndarray | None = None
) -> np.ndarray:
    """A member's probabilities as :class:`EnsembleClassifier` combines them: uncalibrated
    and without memories, a composition-aware member given ``comp``, the others G(r) alone
    (a fixed-length model as it predicts)."""
    if getattr(member, "uses_composition", False):
        return member.predict_proba(X, start, comp, calibrated=False, memory=False)
    if member.variable_length:
        return member.predict_proba(X, start, calibrated=False)
    return member.predict_proba(X, start)


def nested_mean(full_mean: np.ndarray, nested: dict[tuple[int, ...], list[np.ndarray]]):
    """An ensemble's probabilities from the mean of its members of every label
    (``full_mean``, (n, n_labels)) and the members that rank a subset of the labels
    (``nested``: the subset's columns -> those members' probabilities over it): a column of
    a subset gets the subset's mass in ``full_mean`` times the mean of every member's share
    of it within the subset (:class:`EnsembleClassifier`)."""
    out = np.array(full_mean, dtype=np.float64, copy=True)
    for cols_key, probas in nested.items():
        cols = np.array(cols_key)
        mass = out[:, cols].sum(axis=1, keepdims=True)
        shares = [out[:, cols] / np.clip(mass, 1e-300, None)]
        shares += [p / np.clip(p.sum(axis=1, keepdims=True), 1e-300, None) for p in probas]
        out[:, cols] = mass * np.mean(shares, axis=0)
    return out


class EnsembleClassifier(_Calibrated):
    """Several trained models of one grid as one: their probabilities averaged (each
    composition-aware member gets the composition, the others G(r) alone), then the
    ensemble's own composition memory and calibration (its manifest), so that G(r)-only
    networks trained on more data and a composition-aware one serve together.

    The ensemble's labels are its first member's.  A member may rank only a subset of them
    (a model of the paper's 45 groups in an ensemble of every group): it then shares only
    how the probability inside its subset is divided, not how much the subset gets.  With
    p_full the mean of the members of all labels and S a subset, a group g in S gets
    p_full(S) times the mean over all members of their probability of g given S; groups
    outside S keep p_full(g).

    ``members`` are loaded models (:func:`pdfsg.artifact.load_model`); ``manifest`` is the
    ensemble folder's (``kind: "ensemble"``).
    """

    kind = "ensemble"

    def __init__(self, members: Sequence[Any], manifest: dict[str, Any]) -> None:
        if not members:
            raise ModelError("an ensemble needs at least one member")
        first = members[0]
        index = {int(v): i for i, v in enumerate(first.labels)}
        #: per member, the columns of the ensemble's labels it ranks (None: all of them)
        self._columns: list[np.ndarray | None] = []
        for m in members:
            if tuple(m.labels) == tuple(first.labels):
                self._columns.append(None)
            elif any(int(v) in index for v in m.labels):
                # groups the ensemble lacks (230 in a 45-group member of an ensemble with
                # no Ia-3d) are dropped from that member's vote
                self._columns.append(np.array([index.get(int(v), -1) for v in m.labels]))
            else:
                raise ModelError("an ensemble's members must share groups with its first")
            if not m.params.same_grid_and_physics(first.params):
                raise ModelError("the members of an ensemble must share one r grid")
        self.members = list(members)
        self.labels = tuple(first.labels)
        self.params = first.params
        self.manifest = manifest
        self.config: dict[str, Any] = {"members": [m.manifest.get("name") for m in members]}

    def __repr__(self) -> str:
        return f"EnsembleClassifier(members={self.config['members']})"

    @property
    def npoints(self) -> int:
        return self.params.npoints

    @property
    def variable_length(self) -> bool:
        return all(m.variable_length for m in self.members)

    @property
    def composition_dim(self) -> int:
        return max(int(getattr(m, "composition_dim", 0)) for m in self.members)

    @property
    def uses_composition(self) -> bool:
        return self.composition_dim > 0

    def predict_proba(
        self,
        X: np.ndarray,
        start: int = 0,
        comp: np.ndarray | None = None,
        *,
        calibrated: bool = True,
        memory: bool = True,
        diameters: np.ndarray | None = None,
    ) -> np.ndarray:
        """Mean of the members' uncalibrated probabilities, then the ensemble's composition
        memory (rows with a known composition) and temperature (see
        :meth:`NetClassifier.predict_proba` for the arguments)."""
        full, nested = [], {}
        for m, cols in zip(self.members, self._columns, strict=True):
            p = member_proba(m, X, start, comp)
            if cols is None:
                full.append(p)
            else:
                nested.setdefault(tuple(cols[cols >= 0].tolist()), []).append(p[:, cols >= 0])
        out = nested_mean(np.mean(full, axis=0), nested)
        if comp is not None:
            comp = np.atleast_2d(np.asarray(comp, dtype=np.float32))
        return self._finish_proba(out, comp, calibrated, memory, X, start, diameters)
