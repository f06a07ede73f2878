"""Fixtures for the model/trainer/export tests: a tiny synthetic dataset written directly (no Beam)."""

from __future__ import annotations

import numpy as np
import pytest

import recsys.compat  # noqa: F401  (Keras 2 before TensorFlow)
from pipelines.synthetic_spec import SyntheticLayout, write_synthetic

# 4 numeric, 6 categorical (every 3rd hashed), 1 multi-valued; enough rows for a learnable signal.
TINY_LAYOUT = SyntheticLayout(num_numeric=4, num_categorical=6, num_multi=1, cardinality=60)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """Directory and FeatureSpec of a small synthetic click dataset (train 12k, eval 3k rows)."""
    root = tmp_path_factory.mktemp("tiny_data")
    spec = write_synthetic(
        str(root),
        num_train=12000,
        num_eval=3000,
        layout=TINY_LAYOUT,
        num_train_shards=4,
        num_eval_shards=2,
        seed=7,
    )
    return root, spec


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Exact ROC AUC (Mann-Whitney with tied ranks averaged)."""
    labels = np.asarray(labels).ravel()
    scores = np.asarray(scores, np.float64).ravel()
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    pos = labels > 0.5
    n_pos, n_neg = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def logloss(labels: np.ndarray, probs: np.ndarray) -> float:
    p = np.clip(np.asarray(probs, np.float64).ravel(), 1e-7, 1 - 1e-7)
    y = np.asarray(labels).ravel()
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


@pytest.fixture(scope="session")
def metrics_fns():
    """(auc, logloss) reference implementations in NumPy."""
    return auc, logloss
