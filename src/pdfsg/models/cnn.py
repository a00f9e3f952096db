"""Network definitions only: the paper's CNN and our efficient ``pdfsg-net``, each with its
constructor config dataclass.  Training lives in :mod:`pdfsg.train`.

Paper CNN (Liu et al. 2019, section 3.2, Fig. 4, Table S1)
    input X (normalised G, eq. 4) of ``npoints`` = 209 values
    → Conv1d(1 → 256, kernel 32, 'same'*) → BatchNorm → ReLU
    → Conv1d(256 → 64, kernel 32, 'same') → BatchNorm → ReLU
    → MaxPool(2)  (209 → 104) → Dropout
    → Flatten (104 × 64 = 6656; the paper's "6556" is a typo)
    → Dense 128 → ReLU → Dense n_classes (softmax is applied by the caller).
    (*) 'same' as Keras pads it: k - 1 zeros, the odd one on the right.

    The paper does not give the dropout rate nor where batch normalisation sits.  It says
    it follows He et al. (2016) for initialisation and batch norm, so each convolution is
    followed by batch norm before the ReLU, weights are He-normal (fan-in) and biases zero.
    The layer sequence is that of the Keras ``mnist_cnn`` example (Conv, Conv, MaxPool,
    Dropout 0.25, Flatten, Dense 128, Dropout 0.5, Dense softmax); the paper mentions
    dropout only "in the pooling layer", so the default is 0.25 there and none after the
    dense layer (``dense_dropout`` adds it).

pdfsg-net
    A small residual 1-D CNN that reads X, its derivative dX/dr and the radius r itself
    (a coordinate channel, so absolute distances survive the global pooling), shrinks the
    length with strided residual blocks, widens the receptive field with a dilated block,
    and ends in global average + max pooling and one linear layer.  It has no layer whose
    size depends on the input length, so one trained network accepts any number of grid
    points (a shorter r range gives a shorter input); the coordinate channel is computed
    from the PdfParams grid (``rmin``, ``rstep``) stored in its config.  Default: stem 32
    channels (kernel 7), residual blocks 48/stride 2, 64/stride 2, 96/stride 2, 128/dilation
    2 (kernel 5); about 0.31 M parameters and 22 MFLOP per curve against 1.39 M and 224 MFLOP
    for the paper CNN (``benchmarks/model_cost.py``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = [
    "PaperCNN",
    "PaperCNNConfig",
    "PdfsgNet",
    "PdfsgNetConfig",
    "build_network",
    "config_from_dict",
]


def _he_init(module: nn.Module) -> None:
    """He-normal (fan-in, ReLU gain) weights and zero biases for every conv / linear layer."""
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm1d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


@dataclass(frozen=True)
class PaperCNNConfig:
    """Constructor arguments of :class:`PaperCNN` (defaults: the paper's final model).

    Parameters
    ----------
    n_classes : int
        Number of space-group labels (45 in the paper).
    npoints : int
        Length of the input X (the PdfParams grid size; 209 for the paper's grid).
    filters : tuple[int, int]
        Channels of the two convolutions (paper: 256, 64).
    kernel_size : int
        Kernel length of both convolutions, in grid points (paper: 32).
    hidden : int
        Units of the hidden dense layer (paper: 128).
    pool : int
        Max-pooling size (paper: 2).
    dropout : float
        Dropout rate after the pooling layer (not stated in the paper; 0.25 as in Keras'
        example network of the same shape).
    dense_dropout : float
        Dropout rate after the hidden dense layer (0: none, as the paper describes).
    batch_norm : bool
        Batch normalisation after each convolution (paper: yes, "following He et al.").
    """

    n_classes: int = 45
    npoints: int = 209
    filters: tuple[int, int] = (256, 64)
    kernel_size: int = 32
    hidden: int = 128
    pool: int = 2
    dropout: float = 0.25
    dense_dropout: float = 0.0
    batch_norm: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "filters", tuple(int(f) for f in self.filters))
        if len(self.filters) != 2 or min(self.filters) < 1:
            raise ValueError(f"PaperCNNConfig.filters must be 2 positive ints: {self.filters}")
        if self.npoints < self.pool or self.n_classes < 2 or self.kernel_size < 1:
            raise ValueError(f"PaperCNNConfig out of range: {self}")

    @property
    def flat_features(self) -> int:
        """Length of the flattened feature vector: (npoints // pool) × filters[1]."""
        return (self.npoints // self.pool) * self.filters[1]

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["filters"] = list(self.filters)
        return d


class PaperCNN(nn.Module):
    """The CNN of Liu et al. (2019), Fig. 4; returns logits (n, n_classes).

    Input: normalised X of shape (n, npoints) or (n, 1, npoints).
    """

    def __init__(self, config: PaperCNNConfig) -> None:
        super().__init__()
        self.config = config
        c1, c2 = config.filters
        k = config.kernel_size
        bn = config.batch_norm
        # 'same' padding as Keras/TensorFlow do it: k-1 zeros, the extra one on the right
        same = ((k - 1) // 2, k - 1 - (k - 1) // 2)
        self.features = nn.Sequential(
            nn.ConstantPad1d(same, 0.0),
            nn.Conv1d(1, c1, k, bias=not bn),
            nn.BatchNorm1d(c1) if bn else nn.Identity(),
            nn.ReLU(inplace=True),
            nn.ConstantPad1d(same, 0.0),
            nn.Conv1d(c1, c2, k, bias=not bn),
            nn.BatchNorm1d(c2) if bn else nn.Identity(),
            nn.ReLU(inplace=True),
            nn.MaxPool1d(config.pool),
            nn.Dropout(config.dropout),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(config.flat_features, config.hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(config.dense_dropout),
            nn.Linear(config.hidden, config.n_classes),
        )
        _he_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(1)
        if x.shape[-1] != self.config.npoints:
            raise ValueError(
                f"PaperCNN expects {self.config.npoints} input points, got {x.shape[-1]}"
            )
        return self.classifier(self.features(x))


@dataclass(frozen=True)
class PdfsgNetConfig:
    """Constructor arguments of :class:`PdfsgNet`.

    Parameters
    ----------
    n_classes : int
        Number of space-group labels.
    npoints : int
        Grid size the network was trained on (informational: any length >= 8 is accepted).
    rmin, rstep : float  [Å]
        The PdfParams grid; input point i sits at r = rmin + i*rstep (coordinate channel).
    rscale : float  [Å]
        The coordinate channel is r / rscale.
    stem_channels : int
        Channels of the first convolution.
    stages : tuple of (channels, stride, dilation)
        One residual block per entry.
    kernel_size : int
        Kernel length of the stem (7 fixed) is separate; this is the blocks' kernel.
    use_derivative : bool
        Feed dX/dr (central difference, in units of 1/Å) as a second channel.
    use_coordinate : bool
        Feed r / rscale as a channel.
    dropout : float
        Dropout before the final linear layer.
    composition_dim : int
        Length of the composition vector (:mod:`pdfsg.composition_vector`) fed beside G(r);
        0 for a G(r)-only network.  A composition-aware network takes the all-zero vector as
        "composition unknown".
    composition_hidden : int
        Width of the composition branch and of the joint head.
    """

    n_classes: int = 45
    npoints: int = 209
    rmin: float = 1.5
    rstep: float = math.pi / 23.0
    rscale: float = 30.0
    stem_channels: int = 32
    stages: tuple[tuple[int, int, int], ...] = ((48, 2, 1), (64, 2, 1), (96, 2, 1), (128, 1, 2))
    kernel_size: int = 5
    use_derivative: bool = True
    use_coordinate: bool = True
    dropout: float = 0.1
    composition_dim: int = 0
    composition_hidden: int = 64

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(tuple(int(v) for v in s) for s in self.stages))
        if any(len(s) != 3 or min(s) < 1 for s in self.stages) or not self.stages:
            raise ValueError("PdfsgNetConfig.stages must be (channels, stride, dilation) >= 1")
        if self.kernel_size % 2 == 0:
            raise ValueError("PdfsgNetConfig.kernel_size must be odd")
        if self.rstep <= 0 or self.n_classes < 2:
            raise ValueError(f"PdfsgNetConfig out of range: {self}")

    @property
    def in_channels(self) -> int:
        return 1 + int(self.use_derivative) + int(self.use_coordinate)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["stages"] = [list(s) for s in self.stages]
        return d


class _ResBlock(nn.Module):
    """Basic residual block: conv-BN-ReLU-conv-BN + (1×1 strided) shortcut, then ReLU."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int, dilation: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(c_in, c_out, k, stride=stride, padding=(k - 1) // 2, bias=False)
        self.bn1 = nn.BatchNorm1d(c_out)
        pad2 = dilation * (k - 1) // 2
        self.conv2 = nn.Conv1d(c_out, c_out, k, padding=pad2, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm1d(c_out)
        self.act = nn.ReLU(inplace=True)
        if stride != 1 or c_in != c_out:
            self.shortcut: nn.Module = nn.Sequential(
                nn.Conv1d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm1d(c_out)
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.act(y + self.shortcut(x))


class PdfsgNet(nn.Module):
    """Our efficient residual 1-D CNN; returns logits (n, n_classes) for any input length."""

    def __init__(self, config: PdfsgNetConfig) -> None:
        super().__init__()
        self.config = config
        self.input_norm = nn.BatchNorm1d(config.in_channels)
        c = config.stem_channels
        self.stem = nn.Sequential(
            nn.Conv1d(config.in_channels, c, 7, padding=3, bias=False),
            nn.BatchNorm1d(c),
            nn.ReLU(inplace=True),
        )
        blocks = []
        for c_out, stride, dilation in config.stages:
            blocks.append(_ResBlock(c, c_out, config.kernel_size, stride, dilation))
            c = c_out
        self.blocks = nn.Sequential(*blocks)
        self.dropout = nn.Dropout(config.dropout)
        if config.composition_dim > 0:
            hc = config.composition_hidden
            self.comp_net: nn.Module | None = nn.Sequential(
                nn.Linear(config.composition_dim, hc), nn.ReLU(), nn.Linear(hc, hc), nn.ReLU()
            )
            self.head: nn.Module = nn.Sequential(
                nn.Linear(2 * c + hc, 4 * hc), nn.ReLU(), nn.Linear(4 * hc, config.n_classes)
            )
            last = self.head[-1]
        else:
            self.comp_net = None
            self.head = nn.Linear(2 * c, config.n_classes)
            last = self.head
        _he_init(self)
        nn.init.normal_(last.weight, std=0.01)  # small logits at the start

    def _channels(self, x: torch.Tensor, start: int) -> torch.Tensor:
        cfg = self.config
        chans = [x]
        if cfg.use_derivative:
            d = torch.zeros_like(x)
            d[:, 1:-1] = (x[:, 2:] - x[:, :-2]) / (2 * cfg.rstep)
            d[:, 0] = (x[:, 1] - x[:, 0]) / cfg.rstep
            d[:, -1] = (x[:, -1] - x[:, -2]) / cfg.rstep
            chans.append(d)
        if cfg.use_coordinate:
            n = x.shape[-1]
            i = torch.arange(start, start + n, device=x.device, dtype=x.dtype)
            r = cfg.rmin + cfg.rstep * i
            chans.append((r / cfg.rscale).expand(x.shape[0], n))
        return torch.stack(chans, dim=1)

    def forward(
        self, x: torch.Tensor, start: int = 0, comp: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits for X of shape (n, L) or (n, 1, L): L consecutive grid points from index
        ``start`` of the config's grid (any L >= 8).  ``comp`` (n, composition_dim) is the
        composition vector of a composition-aware network (None: unknown for every row);
        a G(r)-only network ignores it."""
        if x.dim() == 3:
            x = x[:, 0]
        if x.shape[-1] < 8:
            raise ValueError(f"PdfsgNet needs at least 8 input points, got {x.shape[-1]}")
        h = self.blocks(self.stem(self.input_norm(self._channels(x, start))))
        pooled = self.dropout(torch.cat([h.mean(dim=-1), h.amax(dim=-1)], dim=1))
        if self.comp_net is None:
            return self.head(pooled)
        if comp is None:
            comp = x.new_zeros((x.shape[0], self.config.composition_dim))
        return self.head(torch.cat([pooled, self.comp_net(comp.to(x.dtype))], dim=1))


_CONFIGS: dict[str, type] = {"cnn-paper": PaperCNNConfig, "pdfsg-net": PdfsgNetConfig}
_NETS: dict[str, type[nn.Module]] = {"cnn-paper": PaperCNN, "pdfsg-net": PdfsgNet}


def config_from_dict(kind: str, data: dict[str, Any]) -> PaperCNNConfig | PdfsgNetConfig:
    """Rebuild a network config from its ``to_dict()`` (e.g. read from a manifest).

    Raises
    ------
    ValueError
        For an unknown kind or unknown / invalid fields.
    """
    try:
        cls = _CONFIGS[kind]
    except KeyError:
        raise ValueError(f"unknown network kind {kind!r}; known: {sorted(_CONFIGS)}") from None
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown {kind} config field(s): {sorted(unknown)}")
    return cls(**data)


def build_network(kind: str, config: PaperCNNConfig | PdfsgNetConfig) -> nn.Module:
    """Instantiate the network of ``kind`` ("cnn-paper" or "pdfsg-net") from its config."""
    try:
        return _NETS[kind](config)
    except KeyError:
        raise ValueError(f"unknown network kind {kind!r}; known: {sorted(_NETS)}") from None
