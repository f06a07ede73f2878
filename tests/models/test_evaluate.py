"""Golden numbers for the exact NumPy eval metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recsys.train.evaluate import auc, calibration, logloss, metrics


def test_auc_golden_with_ties():
    # pairs (pos, neg): (0.8,0.1) (0.8,0.4) (0.8,0.8 tie=0.5) (0.35,0.1) (0.35,0.4 lose) (0.35,0.8 lose)
    labels = np.array([1, 1, 0, 0, 0])
    scores = np.array([0.8, 0.35, 0.1, 0.4, 0.8])
    assert auc(labels, scores) == pytest.approx(3.5 / 6)
    assert auc([1, 0], [0.9, 0.1]) == 1.0 and auc([0, 1], [0.9, 0.1]) == 0.0
    assert math.isnan(auc([1, 1], [0.2, 0.3]))


def test_auc_matches_pairwise_definition():
    rng = np.random.default_rng(0)
    y = rng.random(300) < 0.3
    s = np.round(rng.random(300), 2)  # many ties
    pos, neg = s[y], s[~y]
    want = ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (
        len(pos) * len(neg)
    )
    assert auc(y, s) == pytest.approx(want, abs=1e-12)


def test_logloss_and_calibration_golden():
    assert logloss([1, 0], [0.5, 0.5]) == pytest.approx(math.log(2))
    assert logloss([1], [0.0]) == pytest.approx(-math.log(1e-7))
    assert calibration([1, 0, 1, 0], [0.5, 0.5, 0.2, 0.2]) == pytest.approx(0.7)
    m = metrics(np.array([1.0, 0.0]), np.array([0.9, 0.2]))
    assert m["auc"] == 1.0 and m["examples"] == 2 and m["loss"] == m["logloss"]
