"""Training: presets, class weights, learning-rate schedules, ensembles, resumable checkpoints.

:func:`train` is the entry point (the CLI's ``pdfsg train`` calls it).  A *preset* names a
model kind, its constructor overrides and a :class:`TrainConfig` (or a
:class:`~pdfsg.models.logreg.LogRegConfig`); :data:`PRESETS` holds the paper's CNN
(``cnn-paper``, alias ``paper``), the Table S1 variants (``s1-<c1>-<c2>-k<kernel>-h<hidden>-e<
ensemble>``), the two logistic regressions (``logreg-x``, ``logreg-x2``) and our network
(``pdfsg-net``).

Networks train in an output folder that holds, while running, ``checkpoint.pt`` (one dict:
model, optimizer and scheduler state, configs, member and epoch, RNG states, history; written
atomically after every epoch) and ``history.json`` (learning curves), and at the end the
model artifact (:mod:`pdfsg.artifact`: ``manifest.json`` + weights).  ``resume=True``
continues from the checkpoint and gives the same weights as an uninterrupted run: the batch
order, augmentation draws and dropout masks of an epoch are seeded from (seed, member,
epoch), not from state carried across epochs.

Paper protocol (section 3.2): categorical cross-entropy with class weights N / n_c (N
training rows, n_c of class c; Keras semantics: the batch loss is the mean of the weighted
per-sample losses), Adam, mini-batch 64, lr 0.1 divided by 10 at epochs 81 and 122, 164
epochs, an ensemble of 3 networks whose softmax outputs are averaged.  Adam's epsilon is
Keras' 1e-7.

Multi-GPU: ``ddp=True`` (``pdfsg train --ddp`` under ``torchrun``) reads ``LOCAL_RANK`` /
``RANK`` / ``WORLD_SIZE``, wraps each member in DistributedDataParallel with a
DistributedSampler (per-process batch = batch_size / world size, so the global batch is
the configured one), averages the training metrics over processes, and lets rank 0 alone
write files.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pdfsg.errors import DatasetError, ModelError
from pdfsg.models.logreg import LogRegConfig

if TYPE_CHECKING:  # pragma: no cover
    from pdfsg.datasets import Dataset

__all__ = [
    "CHECKPOINT",
    "DEFAULT_MIN_PER_GROUP",
    "HISTORY",
    "PRESETS",
    "AugmentFn",
    "Preset",
    "ProgressEvent",
    "TrainConfig",
    "TrainResult",
    "class_weights",
    "get_preset",
    "lr_factor",
    "select_groups",
    "structure_counts",
    "train",
]

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
HISTORY = "history.json"
CHECKPOINT_FORMAT = "pdfsg-checkpoint"
CHECKPOINT_VERSION = 1

#: the fewest distinct training structures a space group needs to be a class when a model is
#: trained on a dataset of every group (``label_set="all230"``).  10, because a class must be
#: learned and calibrated: with 10 structures (each clean and in its augmented copies) a
#: network sees the group's variety at least a little, an 80/20 split gives it 2-3 test
#: rows to be scored on, and a 10 % calibration hold-out one row; with fewer, the class
#: weights of the rarest groups dominate the loss (sqrt-inverse weights grow as 1/sqrt(n))
#: while their probabilities are fitted on nothing.  Rarer groups are left out (their rows
#: dropped and counted), not guessed at.
DEFAULT_MIN_PER_GROUP = 10

AugmentFn = Callable[[np.ndarray, np.random.Generator], np.ndarray]
"""``augment(batch_G, rng) -> batch_G``: measurement effects applied to a batch of raw G
(n, npoints) before min-max normalisation; must return the same shape."""


# --------------------------------------------------------------------------- configs


@dataclass(frozen=True)
class TrainConfig:
    """How a network is trained (defaults: the paper's protocol).

    Parameters
    ----------
    epochs : int
        Epochs per ensemble member (paper: 164).
    batch_size : int
        Mini-batch size (paper: 64); under DDP, the global batch.
    optimizer : str
        ``"adam"`` (paper), ``"adamw"`` or ``"sgd"`` (momentum, Nesterov).
    lr : float
        Peak learning rate (paper: 0.1).
    adam_eps : float
        Adam's epsilon (Keras' 1e-7; PyTorch's default would be 1e-8).
    betas : tuple[float, float]
        Adam's moment decay rates.
    momentum : float
        SGD momentum.
    weight_decay : float
        L2 (adam, sgd) or decoupled (adamw) weight decay.
    schedule : str
        ``"step"`` (multiply by ``gamma`` at each of ``milestones``, in epochs; paper),
        ``"cosine"`` (linear warm-up over ``warmup_epochs``, then cosine to
        ``min_lr_factor``), or ``"constant"``.  The factor is updated every step.
    milestones : tuple of int
        Epochs at which the step schedule divides the rate (paper: 81, 122).
    gamma : float
        Step factor (paper: 0.1).
    warmup_epochs : float
        Linear warm-up length (all schedules), in epochs.
    min_lr_factor : float
        Final factor of the cosine schedule.
    class_weight : str
        ``"inverse"`` (paper: N / n_c), ``"sqrt-inverse"`` (sqrt(N / n_c), scaled to a mean
        of 1 over the training rows) or ``"none"``.
    label_smoothing : float
        Cross-entropy label smoothing.
    grad_clip : float
        Clip the global gradient norm to this value (0: off).
    ensemble : int
        Networks trained with seeds seed, seed+1, ...; their softmax outputs are averaged.
    seed : int
        Seeds weights, batch order, dropout, augmentation and the ``max_train`` subset.
    max_train : int
        Train on a random subset of at most this many training rows (0: all).
    eval_batch_size : int
        Batch size for the per-epoch test evaluation.
    amp : bool
        bfloat16 autocast on CUDA (ignored on CPU).
    composition_dropout : float
        Composition-aware networks only: the share of training rows shown with the
        composition withheld (the all-zero "unknown" vector), so one network serves both
        modes.
    composition_perturb : bool
        Composition-aware networks only: train on nominal-composition versions of the rows'
        formulas (:func:`pdfsg.composition_vector.perturb`: jitter, a chemical neighbour
        swapped in, a dopant added), so doped and mixed samples read like their parent.
    """

    epochs: int = 164
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 0.1
    adam_eps: float = 1e-7
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "step"
    milestones: tuple[int, ...] = (81, 122)
    gamma: float = 0.1
    warmup_epochs: float = 0.0
    min_lr_factor: float = 0.0
    class_weight: str = "inverse"
    label_smoothing: float = 0.0
    grad_clip: float = 0.0
    ensemble: int = 3
    seed: int = 0
    max_train: int = 0
    eval_batch_size: int = 1024
    amp: bool = False
    composition_dropout: float = 0.3
    composition_perturb: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        object.__setattr__(self, "milestones", tuple(int(m) for m in self.milestones))
        if self.epochs < 1 or self.batch_size < 1 or self.ensemble < 1:
            raise ModelError("epochs, batch_size and ensemble must be >= 1")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ModelError(f"learning rate must be > 0, got {self.lr}")
        if self.optimizer not in ("adam", "adamw", "sgd"):
            raise ModelError(f"unknown optimizer {self.optimizer!r}: adam, adamw or sgd")
        if self.schedule not in ("step", "cosine", "constant"):
            raise ModelError(f"unknown schedule {self.schedule!r}: step, cosine or constant")
        if self.class_weight not in ("inverse", "sqrt-inverse", "none"):
            raise ModelError(
                f"unknown class_weight {self.class_weight!r}: inverse, sqrt-inverse or none"
            )
        if self.max_train < 0 or self.seed < 0:
            raise ModelError("max_train and seed must be >= 0")
        if not 0.0 <= self.composition_dropout <= 1.0:
            raise ModelError(
                f"composition_dropout must be in [0, 1], got {self.composition_dropout}"
            )

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        d["milestones"] = list(self.milestones)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ModelError(f"unknown TrainConfig field(s): {sorted(unknown)}")
        return cls(**data)


@dataclass(frozen=True)
class Preset:
    """A named recipe: model kind, network-config overrides and training config.

    ``model`` holds constructor overrides only; ``n_classes``, ``npoints`` and (for
    pdfsg-net) ``rmin`` / ``rstep`` always come from the dataset.
    """

    name: str
    kind: str
    model: dict[str, Any]
    train: TrainConfig | LogRegConfig
    description: str


def _paper_cnn_preset(name: str, c1: int, c2: int, k: int, h: int, e: int, note: str) -> Preset:
    return Preset(
        name=name,
        kind="cnn-paper",
        model={"filters": (c1, c2), "kernel_size": k, "hidden": h},
        train=TrainConfig(ensemble=e),
        description=note,
    )


def _build_presets() -> dict[str, Preset]:
    presets: dict[str, Preset] = {}
    presets["logreg-x"] = Preset(
        "logreg-x",
        "logreg",
        {},
        LogRegConfig(feature="x"),
        "elastic-net logistic regression on X (paper: top-1 20 % at alpha=1e-5, L1 ratio 0.75)",
    )
    presets["logreg-x2"] = Preset(
        "logreg-x2",
        "logreg",
        {},
        # 21,736 features: scikit-learn's SGDClassifier (the estimator the paper's alpha and
        # Lambda name), CV on a 3,000-row subsample over the paper's neighbourhood
        LogRegConfig(
            feature="x2",
            solver="sgd",
            alphas=(1e-5, 1e-4),
            l1_ratios=(0.75, 1.0),
            cv_max_samples=3000,
            max_iter=20,
        ),
        "elastic-net logistic regression on X^2, one-vs-rest SGD (paper: top-1 44.5 %, "
        "top-6 77 % at alpha=1e-5, L1 ratio 1.0)",
    )
    presets["cnn-paper"] = _paper_cnn_preset(
        "cnn-paper", 256, 64, 32, 128, 3, "the paper's CNN (Table S1 last row: 70.0 % / 91.9 %)"
    )
    presets["paper"] = dataclasses.replace(presets["cnn-paper"], name="paper")
    # Table S1 rows: filters (c1, c2), kernel, hidden units, ensemble; paper top-1 / top-6 [%]
    table_s1 = [
        (128, 32, 24, 128, 2, 64.1, 90.7),
        (256, 64, 24, 128, 2, 68.6, 91.6),
        (64, 64, 24, 128, 2, 67.4, 91.1),
        (128, 64, 32, 128, 2, 69.0, 91.7),
        (128, 64, 16, 128, 2, 66.6, 91.3),
        (128, 64, 24, 256, 2, 69.2, 91.6),
        (128, 64, 24, 64, 2, 66.4, 91.2),
        (128, 64, 24, 128, 1, 65.7, 91.1),
        (128, 64, 24, 128, 3, 68.2, 91.6),
        (256, 64, 32, 128, 3, 70.0, 91.9),
    ]
    for c1, c2, k, h, e, a1, a6 in table_s1:
        name = f"s1-{c1}-{c2}-k{k}-h{h}-e{e}"
        note = f"Table S1 variant: filters {c1},{c2}, kernel {k}, hidden {h}, ensemble {e} "
        note += f"(paper: top-1 {a1} %, top-6 {a6} %)"
        presets[name] = _paper_cnn_preset(name, c1, c2, k, h, e, note)
    presets["pdfsg-net"] = Preset(
        "pdfsg-net",
        "pdfsg-net",
        {},
        TrainConfig(
            epochs=60,
            batch_size=128,
            optimizer="adamw",
            lr=2e-3,
            weight_decay=0.05,
            schedule="cosine",
            warmup_epochs=2.0,
            min_lr_factor=0.01,
            class_weight="sqrt-inverse",
            label_smoothing=0.05,
            grad_clip=5.0,
            ensemble=1,
        ),
        "our residual 1-D CNN (X, dX/dr and r channels, strided + dilated blocks, global "
        "pooling; any input length)",
    )
    from pdfsg.composition_vector import COMPOSITION_DIM

    presets["pdfsg-net-comp"] = dataclasses.replace(
        presets["pdfsg-net"],
        name="pdfsg-net-comp",
        model={"composition_dim": COMPOSITION_DIM},
        description="pdfsg-net with the sample's composition as a second input (element, "
        "group and period fractions, number of species, anonymised formula); the composition "
        "is withheld for a share of training rows, so 'unknown' is a valid input",
    )
    return presets


PRESETS: dict[str, Preset] = _build_presets()


def get_preset(name: str) -> Preset:
    """The preset called ``name`` (see :data:`PRESETS`); ModelError lists the names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ModelError(
            f"unknown model/preset {name!r}; choose one of: {', '.join(PRESETS)}"
        ) from None


# --------------------------------------------------------------------------- pieces


def class_weights(y: np.ndarray, n_classes: int, mode: str) -> np.ndarray:
    """Per-class loss weights from training class indices ``y``.

    ``"inverse"``: N / n_c (paper); ``"sqrt-inverse"``: sqrt(N / n_c) scaled so that the mean
    weight over the training rows is 1; ``"none"``: ones.  Classes absent from ``y`` get 0.
    """
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=n_classes).astype(np.float64)
    n = counts.sum()
    w = np.zeros(n_classes)
    present = counts > 0
    if mode == "none":
        w[present] = 1.0
    elif mode == "inverse":
        w[present] = n / counts[present]
    elif mode == "sqrt-inverse":
        w[present] = np.sqrt(n / counts[present])
        w *= n / float((w * counts).sum())
    else:
        raise ModelError(f"unknown class_weight mode {mode!r}")
    return w


def lr_factor(step: int, steps_per_epoch: int, cfg: TrainConfig) -> float:
    """Learning-rate multiplier at optimizer step ``step`` (0-based)."""
    epoch = step / max(steps_per_epoch, 1)
    warm = cfg.warmup_epochs
    if warm > 0 and epoch < warm:
        return (step + 1) / (warm * steps_per_epoch)
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "step":
        done = step // max(steps_per_epoch, 1)
        return float(cfg.gamma ** sum(done >= m for m in cfg.milestones))
    span = max(cfg.epochs - warm, 1e-9)
    t = min(max((epoch - warm) / span, 0.0), 1.0)
    return cfg.min_lr_factor + (1 - cfg.min_lr_factor) * 0.5 * (1 + math.cos(math.pi * t))


@dataclass(frozen=True)
class ProgressEvent:
    """Passed to the ``progress`` callback.

    ``stage`` is ``"batch"`` (after each optimizer step), ``"epoch"`` (after the epoch's
    evaluation; ``metrics`` holds the history row) or ``"cv"`` / ``"fit"`` (logistic
    regression).  ``total_batches`` is members × epochs × batches per epoch.
    """

    stage: str
    member: int = 0
    members: int = 1
    epoch: int = 0
    epochs: int = 0
    batch: int = 0
    batches: int = 0
    done_batches: int = 0
    total_batches: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)


ProgressFn = Callable[[ProgressEvent], None]


@dataclass
class TrainResult:
    """What :func:`train` returns: the artifact folder, the classifier, metrics, history."""

    out_dir: Path
    classifier: Any
    metrics: dict[str, Any]
    history: dict[str, Any] | None
    main_process: bool = True  # False on DDP ranks other than 0 (which write nothing)


def _dataset_summary(ds: Dataset, rows: np.ndarray, n_test: int) -> dict[str, Any]:
    """The dataset-manifest subset recorded with a model, plus the rows actually trained on
    (``train_counts``: space group -> rows)."""
    m = ds.manifest
    keep = (
        "source",
        "label_set",
        "min_per_group",
        "dropped_below_min_per_group",
        "counts",
        "split",
        "engine",
        "code_version",
        "created",
    )
    out = {k: m[k] for k in keep if k in m}
    sg, n = np.unique(np.asarray(ds.y[rows], dtype=np.int64), return_counts=True)
    out.update(
        {
            "n": len(ds),
            "n_train": int(rows.size),
            "n_test": int(n_test),
            "train_counts": {str(int(a)): int(b) for a, b in zip(sg, n, strict=True)},
        }
    )
    return out


def structure_counts(ds: Dataset) -> dict[int, int]:
    """Distinct training structures per space group: training rows (split 0) counted by
    structure id, augmented copies (``mp-1#aug2``) and structure-type variants
    (``mp-1~var3``, :mod:`pdfsg.sources.variants`) as their parent (``mp-1``), so a group
    needs that many structures of its own, not variants of one."""
    from pdfsg.sources.variants import parent_id

    train = np.flatnonzero(ds.split == 0)
    seen: dict[int, set[str]] = {}
    for sg, ident in zip(ds.y[train], ds.ids[train], strict=True):
        seen.setdefault(int(sg), set()).add(parent_id(str(ident).split("#", 1)[0]))
    return {sg: len(v) for sg, v in sorted(seen.items())}


def select_groups(ds: Dataset, min_per_group: int | None = None) -> Dataset:
    """The dataset a model of every space group trains on: from a dataset whose labels are
    all 230 groups (``label_set="all230"``), the classes are the groups with at least
    ``min_per_group`` distinct training structures (:func:`structure_counts`; default
    :data:`DEFAULT_MIN_PER_GROUP`, see there why), in increasing order; rows of the other
    groups (training, test and validation) are dropped.

    The result's manifest says ``label_set: "all"``, ``min_per_group``, and the rows and
    groups dropped (``dropped_below_min_per_group``); the count is also logged.  A dataset
    already selected (``label_set == "all"``) is returned as it is; so is any other dataset
    when ``min_per_group`` is None.

    Raises
    ------
    ParamsError
        (``field="min_per_group"``) ``min_per_group`` < 1, given for a dataset that is not
        of all 230 groups, or so high that fewer than 2 groups are left.
    """
    from pdfsg.errors import ParamsError
    from pdfsg.spacegroups import label_set

    if ds.label_set == "all" and "min_per_group" in ds.manifest:
        if min_per_group is not None and min_per_group != ds.manifest["min_per_group"]:
            raise ParamsError(
                f"min_per_group: the dataset was already selected with "
                f"{ds.manifest['min_per_group']}, not {min_per_group}",
                field="min_per_group",
            )
        return ds
    if tuple(ds.labels) != label_set("all230"):
        if min_per_group is None:
            return ds
        raise ParamsError(
            "min_per_group: needs a dataset of every space group (pdfsg dataset build "
            f"--label-set all230); this one has {len(ds.labels)} labels "
            f"({ds.label_set or 'unnamed set'})",
            field="min_per_group",
        )
    n_min = DEFAULT_MIN_PER_GROUP if min_per_group is None else int(min_per_group)
    if n_min < 1:
        raise ParamsError(
            f"min_per_group must be >= 1, got {n_min}",
            field="min_per_group",
        )
    counts = structure_counts(ds)
    labels = tuple(sg for sg, n in counts.items() if n >= n_min)
    if len(labels) < 2:
        raise ParamsError(
            f"min_per_group: only {len(labels)} space group(s) have >= {n_min} training "
            "structures; lower it",
            field="min_per_group",
        )
    keep = np.isin(ds.y.astype(np.int64), np.asarray(labels, dtype=np.int64))
    split = np.asarray(ds.split)
    dropped = {
        name: int(((split == v) & ~keep).sum())
        for name, v in (("train", 0), ("test", 1), ("validation", 2))
    }
    left_out = sorted(set(int(v) for v in np.unique(ds.y[~keep])))
    log.info(
        "min_per_group %d: %d space groups are classes; dropped %d rows (%d train, %d test, "
        "%d validation) of %d rarer groups",
        n_min, len(labels), int((~keep).sum()), dropped["train"], dropped["test"],
        dropped["validation"], len(left_out),
    )  # fmt: skip
    manifest = {
        **ds.manifest,
        "label_set": "all",
        "labels": list(labels),
        "min_per_group": n_min,
        "dropped_below_min_per_group": {
            "rows": int((~keep).sum()),
            **{f"{k}_rows": v for k, v in dropped.items()},
            "groups": left_out,
        },
    }
    return dataclasses.replace(ds.subset(np.flatnonzero(keep)), labels=labels, manifest=manifest)


def _train_rows(ds: Dataset, cfg_seed: int, max_train: int) -> np.ndarray:
    rows = np.flatnonzero(ds.split == 0)
    if rows.size == 0:
        raise DatasetError("the dataset has no training rows (split == 0)")
    if max_train and rows.size > max_train:
        rng = np.random.default_rng([cfg_seed, 12345])
        rows = np.sort(rng.choice(rows, size=max_train, replace=False))
    return rows


def _resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"device {device!r} requested but CUDA is not available")
    return device


def _atomic_torch_save(obj: Any, path: Path) -> None:
    import torch

    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a training checkpoint (``torch.load(weights_only=True)``).

    Raises
    ------
    ModelError
        Missing, unreadable or corrupted file, or not a pdfsg checkpoint.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"{path}: checkpoint is corrupted or unreadable ({msg[:120]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ModelError(f"{path}: not a pdfsg training checkpoint")
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise ModelError(f"{path}: checkpoint version {ckpt.get('version')!r} not supported")
    return ckpt


# --------------------------------------------------------------------------- DDP


@dataclass
class _Dist:
    enabled: bool = False
    rank: int = 0
    local_rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def _ddp_init(device: str) -> tuple[_Dist, str]:
    import torch
    import torch.distributed as dist

    try:
        local_rank = int(os.environ["LOCAL_RANK"])
        rank = int(os.environ.get("RANK", local_rank))
        world = int(os.environ["WORLD_SIZE"])
    except (KeyError, ValueError):
        raise ModelError(
            "--ddp needs LOCAL_RANK and WORLD_SIZE; launch with "
            "'torchrun --nproc-per-node=N $(which pdfsg) train ... --ddp'"
        ) from None
    use_cuda = device != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    else:
        device = "cpu"
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return _Dist(True, rank, local_rank, world), device


# --------------------------------------------------------------------------- networks


def _network_config(kind: str, overrides: dict[str, Any], ds: Dataset):
    from pdfsg.models.cnn import config_from_dict

    base: dict[str, Any] = dict(overrides)
    base["n_classes"] = len(ds.labels)
    base["npoints"] = ds.params.npoints
    if kind == "pdfsg-net":
        base["rmin"] = float(ds.params.rmin)
        base["rstep"] = float(ds.params.rstep)
    try:
        cfg = config_from_dict(kind, base)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"invalid {kind} configuration: {exc}") from None
    return cfg


def _make_optimizer(net, cfg: TrainConfig):
    import torch

    if cfg.optimizer == "adam":
        return torch.optim.Adam(
            net.parameters(),
            lr=cfg.lr,
            betas=cfg.betas,
            eps=cfg.adam_eps,
            weight_decay=cfg.weight_decay,
        )
    if cfg.optimizer == "adamw":
        decay, no_decay = [], []
        for _name, p in net.named_parameters():
            (no_decay if p.ndim <= 1 else decay).append(p)
        return torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": cfg.weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=cfg.lr,
            betas=cfg.betas,
            eps=cfg.adam_eps,
        )
    return torch.optim.SGD(
        net.parameters(),
        lr=cfg.lr,
        momentum=cfg.momentum,
        nesterov=True,
        weight_decay=cfg.weight_decay,
    )


def _evaluate_logits(
    net, X: np.ndarray, y: np.ndarray, device: str, batch: int, comp: np.ndarray | None = None
) -> dict:
    """Unweighted test metrics of one network: loss, top-1 and top-6 accuracy (with the
    rows' composition vectors ``comp`` for a composition-aware network)."""
    import torch
    import torch.nn.functional as F

    if X.shape[0] == 0:
        return {"test_loss": None, "test_acc": None, "test_top6": None}
    net.eval()
    loss = 0.0
    top1 = 0
    top6 = 0
    with torch.no_grad():
        for i in range(0, X.shape[0], batch):
            xb = torch.from_numpy(X[i : i + batch]).to(device)
            yb = torch.from_numpy(y[i : i + batch]).to(device)
            if comp is None:
                logits = net(xb).float()
            else:
                logits = net(xb, 0, torch.from_numpy(comp[i : i + batch]).to(device)).float()
            loss += float(F.cross_entropy(logits, yb, reduction="sum"))
            k = min(6, logits.shape[1])
            topk = logits.topk(k, dim=1).indices
            top1 += int((topk[:, 0] == yb).sum())
            top6 += int((topk == yb[:, None]).any(dim=1).sum())
    n = X.shape[0]
    return {"test_loss": loss / n, "test_acc": top1 / n, "test_top6": top6 / n}


def training_compositions(
    compositions: Sequence[dict[str, float]],
    idx: np.ndarray,
    cfg: TrainConfig,
    rng: np.random.Generator,
) -> np.ndarray:
    """Composition vectors of a training batch: withheld (zeros) for a share
    ``cfg.composition_dropout`` of rows, nominal-composition versions of the rest when
    ``cfg.composition_perturb``."""
    from pdfsg.composition_vector import encode, perturb

    out = []
    for i in idx:
        if rng.random() < cfg.composition_dropout:
            out.append(encode(None))
            continue
        c = compositions[int(i)]
        out.append(encode(perturb(c, rng) if cfg.composition_perturb else c))
    return np.stack(out)


def _epoch_seed(seed: int, member: int, epoch: int, rank: int) -> int:
    """Torch seed of an epoch (epoch -1: weight initialisation of the member)."""
    return int(np.random.SeedSequence([seed, member, epoch + 1, rank]).generate_state(1)[0])


def _train_network(
    ds: Dataset,
    preset: Preset,
    model_overrides: dict[str, Any],
    given: dict[str, Any],
    out: Path,
    *,
    device: str,
    resume: bool,
    augment: AugmentFn | None,
    progress: ProgressFn | None,
    ddp: bool,
    init_from: str | os.PathLike[str] | None = None,
) -> TrainResult:
    import torch
    import torch.nn.functional as F

    from pdfsg.composition import formula_compositions
    from pdfsg.composition_vector import encode_formulas
    from pdfsg.models import NetClassifier
    from pdfsg.models.cnn import build_network

    kind = preset.kind
    dist_info = _Dist()
    device = _resolve_device(device)
    if ddp:
        dist_info, device = _ddp_init(device)
    net_cfg = _network_config(kind, {**preset.model, **model_overrides}, ds)
    ckpt_path = out / CHECKPOINT
    state: dict[str, Any] | None = None
    if resume:
        state = load_checkpoint(ckpt_path)
        cfg = _resume_config(state, given, ckpt_path)
    else:
        if ckpt_path.exists():
            raise ModelError(
                f"{out} already holds a training checkpoint; pass --resume to continue it or "
                "choose another --out folder"
            )
        try:
            cfg = dataclasses.replace(preset.train, **given)  # type: ignore[arg-type]
        except TypeError as exc:
            raise ModelError(f"invalid training settings: {exc}") from None
    assert isinstance(cfg, TrainConfig)
    rows = _train_rows(ds, cfg.seed, cfg.max_train)
    y_all = ds.class_index()
    Xtr, ytr = ds.X[rows], y_all[rows]
    Gtr = ds.G[rows] if augment is not None else None
    test_rows = np.flatnonzero(ds.split == 1)
    Xte, yte = ds.X[test_rows], y_all[test_rows]
    n_classes = len(ds.labels)
    weights = class_weights(ytr, n_classes, cfg.class_weight)
    uses_comp = getattr(net_cfg, "composition_dim", 0) > 0
    comp_tr = formula_compositions(ds.formula[rows]) if uses_comp else []
    Cte = encode_formulas(ds.formula[test_rows]) if uses_comp else None

    identity = {
        "kind": kind,
        "preset": preset.name,
        "model_config": net_cfg.to_dict(),
        "labels": list(ds.labels),
        "params": ds.params.to_dict(),
        "n_train": int(rows.size),
    }
    init = None
    if init_from:
        init = _init_network(init_from, kind, net_cfg.to_dict(), tuple(ds.labels))
        identity["init_from"] = init["source"]
    if state is not None:
        _check_identity(state, identity, ckpt_path)
    ds_summary = _dataset_summary(ds, rows, test_rows.size)
    if dist_info.main:
        out.mkdir(parents=True, exist_ok=True)

    world = dist_info.world
    local_batch = max(1, cfg.batch_size // world)
    n_local = math.ceil(rows.size / world)
    steps_per_epoch = math.ceil(n_local / local_batch)
    total_batches = cfg.ensemble * cfg.epochs * steps_per_epoch
    w_t = torch.as_tensor(weights, dtype=torch.float32, device=device)
    X_dev = torch.from_numpy(Xtr).to(device) if augment is None else None
    y_dev = torch.from_numpy(ytr).to(device)
    use_amp = cfg.amp and device.startswith("cuda")

    finished: list[dict[str, Any]] = []
    history: list[list[dict[str, Any]]] = []
    member, start_epoch = 0, 0
    if state is not None:
        finished = list(state["finished_members"])
        history = [list(h) for h in state["history"]]
        member, start_epoch = int(state["member"]), int(state["epoch"])

    def save_checkpoint(member: int, epoch: int, net, opt, sched) -> None:
        if not dist_info.main:
            return
        raw = net.module if hasattr(net, "module") else net
        ckpt = {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            **identity,
            "train_config": cfg.to_dict(),
            "member": member,
            "epoch": epoch,
            "model": raw.state_dict() if net is not None else None,
            "optimizer": opt.state_dict() if opt is not None else None,
            "scheduler": sched.state_dict() if sched is not None else None,
            "finished_members": finished,
            "history": history,
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "numpy_seed_sequence": [cfg.seed, member, epoch],
            },
            "dataset": ds_summary,
            "saved": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        _atomic_torch_save(ckpt, ckpt_path)
        _write_json(out / HISTORY, {"kind": kind, "preset": preset.name, "members": history})

    done_batches = (member * cfg.epochs + start_epoch) * steps_per_epoch
    while member < cfg.ensemble:
        torch.manual_seed(_epoch_seed(cfg.seed, member, -1, 0))
        net = build_network(kind, net_cfg).to(device)
        if init is not None:  # fine-tuning: start from the given model's member weights
            start = init["states"][member % len(init["states"])]
            net.load_state_dict(
                _start_weights(net, start, init["labels"], tuple(ds.labels), kind, net_cfg)
            )
        opt = _make_optimizer(net, cfg)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s, spe=steps_per_epoch: lr_factor(s, spe, cfg)
        )
        if state is not None and int(state["member"]) == member and state["model"] is not None:
            net.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            rng = state.get("rng", {})
            if isinstance(rng.get("torch"), torch.Tensor):
                torch.set_rng_state(rng["torch"])
        else:
            start_epoch = 0
            history.append([])
        state = None
        model = net
        if dist_info.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            if device.startswith("cuda"):
                model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
                model = DDP(model, device_ids=[dist_info.local_rank])
            else:
                model = DDP(net)
        sampler = None
        if dist_info.enabled:
            from torch.utils.data import DistributedSampler

            sampler = DistributedSampler(
                range(rows.size),  # type: ignore[arg-type]
                num_replicas=world,
                rank=dist_info.rank,
                shuffle=True,
                seed=cfg.seed + member,
            )

        for epoch in range(start_epoch, cfg.epochs):
            t0 = time.perf_counter()
            torch.manual_seed(_epoch_seed(cfg.seed, member, epoch, dist_info.rank))
            if sampler is not None:
                sampler.set_epoch(epoch)
                order = np.fromiter(iter(sampler), dtype=np.int64)
            else:
                order = np.random.default_rng([cfg.seed, member, epoch]).permutation(rows.size)
            aug_rng = np.random.default_rng([cfg.seed, member, epoch, dist_info.rank, 1])
            model.train()
            sums = torch.zeros(3, dtype=torch.float64, device=device)  # loss, correct, n
            lr_now = opt.param_groups[0]["lr"]
            for b in range(steps_per_epoch):
                idx = order[b * local_batch : (b + 1) * local_batch]
                if idx.size <= 1:  # batch norm cannot train on a single sample
                    continue
                idx_t = torch.from_numpy(idx).to(device)
                if augment is None:
                    xb = X_dev.index_select(0, idx_t)  # type: ignore[union-attr]
                else:
                    xb = torch.from_numpy(_augmented_x(Gtr[idx], augment, aug_rng)).to(device)  # type: ignore[index]
                yb = y_dev.index_select(0, idx_t)
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
                    if uses_comp:
                        cb = training_compositions(comp_tr, idx, cfg, aug_rng)
                        logits = model(xb, 0, torch.from_numpy(cb).to(device))
                    else:
                        logits = model(xb)
                per = F.cross_entropy(
                    logits.float(), yb, reduction="none", label_smoothing=cfg.label_smoothing
                )
                loss = (per * w_t[yb]).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
                sched.step()
                with torch.no_grad():  # accumulated on the device: no sync per step
                    sums[0] += loss.detach().double() * idx.size
                    sums[1] += (logits.argmax(1) == yb).sum()
                    sums[2] += idx.size
                done_batches += 1
                if progress is not None and dist_info.main:
                    loss_value = float(loss.detach())
                    progress(
                        ProgressEvent(
                            "batch",
                            member,
                            cfg.ensemble,
                            epoch,
                            cfg.epochs,
                            b + 1,
                            steps_per_epoch,
                            done_batches,
                            total_batches,
                            {"loss": loss_value},
                        )
                    )
            if dist_info.enabled:
                import torch.distributed as tdist

                tdist.all_reduce(sums)
            n_seen = max(float(sums[2]), 1.0)
            row: dict[str, Any] = {
                "epoch": epoch + 1,
                "lr": lr_now,
                "train_loss": float(sums[0]) / n_seen,
                "train_acc": float(sums[1]) / n_seen,
            }
            row.update(_evaluate_logits(net, Xte, yte, device, cfg.eval_batch_size, Cte))
            row["seconds"] = time.perf_counter() - t0
            history[member].append(row)
            log.info("member %d epoch %d: %s", member, epoch + 1, row)
            save_checkpoint(member, epoch + 1, net, opt, sched)
            if progress is not None and dist_info.main:
                progress(
                    ProgressEvent(
                        "epoch",
                        member,
                        cfg.ensemble,
                        epoch + 1,
                        cfg.epochs,
                        steps_per_epoch,
                        steps_per_epoch,
                        done_batches,
                        total_batches,
                        row,
                    )
                )
        finished.append({k: v.detach().cpu() for k, v in net.state_dict().items()})
        member += 1
        start_epoch = 0
        save_checkpoint(member, 0, None, None, None)

    networks = []
    for sd in finished:
        n = build_network(kind, net_cfg)
        n.load_state_dict(sd)
        networks.append(n)
    clf = NetClassifier(
        kind=kind,
        labels=tuple(ds.labels),
        params=ds.params,
        config=net_cfg.to_dict(),
        networks=networks,
        device=device,
    )
    hist = {"kind": kind, "preset": preset.name, "members": history}
    training = {
        "preset": preset.name,
        "train_config": cfg.to_dict(),
        "augmented": augment is not None,
        **(
            {"augment": augment.description}
            if augment is not None and hasattr(augment, "description")
            else {}
        ),
        "dataset": ds_summary,
        "devices": f"{device} x{world}",
    }
    if init is not None:
        training["initialised_from"] = init["summary"]
    prior = init["training_ids"] if init is not None else None
    result = _finish(clf, ds, test_rows, out, training, hist, dist_info.main, Cte, prior)
    if dist_info.enabled:
        import torch.distributed as tdist

        tdist.barrier()
        tdist.destroy_process_group()
    result.main_process = dist_info.main
    return result


def _init_network(
    init_from: str | os.PathLike[str], kind: str, config: dict[str, Any], labels: tuple
) -> dict[str, Any]:
    """The member weights, labels, summary and training ids of the model a run is fine-tuned
    from (``train(init_from=...)``); it must be a network of the same kind and configuration
    (the number of classes aside) sharing at least one group with the dataset (one-line
    ModelError naming the model otherwise)."""
    from pdfsg.artifact import load_model, read_training_ids, resolve_model_dir

    where = str(init_from)
    try:
        clf = load_model(init_from)
    except ModelError as exc:
        raise ModelError(f"--init-from: {exc}") from None
    if getattr(clf, "kind", None) != kind or not hasattr(clf, "state_dicts"):
        raise ModelError(f"--init-from {where}: not a {kind} network")
    shared = set(map(int, clf.labels)) & set(map(int, labels))
    if not shared:
        raise ModelError(f"--init-from {where}: it has none of the dataset's space groups")
    # the class count may differ (a model of other groups): its output rows are mapped
    mine = json.loads(json.dumps({**config, "n_classes": None}))
    theirs = json.loads(json.dumps({**dict(clf.config), "n_classes": None}))
    if mine != theirs:
        keys = set(mine) | set(theirs)
        diff = sorted(k for k in keys if theirs.get(k) != mine.get(k))
        raise ModelError(f"--init-from {where}: network settings differ ({', '.join(diff)})")
    manifest = clf.manifest
    name = manifest.get("name") or resolve_model_dir(init_from).name
    seen = read_training_ids(init_from)
    return {
        "states": clf.state_dicts(),
        "labels": tuple(int(v) for v in clf.labels),
        "source": name,
        "training_ids": seen,
        "summary": {
            "model": name,
            "groups_shared": len(shared),
            "groups_new": len(set(map(int, labels)) - shared),
            "training": manifest.get("training", {}),
            "training_ids": None if seen is None else len(seen),
        },
    }


def _start_weights(net, start: dict, old_labels: tuple, new_labels: tuple, kind: str, net_cfg):
    """A fine-tuned network's starting state: ``start`` (the start model's member), with the
    output rows of the groups both models have copied class by class and those of groups
    only the dataset has left at the fresh initialisation of ``net``.  The class-indexed
    tensors are found by building the network with one class more (their first dimension
    changes), so no layer name is assumed."""
    import torch

    from pdfsg.models.cnn import build_network

    fresh = net.state_dict()
    if tuple(old_labels) == tuple(new_labels):
        return {k: torch.from_numpy(np.array(v)) for k, v in start.items()}
    probe = build_network(kind, dataclasses.replace(net_cfg, n_classes=net_cfg.n_classes + 1))
    per_class = {k for k, v in probe.state_dict().items() if v.shape != fresh[k].shape}
    where = {int(sg): i for i, sg in enumerate(old_labels)}
    pairs = [(j, where[int(sg)]) for j, sg in enumerate(new_labels) if int(sg) in where]
    new_rows = torch.as_tensor([j for j, _ in pairs])
    old_rows = torch.as_tensor([i for _, i in pairs])
    out = {}
    for key, value in fresh.items():
        given = torch.from_numpy(np.array(start[key]))
        if key in per_class:
            merged = value.detach().clone()
            merged[new_rows] = given[old_rows].to(merged.dtype)
            out[key] = merged
        else:
            out[key] = given
    return out


def _augmented_x(G: np.ndarray, augment: AugmentFn, rng: np.random.Generator) -> np.ndarray:
    from pdfsg.preprocess import normalize_minmax

    g = np.asarray(augment(np.array(G, dtype=np.float64), rng))
    if g.shape != G.shape:
        raise ModelError(f"augment returned shape {g.shape}, expected {G.shape}")
    return np.asarray(normalize_minmax(g), dtype=np.float32)


def _check_identity(state: dict, identity: dict, path: Path) -> None:
    for key, value in identity.items():
        if state.get(key) != value:
            raise ModelError(
                f"{path}: checkpoint {key} differs from this run; resume with the same "
                "dataset and model"
            )


def _resume_config(state: dict, given: dict[str, Any], path: Path) -> TrainConfig:
    """The checkpoint's TrainConfig; given settings must agree with it (except epochs)."""
    old = TrainConfig.from_dict(state["train_config"])
    ref = old.to_dict()
    try:
        probe = dataclasses.replace(old, **given).to_dict()
    except TypeError as exc:
        raise ModelError(f"invalid training settings: {exc}") from None
    diff = [k for k in ref if k != "epochs" and probe[k] != ref[k]]
    if diff:
        raise ModelError(
            f"{path}: checkpoint was trained with other settings ({', '.join(diff)}); "
            "only --epochs may change on --resume"
        )
    return dataclasses.replace(old, epochs=int(given.get("epochs", old.epochs)))


def _finish(
    clf, ds, test_rows, out: Path, training, history, write: bool, comp=None, prior_ids=None
) -> TrainResult:
    from pdfsg.artifact import save_model, write_training_ids
    from pdfsg.evaluate import top_k_accuracy

    metrics: dict[str, Any] = {"split": "test", "n": int(test_rows.size)}
    if comp is not None:
        metrics["composition"] = "the test rows' own compositions given"
    if test_rows.size:
        extra = {} if comp is None else {"comp": comp}
        proba = clf.predict_proba(ds.X[test_rows], **extra)
        y = ds.class_index()[test_rows]
        metrics["top_k_accuracy"] = {str(k): v for k, v in top_k_accuracy(proba, y).items()}
    if write:
        save_model(out, clf, training=training, metrics=metrics, history=history)
        # what the model could have seen: every id of the training split (a superset when
        # --max-train subsampled it) and, when fine-tuned, every id its start model saw, for
        # evaluate's overlap warning
        write_training_ids(out, ds.ids[np.flatnonzero(ds.split == 0)], hashed=prior_ids)
    return TrainResult(out_dir=out, classifier=clf, metrics=metrics, history=history)


# --------------------------------------------------------------------------- logreg


def _train_logreg(
    ds: Dataset, preset: Preset, cfg: LogRegConfig, max_train: int, out: Path, progress
) -> TrainResult:
    from pdfsg.models import LogRegClassifier
    from pdfsg.models.logreg import fit_logreg

    rows = _train_rows(ds, cfg.seed, max_train)
    y_all = ds.class_index()
    test_rows = np.flatnonzero(ds.split == 1)

    def cb(stage: str, done: int, total: int) -> None:
        if progress is not None:
            progress(ProgressEvent(stage, done_batches=done, total_batches=total))

    fit = fit_logreg(ds.X[rows], y_all[rows], len(ds.labels), cfg, progress=cb)
    config = cfg.to_dict()
    config.update(
        {
            "alpha": fit.alpha,
            "l1_ratio": fit.l1_ratio,
            "multiclass": fit.multiclass,
            "n_iter": fit.n_iter,
            "converged": fit.converged,
        }
    )
    clf = LogRegClassifier(
        labels=tuple(ds.labels),
        params=ds.params,
        coef=fit.coef,
        intercept=fit.intercept,
        config=config,
    )
    training = {
        "preset": preset.name,
        "train_config": {**cfg.to_dict(), "max_train": max_train},
        "cross_validation": fit.cv,
        "fit_seconds": fit.fit_seconds,
        "dataset": _dataset_summary(ds, rows, test_rows.size),
    }
    out.mkdir(parents=True, exist_ok=True)
    return _finish(clf, ds, test_rows, out, training, None, True)


# --------------------------------------------------------------------------- entry point


def train(
    dataset: Dataset | str | os.PathLike[str],
    model: str,
    out_dir: str | os.PathLike[str],
    *,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    seed: int | None = None,
    ensemble: int | None = None,
    max_train: int | None = None,
    train_overrides: dict[str, Any] | None = None,
    model_overrides: dict[str, Any] | None = None,
    device: str = "auto",
    resume: bool = False,
    augment: AugmentFn | None = None,
    progress: ProgressFn | None = None,
    ddp: bool = False,
    min_per_group: int | None = None,
    init_from: str | os.PathLike[str] | None = None,
) -> TrainResult:
    """Train the preset ``model`` on a dataset and save the artifact into ``out_dir``.

    Parameters
    ----------
    dataset : Dataset or path of a dataset ``.h5`` file
    model : str
        A preset name (:data:`PRESETS`): ``logreg-x``, ``logreg-x2``, ``cnn-paper`` (or
        ``paper``), ``s1-...`` Table S1 variants, ``pdfsg-net``.
    out_dir : path
        Folder for the checkpoint, ``history.json`` and the final artifact.
    epochs, batch_size, lr, seed, ensemble, max_train : optional
        Override the preset's :class:`TrainConfig` fields (logistic regression: ``seed`` and
        ``max_train`` only).  On ``resume`` only ``epochs`` may differ from the checkpoint.
    train_overrides, model_overrides : dict, optional
        Any other TrainConfig / LogRegConfig fields, and network-constructor fields.
    device : str
        ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    resume : bool
        Continue from ``out_dir/checkpoint.pt``.
    augment : callable, optional
        ``augment(batch_G, rng) -> batch_G`` on raw G before normalisation (networks only).
    progress : callable, optional
        Called with a :class:`ProgressEvent` after every batch and epoch.
    ddp : bool
        DistributedDataParallel under torchrun (see the module docstring).
    min_per_group : int, optional
        For a dataset of every space group (``label_set="all230"``): the classes are the
        groups with at least this many distinct training structures, the other groups' rows
        are dropped (:func:`select_groups`; default :data:`DEFAULT_MIN_PER_GROUP` = 10: a
        class needs enough structures to be learned and calibrated).  The model's manifest
        then says ``label_set: "all"``, ``min_per_group`` and the labels in order.  Refused
        for other datasets.
    init_from : path or shipped name, optional
        Fine-tune: every member starts from this trained network's weights (same kind and
        network settings; e.g. ``pdfsg-v7-net-r30``) instead of a random initialisation
        (the output rows of groups the network lacks start fresh, see
        :func:`_start_weights`), then trains with the usual schedule (give a lower ``lr`` and
        ``train_overrides={"warmup_epochs": ...}`` to keep what it learned).  The manifest
        records the start model, and the training ids are the union of both runs'.

    Returns
    -------
    TrainResult
    """
    from pdfsg.datasets import Dataset, read_dataset

    ds = dataset if isinstance(dataset, Dataset) else read_dataset(dataset)
    preset = get_preset(model)
    ds = select_groups(ds, min_per_group)
    out = Path(out_dir)
    given = {
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "ensemble": ensemble,
        "max_train": max_train,
    }
    given = {k: v for k, v in given.items() if v is not None}
    given.update(train_overrides or {})
    if preset.kind == "logreg":
        if model_overrides:
            raise ModelError("logistic regression takes no model overrides")
        bad = set(given) - {f.name for f in dataclasses.fields(LogRegConfig)} - {"max_train"}
        if bad:
            raise ModelError(f"{preset.name} does not take {', '.join(sorted(bad))}")
        mt = int(given.pop("max_train", 0))
        try:
            lcfg = dataclasses.replace(preset.train, **given)  # type: ignore[type-var]
        except (TypeError, ValueError) as exc:
            raise ModelError(f"invalid {preset.name} settings: {exc}") from None
        return _train_logreg(ds, preset, lcfg, mt, out, progress)
    return _train_network(
        ds,
        preset,
        dict(model_overrides or {}),
        given,
        out,
        device=device,
        resume=resume,
        augment=augment,
        progress=progress,
        ddp=ddp,
        init_from=init_from,
    )
