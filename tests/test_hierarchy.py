"""Level probabilities, prediction sets and the sentence under the ranking."""

from __future__ import annotations

import numpy as np
import pytest

from pdfsg.hierarchy import cumulative_set, level_probabilities, summarise
from pdfsg.spacegroups import label_set

LABELS = label_set("paper45")


def _vec(weights: dict[int, float]) -> np.ndarray:
    p = np.full(len(LABELS), 1e-5)
    for sg, w in weights.items():
        p[LABELS.index(sg)] = w
    return p / p.sum()


def test_levels_sum_the_groups():
    p = _vec({225: 0.62, 216: 0.3, 221: 0.08})
    lat = level_probabilities(LABELS, p, "bravais_lattice")
    assert next(iter(lat)) == "cF" and lat["cF"] == pytest.approx(0.92, abs=1e-3)
    assert lat["cP"] == pytest.approx(0.08, abs=1e-3)
    assert sum(lat.values()) == pytest.approx(1.0)
    laue = level_probabilities(LABELS, p, "laue_class")
    assert laue["m-3m"] == pytest.approx(1.0, abs=1e-3)


def test_subgroup_pair_is_named_and_never_called_unsure_at_82_vs_5():
    s = summarise(LABELS, _vec({225: 0.62, 216: 0.3, 221: 0.08}))
    assert s.sentence.startswith("cubic, face-centred (cF, 92%)")
    assert "Fm-3m (225, 62%) or its subgroup F-43m (216) at 30%" in s.sentence
    assert "barely tells them apart" in s.sentence
    clear = summarise(LABELS, _vec({136: 0.82, 4: 0.05, 65: 0.13}))
    assert "unsure" not in clear.sentence and "barely" not in clear.sentence
    assert "most likely P4_2/mnm (136, 82%)" in clear.sentence


def test_low_confidence_and_unsettled_system():
    s = summarise(
        LABELS, _vec({14: 0.2, 2: 0.15, 15: 0.15, 62: 0.1, 194: 0.1, 12: 0.1, 11: 0.1, 13: 0.1})
    )
    assert s.sentence.startswith("low confidence; probably monoclinic (65%), lattice mP")
    assert len(s.prediction_set) > 4
    s = summarise(LABELS, _vec({14: 0.3, 2: 0.3, 62: 0.2, 194: 0.2}))
    assert s.sentence.startswith("crystal system not settled: monoclinic 30%, triclinic 30%")


def test_prediction_sets():
    p = _vec({225: 0.62, 216: 0.3, 221: 0.08})
    assert [LABELS[i] for i in cumulative_set(p, 0.9)] == [225, 216]
    s = summarise(LABELS, p, conformal_threshold=0.2)
    assert s.prediction_set == [225, 216] and "conformal" in s.set_method
    s = summarise(LABELS, p, conformal_threshold=0.99)
    assert s.prediction_set == [225]  # never empty
    assert s.to_dict()["prediction_set"]["space_groups"] == [225]
