"""A stack of Dense layers, each followed by its own activation from the registry."""

from __future__ import annotations

from typing import Any

from recsys.compat import keras
from recsys.models.activation import get_activation


class MLP(keras.layers.Layer):
    """Dense(units[i]) -> activation, for each i; one fresh activation layer per use site."""

    def __init__(
        self,
        units: tuple[int, ...],
        activation: Any,
        l2: float = 0.0,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        reg = keras.regularizers.L2(l2) if l2 > 0 else None
        self.dense = [
            keras.layers.Dense(
                u, kernel_initializer=kernel_initializer, kernel_regularizer=reg, name=f"dense_{i}"
            )
            for i, u in enumerate(units)
        ]
        self.activations = [get_activation(activation) for _ in units]

    def call(self, x, training=None):
        for dense, act in zip(self.dense, self.activations, strict=True):
            x = act(dense(x))
        return x
