"""The trainer's eval metrics are recsys.repro.accuracy's, plus loss (= logloss) and the example count."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recsys.repro import accuracy
from recsys.train.evaluate import metrics


def test_trainer_metrics_golden_numbers():
    # pairs (pos, neg): (0.9 > 0.2), (0.9 > 0.4), (0.3 > 0.2), (0.3 < 0.4) -> AUC 3/4
    labels, probs = np.array([1.0, 0.0, 1.0, 0.0]), np.array([0.9, 0.2, 0.3, 0.4])
    m = metrics(labels, probs)
    assert list(m) == ["loss", "auc", "logloss", "calibration", "examples"]
    assert m["auc"] == pytest.approx(0.75)
    want_ll = -(math.log(0.9) + math.log(0.8) + math.log(0.3) + math.log(0.6)) / 4
    assert m["loss"] == m["logloss"] == pytest.approx(want_ll)
    assert m["calibration"] == pytest.approx(1.8 / 4 / 0.5)
    assert m["examples"] == 4
    assert {k: m[k] for k in ("auc", "logloss", "calibration")} == accuracy.accuracy_metrics(labels, probs)
