"""Exact evaluation metrics in NumPy over a model's predictions on a whole eval split.

Evaluation runs on a strategy-free copy of the model over the complete split in every process, so
the numbers are exact (AUC from ranks, not threshold buckets) and identical on every worker, with no
collective ops that partial last batches could misalign.
"""

from __future__ import annotations

import numpy as np

from recsys.compat import tf
from recsys.repro.accuracy import auc, calibration, logloss
from recsys.train.predict import predict_fn

__all__ = ["auc", "calibration", "evaluate", "logloss", "metrics", "predict_with_labels"]


def predict_with_labels(model, dataset: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities [N], labels [N]) over a dataset of (features, labels) batches, in order."""
    call = predict_fn(model)
    preds, labels = [], []
    for features, y in dataset:
        preds.append(call(features).numpy())
        labels.append(np.reshape(y.numpy(), [-1]))
    if not preds:
        return np.zeros([0], np.float32), np.zeros([0], np.float32)
    return np.concatenate(preds), np.concatenate(labels)


def metrics(labels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """The eval metrics the trainer reports (``loss`` is the logloss)."""
    ll = logloss(labels, probs)
    return {
        "loss": ll,
        "auc": auc(labels, probs),
        "logloss": ll,
        "calibration": calibration(labels, probs),
        "examples": int(len(labels)),
    }


def evaluate(model, dataset: tf.data.Dataset) -> dict[str, float]:
    """Metrics of ``model`` on every example of ``dataset`` (computed in this process)."""
    probs, labels = predict_with_labels(model, dataset)
    return metrics(labels, probs)
