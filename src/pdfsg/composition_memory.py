"""What similar compositions crystallise in: a nearest-neighbour memory of the training
compositions, combined with the network's answer.

The network reads the composition beside G(r), but with ~25,000 training structures it
learns the chemistry only coarsely.  The memory keeps every distinct training composition
(its :mod:`pdfsg.composition_vector` vector) with its space group; for a query it finds the
``k`` nearest in a weighted Euclidean distance (the sorted fractions, i.e. the anonymised
formula, weighted ``stoich_weight`` times, so the same stoichiometry counts most, then
similar elements; the species count is left out, a 1 % dopant would flip it) and
turns their groups into probabilities (weights exp(−(d² − d²_min) / tau), a floor of half
a count spread over all groups).  The combination is a product of experts:

    p(group | G, composition) ∝ p_net(group | G, composition) · (p_memory(group) / p_train(group))^λ

with p_train the groups' training frequencies (the memory's own prior, divided out so that
it is not counted twice).  ``stoich_weight``, ``tau`` and ``λ`` are chosen on validation rows
that neither the network nor the memory saw (``tools/shipped_model.py memory``).

Stored beside the model as ``composition_memory.npz`` (plain arrays, no pickle).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pdfsg.composition_vector import (
    COMPOSITION_DIM,
    N_ELEMENTS,
    N_GROUPS,
    N_PERIODS,
    N_SORTED,
    N_SPECIES_BINS,
    encode,
)

FILENAME = "composition_memory.npz"
_SPECIES_START = N_ELEMENTS + N_GROUPS + N_PERIODS
_SORTED_START = _SPECIES_START + N_SPECIES_BINS


@dataclass
class CompositionMemory:
    """Training compositions (``vectors``, (m, COMPOSITION_DIM)) and their class indices."""

    vectors: np.ndarray
    classes: np.ndarray
    n_classes: int
    k: int = 50
    tau: float = 0.05
    stoich_weight: float = 10.0
    power: float = 0.5

    def __post_init__(self) -> None:
        self.vectors = np.asarray(self.vectors, dtype=np.float32)
        self.classes = np.asarray(self.classes, dtype=np.int64)
        if self.vectors.shape != (self.classes.size, COMPOSITION_DIM):
            raise ValueError(f"memory vectors must be (m, {COMPOSITION_DIM})")
        counts = np.bincount(self.classes, minlength=self.n_classes).astype(np.float64)
        self.prior = (counts + 1.0) / (counts.sum() + self.n_classes)
        self._set_weights()

    def _set_weights(self) -> None:
        w = np.ones(COMPOSITION_DIM, dtype=np.float32)
        # the species count is a step (a 1 % dopant flips it): left out of the distance;
        # the sorted fractions carry the stoichiometry continuously
        w[_SPECIES_START:_SORTED_START] = 0.0
        w[_SORTED_START : _SORTED_START + N_SORTED] = self.stoich_weight
        self._scaled = self.vectors * w
        self._norms = (self._scaled**2).sum(axis=1)
        self._w = w

    def with_settings(self, **settings: float) -> CompositionMemory:
        """The same memory with other k / tau / stoich_weight / power."""
        fields = {"k": self.k, "tau": self.tau, "stoich_weight": self.stoich_weight,
                  "power": self.power, **settings}  # fmt: skip
        return CompositionMemory(self.vectors, self.classes, self.n_classes, **fields)

    def proba(self, comp: np.ndarray, batch: int = 256) -> np.ndarray:
        """(n, n_classes) group probabilities of the compositions ``comp`` (n, DIM)."""
        comp = np.atleast_2d(np.asarray(comp, dtype=np.float32))
        k = min(self.k, self.classes.size)
        out = np.empty((comp.shape[0], self.n_classes))
        for i in range(0, comp.shape[0], batch):
            q = comp[i : i + batch] * self._w
            d2 = (q**2).sum(axis=1)[:, None] + self._norms[None, :] - 2.0 * (q @ self._scaled.T)
            idx = np.argpartition(d2, k - 1, axis=1)[:, :k]
            dk = np.take_along_axis(d2, idx, axis=1)
            w = np.exp(-(dk - dk.min(axis=1, keepdims=True)) / self.tau)
            p = np.full((q.shape[0], self.n_classes), 0.5 / self.n_classes)
            rows = np.repeat(np.arange(q.shape[0]), k)
            np.add.at(p, (rows, self.classes[idx].ravel()), w.ravel())
            out[i : i + batch] = p / p.sum(axis=1, keepdims=True)
        return out

    def combine(self, proba_net: np.ndarray, comp: np.ndarray) -> np.ndarray:
        """The product of experts (module docstring) for rows whose composition is known."""
        # a series of files shares one composition: each distinct one is looked up once
        distinct, inverse = np.unique(np.asarray(comp, np.float32), axis=0, return_inverse=True)
        ratio = (self.proba(distinct) / self.prior)[inverse.ravel()]
        logp = np.log(np.clip(proba_net, 1e-12, None)) + self.power * np.log(ratio)
        logp -= logp.max(axis=1, keepdims=True)
        p = np.exp(logp)
        return p / p.sum(axis=1, keepdims=True)

    # ------------------------------------------------------------------ storage

    def save(self, folder: str | Path) -> Path:
        """Write ``composition_memory.npz`` into ``folder`` (vectors as float16, compressed:
        they are mostly zeros)."""
        path = Path(folder) / FILENAME
        np.savez_compressed(
            path,
            vectors=self.vectors.astype(np.float16),
            classes=self.classes.astype(np.int16),
            n_classes=np.int64(self.n_classes),
            settings=np.array([self.k, self.tau, self.stoich_weight, self.power]),
        )
        return path

    @classmethod
    def load(cls, path: str | Path) -> CompositionMemory:
        with np.load(path, allow_pickle=False) as z:
            vectors, classes = z["vectors"].astype(np.float32), z["classes"]
            n_classes = int(z["n_classes"])
            k, tau, stoich, power = (float(v) for v in z["settings"])
        return cls(vectors, classes, n_classes, k=int(k), tau=tau, stoich_weight=stoich,
                   power=power)  # fmt: skip


def build_memory(
    compositions: list[dict[str, float]], classes: np.ndarray, n_classes: int
) -> CompositionMemory:
    """A memory of the distinct (composition, class) pairs of training rows."""
    seen: dict[tuple, int] = {}
    vectors, labels = [], []
    for comp, c in zip(compositions, np.asarray(classes), strict=True):
        total = sum(comp.values())
        key = (tuple(sorted((e, round(a / total, 6)) for e, a in comp.items())), int(c))
        if key in seen:
            continue
        seen[key] = len(labels)
        vectors.append(encode(comp))
        labels.append(int(c))
    return CompositionMemory(np.stack(vectors), np.asarray(labels), n_classes)
