"""PD in TensorFlow: per-batch functions and a streaming Keras metric that is correct under tf.distribute."""

from __future__ import annotations

from typing import Any

from recsys.compat import keras, tf


def relative_difference(p1: tf.Tensor, p2: tf.Tensor) -> tf.Tensor:
    """Per-example |p1 - p2| / ((p1 + p2) / 2), 0 where both predictions are 0."""
    p1, p2 = tf.cast(p1, tf.float64), tf.cast(p2, tf.float64)
    mean = (p1 + p2) / 2.0
    return tf.math.divide_no_nan(tf.abs(p1 - p2), mean)


def relative_pd(p1: tf.Tensor, p2: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(relative_difference(p1, p2))


def absolute_pd(p1: tf.Tensor, p2: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(tf.abs(tf.cast(p1, tf.float64) - tf.cast(p2, tf.float64)))


@keras.saving.register_keras_serializable(package="recsys")
class PredictionDifference(keras.metrics.Metric):  # type: ignore[misc]  # Keras is untyped (Any)
    """Streaming relative or absolute PD between two prediction tensors.

    Sums and counts are float64 metric variables, which Keras aggregates with SUM across replicas, so
    the result over a distributed eval is the PD over all examples, not a mean of per-replica PDs.
    """

    def __init__(self, kind: str = "relative", name: str | None = None, **kwargs: Any) -> None:
        if kind not in ("relative", "absolute"):
            raise ValueError(f"kind must be 'relative' or 'absolute', got {kind!r}")
        super().__init__(name=name or f"{kind}_pd", **kwargs)
        self.kind = kind
        self.total = self.add_weight("total", shape=(), dtype=tf.float64, initializer="zeros")
        self.count = self.add_weight("count", shape=(), dtype=tf.float64, initializer="zeros")

    def update_state(self, p1: tf.Tensor, p2: tf.Tensor, sample_weight: tf.Tensor | None = None) -> None:
        p1 = tf.reshape(tf.cast(p1, tf.float64), [-1])
        p2 = tf.reshape(tf.cast(p2, tf.float64), [-1])
        diff = relative_difference(p1, p2) if self.kind == "relative" else tf.abs(p1 - p2)
        self.total.assign_add(tf.reduce_sum(diff))
        self.count.assign_add(tf.cast(tf.size(diff), tf.float64))

    def result(self) -> tf.Tensor:
        return tf.math.divide_no_nan(self.total, self.count)

    def reset_state(self) -> None:
        self.total.assign(0.0)
        self.count.assign(0.0)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "kind": self.kind}
