"""Accuracy reported beside PD (never PD alone): AUC, logloss and calibration, in NumPy.

The one implementation: the trainer's evaluation (:mod:`recsys.train.evaluate`), ``recsys compare`` and
the study all use it. (The Keras metrics in :mod:`recsys.models.metrics` are the in-graph running
training metrics; ``tests/models/test_ranking_model.py`` checks their AUC against this one.)
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def _check(labels: ArrayLike, predictions: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    p = np.asarray(predictions, dtype=np.float64).reshape(-1)
    if y.shape != p.shape or y.size == 0:
        raise ValueError(f"need equally many labels and predictions (> 0), got {y.size} and {p.size}")
    return y, p


def auc(labels: ArrayLike, predictions: ArrayLike) -> float:
    """Area under the ROC curve (Mann-Whitney, ties count one half); NaN when one class is absent."""
    y, p = _check(labels, predictions)
    pos = y > 0.5
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(p, kind="mergesort")
    ranks = np.empty(p.size, dtype=np.float64)
    sorted_p = p[order]
    # Average ranks over ties.
    _, first, counts = np.unique(sorted_p, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def logloss(labels: ArrayLike, predictions: ArrayLike, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy, predictions clipped to [eps, 1 - eps]."""
    y, p = _check(labels, predictions)
    p = np.clip(p, eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def calibration(labels: ArrayLike, predictions: ArrayLike) -> float:
    """Mean prediction / mean label (1.0 is calibrated); NaN when there are no positives."""
    y, p = _check(labels, predictions)
    return float(p.mean() / y.mean()) if y.mean() > 0 else float("nan")


def accuracy_metrics(labels: ArrayLike, predictions: ArrayLike) -> dict[str, float]:
    """AUC, logloss and calibration of one model's predictions."""
    return {"auc": auc(labels, predictions), "logloss": logloss(labels, predictions),
            "calibration": calibration(labels, predictions)}
