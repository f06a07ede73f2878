"""A Keras callback that keeps a replica's eval predictions at every evaluation (for PD over time)."""

from __future__ import annotations

import numpy as np

from recsys.compat import keras
from recsys.train.predict import predict


class EvalPredictionRecorder(keras.callbacks.Callback):
    """After every epoch (= one evaluation period) store (global step, predictions on the eval set)."""

    def __init__(self, eval_dataset, steps_per_epoch: int) -> None:
        super().__init__()
        self.eval_dataset = eval_dataset
        self.steps_per_epoch = steps_per_epoch
        self.records: list[tuple[int, np.ndarray]] = []

    def on_epoch_end(self, epoch, logs=None):
        self.records.append(((epoch + 1) * self.steps_per_epoch, predict(self.model, self.eval_dataset)))
