"""AUC / logloss / calibration golden numbers (the one implementation: recsys.repro.accuracy)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recsys.repro import accuracy


def test_auc_golden_numbers_with_ties():
    # Pairs (pos, neg): (0.8 > 0.3), (0.8 > 0.5), (0.5 == 0.5 -> 1/2), (0.5 > 0.3) -> 3.5 / 4
    assert accuracy.auc([1, 0, 1, 0], [0.8, 0.3, 0.5, 0.5]) == pytest.approx(3.5 / 4)
    assert accuracy.auc([1, 1, 0], [0.9, 0.8, 0.1]) == 1.0
    assert accuracy.auc([1, 1, 0], [0.1, 0.2, 0.9]) == 0.0
    assert math.isnan(accuracy.auc([1, 1], [0.1, 0.2]))
    # pairs (pos, neg): (0.8,0.1) (0.8,0.4) (0.8,0.8 tie=0.5) (0.35,0.1) (0.35,0.4 lose) (0.35,0.8 lose)
    assert accuracy.auc([1, 1, 0, 0, 0], [0.8, 0.35, 0.1, 0.4, 0.8]) == pytest.approx(3.5 / 6)


def test_auc_matches_pairwise_definition_on_random_data():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    p = np.round(rng.uniform(size=300), 2)  # many ties
    pos, neg = p[y == 1], p[y == 0]
    expected = np.mean((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :]))
    assert accuracy.auc(y, p) == pytest.approx(expected, rel=1e-12)


def test_logloss_and_calibration():
    assert accuracy.logloss([1, 0], [0.8, 0.4]) == pytest.approx(-(math.log(0.8) + math.log(0.6)) / 2)
    assert accuracy.calibration([1, 0, 0, 1], [0.5, 0.5, 0.25, 0.75]) == pytest.approx(1.0)
    assert accuracy.calibration([1, 0], [0.9, 0.3]) == pytest.approx(1.2)
    assert accuracy.calibration([1, 0, 1, 0], [0.5, 0.5, 0.2, 0.2]) == pytest.approx(0.7)
    assert math.isnan(accuracy.calibration([0, 0], [0.1, 0.2]))
    assert accuracy.logloss([1], [0.0]) == pytest.approx(-math.log(1e-7))  # clipped, not inf
    with pytest.raises(ValueError, match="equally many"):
        accuracy.logloss([1], [0.1, 0.2])
