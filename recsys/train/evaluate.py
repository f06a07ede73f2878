"""The trainer's exact evaluation: a model's predictions on a whole eval split, and its metrics.

Evaluation runs on a strategy-free copy of the model over the complete split in every process, so
the numbers are exact (AUC from ranks, not threshold buckets) and identical on every worker, with no
collective ops that partial last batches could misalign. The metrics are :mod:`recsys.repro.accuracy`'s,
the same ones ``recsys compare`` and the study report.
"""

from __future__ import annotations

import numpy as np

from recsys.compat import tf
from recsys.repro.accuracy import accuracy_metrics
from recsys.train.predict import predict_fn


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
    """The eval metrics the trainer reports: accuracy, ``loss`` (the logloss) and ``examples``."""
    acc = accuracy_metrics(labels, probs)
    return {"loss": acc["logloss"], **acc, "examples": int(len(labels))}
