"""benchmarks/learning_curve.py: nested structure subsets and the epochs rule (no training)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import load_benchmark


@pytest.fixture(scope="module")
def lc():
    return load_benchmark("learning_curve")


def _rows(n_structures: int = 50, copies: int = 2):
    """ids / split of an assembled dataset: each training structure clean + ``copies``
    augmented rows, 10 test rows, 5 validation rows."""
    ids, split = [], []
    for k in range(n_structures):
        for c in range(copies + 1):
            ids.append(f"mp-{k}" if c == 0 else f"mp-{k}#aug{c}")
            split.append(0)
    ids += [f"test-{k}" for k in range(10)] + [f"val-{k}" for k in range(5)]
    split += [1] * 10 + [2] * 5
    return np.array(ids, dtype=object), np.array(split, dtype=np.int8)


def _structures(ids, rows):
    return {str(i).split("#")[0] for i in ids[rows] if str(i).startswith("mp-")}


def test_subsets_are_nested_whole_structures_with_every_test_row(lc):
    ids, split = _rows()
    previous: set[str] = set()
    for n in (5, 12, 30, 50):
        rows, got, available = lc.subset_rows(split, ids, n, seed=3)
        assert (got, available) == (n, 50)
        taken = _structures(ids, rows)
        assert len(taken) == n and previous <= taken
        # a structure comes with all its augmented copies, counted once
        assert int((split[rows] == 0).sum()) == 3 * n
        assert int((split[rows] == 1).sum()) == 10 and not (split[rows] == 2).any()
        previous = taken


def test_subsets_capped_and_seeded_and_independent_of_row_order(lc):
    ids, split = _rows()
    rows, got, available = lc.subset_rows(split, ids, 300, seed=0)
    assert (got, available) == (50, 50) and _structures(ids, rows) == _structures(
        ids, np.flatnonzero(split == 0)
    )
    a = _structures(ids, lc.subset_rows(split, ids, 10, seed=0)[0])
    b = _structures(ids, lc.subset_rows(split, ids, 10, seed=1)[0])
    assert a != b
    perm = np.random.default_rng(5).permutation(ids.size)
    c = _structures(ids[perm], lc.subset_rows(split[perm], ids[perm], 10, seed=0)[0])
    assert a == c


def test_epochs_rule(lc):
    # about `steps` optimizer steps: ceil(steps * batch / rows), clamped
    assert lc.epochs_for(50_000, 30_000, 128, 2, 60) == 60  # 76.8 -> max
    assert lc.epochs_for(150_000, 30_000, 128, 2, 60) == 26  # 25.6 -> 26
    assert lc.epochs_for(1_500_000, 30_000, 128, 2, 60) == 3  # 2.56 -> 3
    assert lc.epochs_for(10_000_000, 30_000, 128, 2, 60) == 2  # 0.38 -> min
    with pytest.raises(ValueError):
        lc.epochs_for(0, 30_000, 128)


def test_models_are_valid_network_configs(lc):
    sizes = {
        name: lc.n_parameters(preset, overrides, 45, 209)
        for name, (preset, overrides) in lc.MODELS.items()
    }
    assert sizes["small"] < sizes["default"] < sizes["large"]
