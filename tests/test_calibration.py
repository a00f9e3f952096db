"""Temperature scaling, calibration error and conformal sets on numbers with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from pdfsg.calibration import (
    apply_temperature,
    conformal_threshold,
    fit_temperature,
    prediction_set,
    reliability,
)


def _overconfident(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose true class is drawn from softmax(z), reported as softmax(3 z): a model
    three times too sure of itself."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, size=(n, k))
    p_true = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = np.array([rng.choice(k, p=p) for p in p_true])
    reported = np.exp(3 * z) / np.exp(3 * z).sum(1, keepdims=True)
    return reported, y


def test_temperature_recovers_the_overconfidence():
    p, y = _overconfident(4000, 10)
    t = fit_temperature(p, y)
    assert t == pytest.approx(3.0, rel=0.1)
    before = reliability(p, y).ece
    after = reliability(apply_temperature(p, t), y).ece
    assert before > 0.1 and after < 0.03


def test_apply_temperature_keeps_the_order_and_sums_to_one():
    p = np.array([[0.7, 0.2, 0.1]])
    q = apply_temperature(p, 2.0)
    assert q.sum() == pytest.approx(1.0)
    assert list(np.argsort(-q[0])) == [0, 1, 2]
    assert q[0, 0] < 0.7
    np.testing.assert_allclose(apply_temperature(p, 1.0), p)


def test_conformal_sets_cover_at_the_promised_rate():
    p, y = _overconfident(6000, 20, seed=1)
    cal, new = slice(0, 3000), slice(3000, 6000)
    t = conformal_threshold(p[cal], y[cal], alpha=0.1)
    covered = [y[i] in prediction_set(p[i], t) for i in range(3000, 6000)]
    assert 0.88 <= np.mean(covered) <= 0.93
    assert prediction_set(p[new][0], 1.1).size == 1  # never empty
    with pytest.raises(ValueError, match="alpha"):
        conformal_threshold(p, y, alpha=0)


def test_reliability_of_a_calibrated_model_is_small():
    rng = np.random.default_rng(2)
    conf = rng.uniform(0.2, 1.0, 20000)
    right = rng.random(20000) < conf
    p = np.zeros((20000, 2))
    p[:, 0] = conf
    p[:, 1] = 1 - conf
    y = np.where(right, 0, 1)
    rel = reliability(p, y)
    assert rel.ece < 0.02
    assert rel.count.sum() == 20000
