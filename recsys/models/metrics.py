"""Ranking metrics: AUC, logloss and calibration (mean prediction / mean label)."""

from __future__ import annotations

from recsys.compat import keras, tf


class Calibration(keras.metrics.Metric):
    """sum(prediction) / sum(label): 1.0 for a calibrated click model."""

    def __init__(self, name: str = "calibration", **kwargs):
        super().__init__(name=name, **kwargs)
        self.pred_sum = self.add_weight("pred_sum", initializer="zeros", dtype=tf.float64)
        self.label_sum = self.add_weight("label_sum", initializer="zeros", dtype=tf.float64)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = tf.cast(tf.reshape(y_true, [-1]), tf.float64)
        y_pred = tf.cast(tf.reshape(y_pred, [-1]), tf.float64)
        if sample_weight is not None:
            w = tf.cast(tf.reshape(sample_weight, [-1]), tf.float64)
            y_true, y_pred = y_true * w, y_pred * w
        self.pred_sum.assign_add(tf.reduce_sum(y_pred))
        self.label_sum.assign_add(tf.reduce_sum(y_true))

    def result(self):
        return tf.cast(tf.math.divide_no_nan(self.pred_sum, self.label_sum), tf.float32)

    def reset_state(self):
        self.pred_sum.assign(0.0)
        self.label_sum.assign(0.0)


def ranking_metrics() -> list[keras.metrics.Metric]:
    """Fresh metric objects (one set per model)."""
    return [
        keras.metrics.AUC(name="auc", num_thresholds=1000),
        keras.metrics.BinaryCrossentropy(name="logloss"),
        Calibration(name="calibration"),
    ]
