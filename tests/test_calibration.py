"""Temperature scaling, top-label maps, calibration error and conformal sets on numbers with
known answers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pdfsg.calibration import (
    TOP_LABEL_METHODS,
    apply_temperature,
    apply_top_label,
    calibrate_proba,
    conformal_threshold,
    fit_temperature,
    fit_top_label,
    negative_log_likelihood,
    prediction_set,
    reliability,
    top_label_map,
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


def _top_overconfident(n: int, k: int = 30, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose top-1 answer is right with probability c**2 (c its reported probability)
    and otherwise one of the other classes at random: an over-confidence that grows towards
    the middle and that one temperature cannot undo (the other classes carry no signal)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2.0, size=(n, k))
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    top = p.argmax(1)
    right = rng.random(n) < p.max(1) ** 2
    other = (top + rng.integers(1, k, n)) % k
    return p, np.where(right, top, other)


def test_top_label_map_lowers_the_held_out_ece_and_keeps_the_ranking():
    p, y = _top_overconfident(8000)
    fit, new = slice(0, 4000), slice(4000, 8000)
    t = fit_temperature(p[fit], y[fit])
    scaled = apply_temperature(p[new], t)
    params = fit_top_label(apply_temperature(p[fit], t), y[fit], method="isotonic")
    params = json.loads(json.dumps(params))  # what a manifest stores
    mapped = apply_top_label(scaled, params)
    before = reliability(scaled, y[new]).ece
    after = reliability(mapped, y[new]).ece
    assert before > 0.05 and after < 0.025 and after < before / 2
    assert negative_log_likelihood(mapped, y[new]) < negative_log_likelihood(scaled, y[new])
    assert np.array_equal(mapped.argmax(1), p[new].argmax(1))
    np.testing.assert_allclose(mapped.sum(1), 1.0, atol=1e-12)
    # the other classes keep their order and their ratios
    q = np.delete(mapped, mapped.argmax(1)[:, None], axis=1)
    r = np.delete(scaled, scaled.argmax(1)[:, None], axis=1)
    np.testing.assert_allclose(q / q.sum(1, keepdims=True), r / r.sum(1, keepdims=True))
    # the 90 % conformal threshold fitted after the map still covers new rows
    threshold = conformal_threshold(apply_top_label(apply_temperature(p[fit], t), params), y[fit])
    covered = mapped[np.arange(4000), y[new]] >= threshold
    assert 0.87 <= covered.mean() <= 0.94


@pytest.mark.parametrize("method", TOP_LABEL_METHODS)
def test_every_top_label_method_is_monotone_and_keeps_the_top_answer(method):
    p, y = _top_overconfident(3000, k=5, seed=4)
    params = fit_top_label(p, y, method=method)
    mapped = apply_top_label(p, params)
    grid = np.linspace(0.0, 1.0, 501)
    assert np.all(np.diff(top_label_map(grid, params)) >= -1e-12)  # c -> c' never falls
    assert np.array_equal(mapped.argmax(1), p.argmax(1))
    assert reliability(mapped, y).ece < reliability(p, y).ece


def test_a_map_that_would_drop_the_top_answer_below_the_second_keeps_it_first():
    p = np.array([[0.40, 0.35, 0.25], [0.9, 0.05, 0.05]])
    params = {"method": "platt", "a": 1.0, "b": -3.0}  # c' far below c
    q = apply_top_label(p, params)
    assert list(q.argmax(1)) == [0, 0]
    assert q[0, 0] > q[0, 1] and q[0, 0] == pytest.approx(q[0, 1], rel=1e-6)
    np.testing.assert_allclose(q.sum(1), 1.0)


def test_an_old_calibration_record_with_only_a_temperature_applies_exactly_as_before():
    from pdfsg.models import _calibrate

    p, _ = _overconfident(50, 8, seed=5)
    old = {"temperature": 1.7, "conformal_threshold": 0.01}
    assert np.array_equal(calibrate_proba(p, old), apply_temperature(p, 1.7))
    assert np.array_equal(calibrate_proba(p, {"temperature": 1.0}), p)
    assert np.array_equal(calibrate_proba(p, None), p)
    comp = np.zeros((50, 4))
    comp[:25, -1] = 1  # the first half with a known composition
    modes = {True: {"temperature": 0.8}, False: old}
    out = _calibrate(p.copy(), comp, modes.get)
    np.testing.assert_array_equal(out[:25], apply_temperature(p[:25], 0.8))
    np.testing.assert_array_equal(out[25:], apply_temperature(p[25:], 1.7))


def test_calibrate_applies_a_top_label_record_per_input_mode():
    from pdfsg.models import _calibrate

    p, y = _top_overconfident(2000, k=10, seed=6)
    record = {"temperature": 1.2, "top_label": fit_top_label(apply_temperature(p, 1.2), y)}
    comp = np.zeros((2000, 4))
    comp[::2, -1] = 1
    out = _calibrate(p.copy(), comp, {True: record, False: {"temperature": 1.2}}.get)
    np.testing.assert_allclose(
        out[::2], apply_top_label(apply_temperature(p[::2], 1.2), record["top_label"])
    )
    np.testing.assert_allclose(out[1::2], apply_temperature(p[1::2], 1.2))
    assert (
        reliability(out[::2], y[::2]).ece < reliability(apply_temperature(p[::2], 1.2), y[::2]).ece
    )


def test_the_shipped_manifests_calibration_records_still_apply():
    from pdfsg.artifact import load_model

    model = load_model("pdfsg-v3-r30")
    for mode in ("g_only", "composition"):
        record = model.manifest["calibration"]["modes"][mode]
        p, _ = _overconfident(20, len(model.labels), seed=7)
        expected = apply_temperature(p, float(record["temperature"]))
        np.testing.assert_array_equal(calibrate_proba(p, record), expected)
