"""Feature interactions: a DCN-v2 cross stack (full or low-rank) or the DLRM pairwise dot product."""

from __future__ import annotations

import numpy as np

from recsys.compat import keras, tf
from recsys.models.tfrs_compat import tfrs


class CrossStack(keras.layers.Layer):
    """x_{l+1} = x0 * (W x_l + b) + x_l, ``num_layers`` times (``tfrs.layers.dcn.Cross``)."""

    def __init__(
        self,
        num_layers: int,
        low_rank: int = 0,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        l2: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        reg = keras.regularizers.L2(l2) if l2 > 0 else None
        self.crosses = [
            tfrs.layers.dcn.Cross(
                projection_dim=low_rank or None,
                kernel_initializer=kernel_initializer,
                bias_initializer=bias_initializer,
                kernel_regularizer=reg,
                name=f"cross_{i}",
            )
            for i in range(num_layers)
        ]

    def call(self, x0):
        x = x0
        for cross in self.crosses:
            x = cross(x0, x)
        return x


class DotInteraction(keras.layers.Layer):
    """[B, F, d] -> the F(F-1)/2 pairwise dot products (i < j) as [B, F(F-1)/2] (DLRM)."""

    def call(self, x):
        f = x.shape[1]
        if f is None:
            raise ValueError("DotInteraction needs a static number of features")
        gram = tf.matmul(x, x, transpose_b=True)  # [B, F, F]
        rows, cols = np.triu_indices(f, k=1)
        flat = tf.reshape(gram, [-1, f * f])
        return tf.gather(flat, rows * f + cols, axis=1)
