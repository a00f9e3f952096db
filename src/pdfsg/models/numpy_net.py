"""Inference of the networks of :mod:`pdfsg.models.cnn` in NumPy (float32), without torch.

The forward pass is that of the torch modules in eval mode, rebuilt from their state dict
(parameter name -> array):

* every batch normalisation that follows a convolution is folded into it at load time
  (``w' = w γ/√(σ² + ε)``, ``b' = β - μ γ/√(σ² + ε)``); the input normalisation of
  ``pdfsg-net`` stays a per-channel scale and shift (folding it into the zero-padded stem
  convolution would change the edge points);
* a convolution is an im2col (one contiguous copy per kernel tap) followed by one matrix
  product, on activations laid out as (n, L, channels), in batches of a few dozen curves
  (small enough for the im2col matrices to stay in cache);
* dropout is the identity, as in eval mode.

The result equals torch's to float32 rounding (``tests/test_models.py`` checks the
probabilities to 1e-5 for both network kinds, with and without the composition branch, and
for shorter inputs starting at a later grid index).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

__all__ = [
    "BN_EPS",
    "NumpyPaperCNN",
    "NumpyPdfsgNet",
    "network_config",
    "numpy_network",
    "softmax",
]

#: epsilon of torch.nn.BatchNorm1d (its default; the networks do not change it)
BN_EPS = 1e-5
#: a batch is cut into chunks of about this many activation values (curves x points x the
#: widest layer x 8; ~37 curves of 209 points for pdfsg-net), so that the im2col matrices
#: stay small
_CHUNK_VALUES = 8_000_000


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (shifted by the row maximum)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


class _State:
    """Reads a state dict once per key, checks shapes, and reports leftovers."""

    def __init__(self, state: Mapping[str, Any]) -> None:
        self._state = {k: np.asarray(v) for k, v in state.items()}
        self._used: set[str] = set()

    def take(self, key: str, shape: tuple[int, ...]) -> np.ndarray:
        if key not in self._state:
            raise ValueError(f"missing weight {key!r}")
        a = self._state[key]
        if a.shape != shape:
            raise ValueError(f"weight {key!r} has shape {a.shape}, expected {shape}")
        self._used.add(key)
        return a.astype(np.float64)

    def has(self, key: str) -> bool:
        return key in self._state

    def done(self) -> None:
        left = sorted(
            k for k in self._state if k not in self._used and not k.endswith("num_batches_tracked")
        )
        if left:
            raise ValueError(f"unexpected weight(s) {left[:4]}")


def _bn_scale_shift(st: _State, prefix: str, c: int) -> tuple[np.ndarray, np.ndarray]:
    gamma = st.take(f"{prefix}.weight", (c,))
    beta = st.take(f"{prefix}.bias", (c,))
    mean = st.take(f"{prefix}.running_mean", (c,))
    var = st.take(f"{prefix}.running_var", (c,))
    scale = gamma / np.sqrt(var + BN_EPS)
    return scale, beta - mean * scale


@dataclass(frozen=True)
class _Conv:
    """A 1-D convolution (batch norm folded in) on (n, L, c_in) activations."""

    w: np.ndarray  # (k * c_in, c_out), rows ordered (k, c_in): tap-major
    b: np.ndarray  # (c_out,)
    k: int
    stride: int = 1
    dilation: int = 1
    pad: tuple[int, int] = (0, 0)

    @classmethod
    def load(
        cls,
        st: _State,
        conv: str,
        bn: str | None,
        c_in: int,
        c_out: int,
        k: int,
        *,
        stride: int = 1,
        dilation: int = 1,
        pad: tuple[int, int] = (0, 0),
        bias: bool = False,
    ) -> _Conv:
        w = st.take(f"{conv}.weight", (c_out, c_in, k))
        b = st.take(f"{conv}.bias", (c_out,)) if bias else np.zeros(c_out)
        if bn is not None:
            scale, shift = _bn_scale_shift(st, bn, c_out)
            w = w * scale[:, None, None]
            b = b * scale + shift
        return cls(
            w=np.ascontiguousarray(w.transpose(2, 1, 0).reshape(k * c_in, c_out), dtype=np.float32),
            b=b.astype(np.float32),
            k=k,
            stride=stride,
            dilation=dilation,
            pad=pad,
        )

    def __call__(self, x: np.ndarray) -> np.ndarray:
        n, _, c = x.shape
        if self.pad != (0, 0):
            x = np.pad(x, ((0, 0), self.pad, (0, 0)))
        s, d = self.stride, self.dilation
        lout = (x.shape[1] - d * (self.k - 1) - 1) // s + 1
        if self.k == 1:
            out = x[:, : s * (lout - 1) + 1 : s, :].reshape(n * lout, c) @ self.w
        else:
            # im2col, one contiguous slab per tap (faster than a strided window gather)
            cols = np.empty((n, lout, self.k, c), dtype=np.float32)
            for j in range(self.k):
                cols[:, :, j, :] = x[:, j * d : j * d + s * (lout - 1) + 1 : s, :]
            out = cols.reshape(n * lout, self.k * c) @ self.w
        out += self.b
        return out.reshape(n, lout, -1)


@dataclass(frozen=True)
class _Linear:
    w: np.ndarray  # (in, out)
    b: np.ndarray  # (out,)

    @classmethod
    def load(cls, st: _State, name: str, n_in: int, n_out: int) -> _Linear:
        w = st.take(f"{name}.weight", (n_out, n_in))
        b = st.take(f"{name}.bias", (n_out,))
        return cls(np.ascontiguousarray(w.T, dtype=np.float32), b.astype(np.float32))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        out = x @ self.w
        out += self.b
        return out


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0, out=x)


#: the config fields of each network kind (:mod:`pdfsg.models.cnn`) that this forward
#: reads; a config with any other field is refused, so that an architecture option added
#: to the torch network cannot be silently ignored here
_FIELDS = {
    "pdfsg-net": (
        "n_classes", "rmin", "rstep", "rscale", "stem_channels", "stages", "kernel_size",
        "use_derivative", "use_coordinate", "composition_dim", "composition_hidden",
    ),
    "cnn-paper": ("n_classes", "npoints", "filters", "kernel_size", "hidden", "pool",
                  "batch_norm"),
}  # fmt: skip
#: config fields that do not change the eval-mode forward pass
_INERT = {"pdfsg-net": ("npoints", "dropout"), "cnn-paper": ("dropout", "dense_dropout")}
#: fields that older manifests lack, with the value that reproduces those networks
_ABSENT = {"composition_dim": 0, "composition_hidden": 0}


def network_config(kind: str, config: Any) -> SimpleNamespace:
    """The fields the NumPy forward of ``kind`` reads, from a config dataclass of
    :mod:`pdfsg.models.cnn` or its ``to_dict()`` (e.g. a manifest's), without importing
    torch (the dataclasses live beside the torch modules).

    Raises
    ------
    ValueError
        For an unknown kind, a missing field or a field this forward does not know.
    """
    if kind not in _FIELDS:
        raise ValueError(f"no NumPy forward for network kind {kind!r}")
    data = dict(config) if isinstance(config, Mapping) else dataclasses.asdict(config)
    unknown = sorted(set(data) - set(_FIELDS[kind]) - set(_INERT[kind]))
    if unknown:
        raise ValueError(f"unknown {kind} config field(s): {unknown}")
    for key, value in _ABSENT.items():
        if key in _FIELDS[kind]:
            data.setdefault(key, value)
    missing = [k for k in _FIELDS[kind] if data.get(k) is None]
    if missing:
        raise ValueError(f"{kind} config lacks {missing}")
    spec = SimpleNamespace(**{k: data[k] for k in _FIELDS[kind]})
    if kind == "pdfsg-net":
        spec.stages = tuple(tuple(int(v) for v in s) for s in spec.stages)
        spec.composition_dim = int(spec.composition_dim)
        spec.composition_hidden = int(spec.composition_hidden)
        if spec.composition_dim > 0 and spec.composition_hidden < 1:
            raise ValueError("pdfsg-net config: composition_hidden must be >= 1")
        spec.in_channels = 1 + int(bool(spec.use_derivative)) + int(bool(spec.use_coordinate))
    else:
        spec.filters = tuple(int(f) for f in spec.filters)
        spec.flat_features = (int(spec.npoints) // int(spec.pool)) * spec.filters[1]
    return spec


class NumpyPdfsgNet:
    """``pdfsg-net`` (:class:`pdfsg.models.cnn.PdfsgNet`) in NumPy; logits for any L >= 8."""

    def __init__(self, config: Any, state: Mapping[str, Any]) -> None:
        self.config = cfg = network_config("pdfsg-net", config)
        st = _State(state)
        c_in = cfg.in_channels
        scale, shift = _bn_scale_shift(st, "input_norm", c_in)
        self.in_scale = scale.astype(np.float32)
        self.in_shift = shift.astype(np.float32)
        c = cfg.stem_channels
        self.stem = _Conv.load(st, "stem.0", "stem.1", c_in, c, 7, pad=(3, 3))
        self.blocks: list[tuple[_Conv, _Conv, _Conv | None]] = []
        k = cfg.kernel_size
        for i, (c_out, stride, dilation) in enumerate(cfg.stages):
            p = f"blocks.{i}"
            conv1 = _Conv.load(
                st, f"{p}.conv1", f"{p}.bn1", c, c_out, k, stride=stride, pad=((k - 1) // 2,) * 2
            )
            pad2 = dilation * (k - 1) // 2
            conv2 = _Conv.load(
                st, f"{p}.conv2", f"{p}.bn2", c_out, c_out, k, dilation=dilation, pad=(pad2, pad2)
            )
            short = None
            if stride != 1 or c != c_out:
                short = _Conv.load(
                    st, f"{p}.shortcut.0", f"{p}.shortcut.1", c, c_out, 1, stride=stride
                )
            self.blocks.append((conv1, conv2, short))
            c = c_out
        self.comp: tuple[_Linear, _Linear] | None = None
        if cfg.composition_dim > 0:
            hc = cfg.composition_hidden
            self.comp = (
                _Linear.load(st, "comp_net.0", cfg.composition_dim, hc),
                _Linear.load(st, "comp_net.2", hc, hc),
            )
            self.head = [
                _Linear.load(st, "head.0", 2 * c + hc, 4 * hc),
                _Linear.load(st, "head.2", 4 * hc, cfg.n_classes),
            ]
        else:
            self.head = [_Linear.load(st, "head", 2 * c, cfg.n_classes)]
        st.done()

    def _channels(self, x: np.ndarray, start: int) -> np.ndarray:
        cfg = self.config
        n, length = x.shape
        chans = [x]
        if cfg.use_derivative:
            d = np.empty_like(x)
            step = np.float32(cfg.rstep)
            d[:, 1:-1] = (x[:, 2:] - x[:, :-2]) / (2 * step)
            d[:, 0] = (x[:, 1] - x[:, 0]) / step
            d[:, -1] = (x[:, -1] - x[:, -2]) / step
            chans.append(d)
        if cfg.use_coordinate:
            i = np.arange(start, start + length, dtype=np.float32)
            r = np.float32(cfg.rmin) + np.float32(cfg.rstep) * i
            chans.append(np.broadcast_to(r / np.float32(cfg.rscale), (n, length)))
        h = np.stack(chans, axis=-1)  # (n, L, c_in)
        h *= self.in_scale
        h += self.in_shift
        return h

    def features(self, x: np.ndarray, start: int = 0) -> np.ndarray:
        """The pooled G(r) features (n, 2 · last stage's channels) the head reads: the mean
        and the max over r of the last block's output (the composition enters after)."""
        h = _relu(self.stem(self._channels(np.ascontiguousarray(x, dtype=np.float32), start)))
        for conv1, conv2, short in self.blocks:
            y = conv2(_relu(conv1(h)))
            y += h if short is None else short(h)
            h = _relu(y)
        return np.concatenate([h.mean(axis=1), h.max(axis=1)], axis=1)

    def _logits(self, x: np.ndarray, start: int, comp: np.ndarray | None) -> np.ndarray:
        pooled = self.features(x, start)
        if self.comp is None:
            return self.head[0](pooled)
        if comp is None:
            comp = np.zeros((x.shape[0], self.config.composition_dim), dtype=np.float32)
        e = _relu(self.comp[1](_relu(self.comp[0](comp))))
        z = _relu(self.head[0](np.concatenate([pooled, e], axis=1)))
        return self.head[1](z)

    def __call__(self, x: np.ndarray, start: int = 0, comp: np.ndarray | None = None) -> np.ndarray:
        """Logits (n, n_classes) float32 for X (n, L): grid points ``start .. start+L-1``;
        ``comp`` (n, composition_dim) for a composition-aware network (None: unknown)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] < 8:
            raise ValueError(f"pdfsg-net needs (n, L >= 8) input, got shape {x.shape}")
        if comp is not None:
            comp = np.ascontiguousarray(comp, dtype=np.float32)
            if self.comp is not None and comp.shape != (x.shape[0], self.config.composition_dim):
                raise ValueError(
                    f"composition must have shape ({x.shape[0]}, {self.config.composition_dim}),"
                    f" got {comp.shape}"
                )
        width = max(self.config.stem_channels, max(s[0] for s in self.config.stages)) * 8
        step = max(1, _CHUNK_VALUES // (x.shape[1] * width))
        parts = []
        for i in range(0, x.shape[0], step):
            cb = None if comp is None else comp[i : i + step]
            parts.append(self._logits(x[i : i + step], start, cb))
        return np.concatenate(parts, axis=0)


class NumpyPaperCNN:
    """The paper CNN (:class:`pdfsg.models.cnn.PaperCNN`) in NumPy; fixed input length."""

    def __init__(self, config: Any, state: Mapping[str, Any]) -> None:
        self.config = cfg = network_config("cnn-paper", config)
        st = _State(state)
        c1, c2 = cfg.filters
        k = cfg.kernel_size
        same = ((k - 1) // 2, k - 1 - (k - 1) // 2)
        bn = cfg.batch_norm
        self.conv1 = _Conv.load(
            st, "features.1", "features.2" if bn else None, 1, c1, k, pad=same, bias=not bn
        )
        self.conv2 = _Conv.load(
            st, "features.5", "features.6" if bn else None, c1, c2, k, pad=same, bias=not bn
        )
        lp = cfg.npoints // cfg.pool
        dense = _Linear.load(st, "classifier.1", cfg.flat_features, cfg.hidden)
        # torch flattens (n, c2, lp) channel-major; the activations here are (n, lp, c2)
        w = dense.w.reshape(c2, lp, cfg.hidden).transpose(1, 0, 2).reshape(lp * c2, cfg.hidden)
        self.dense = _Linear(np.ascontiguousarray(w), dense.b)
        self.out = _Linear.load(st, "classifier.4", cfg.hidden, cfg.n_classes)
        st.done()

    def __call__(self, x: np.ndarray, start: int = 0, comp: np.ndarray | None = None) -> np.ndarray:
        """Logits (n, n_classes) float32 for X (n, npoints); ``start``/``comp`` unused."""
        cfg = self.config
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != cfg.npoints:
            raise ValueError(f"cnn-paper expects (n, {cfg.npoints}) input, got {x.shape}")
        step = max(1, _CHUNK_VALUES // (cfg.npoints * cfg.filters[0] * cfg.kernel_size))
        parts = []
        for i in range(0, x.shape[0], step):
            h = _relu(self.conv1(x[i : i + step, :, None]))
            h = _relu(self.conv2(h))
            n, length, c = h.shape
            lp = length // cfg.pool
            h = h[:, : lp * cfg.pool].reshape(n, lp, cfg.pool, c).max(axis=2)
            parts.append(self.out(_relu(self.dense(h.reshape(n, lp * c)))))
        return np.concatenate(parts, axis=0)


def numpy_network(
    kind: str, config: Any, state: Mapping[str, Any]
) -> NumpyPdfsgNet | NumpyPaperCNN:
    """The NumPy forward of a ``kind`` network from its config and state dict (arrays).

    Raises
    ------
    ValueError
        For an unknown kind, or weights missing, extra or of the wrong shape.
    """
    if kind == "pdfsg-net":
        return NumpyPdfsgNet(config, state)
    if kind == "cnn-paper":
        return NumpyPaperCNN(config, state)
    raise ValueError(f"no NumPy forward for network kind {kind!r}")
