"""Apply the determinism block of the config: seeds and (optionally) deterministic TF ops."""

from __future__ import annotations

import numpy as np

from recsys.compat import keras, tf
from recsys.config.schema import DeterminismConfig


def apply_determinism(config: DeterminismConfig) -> None:
    """Seed Python, NumPy and TF (model init); enable op determinism when asked (process-wide)."""
    keras.utils.set_random_seed(config.seed)
    if config.op_determinism:
        tf.config.experimental.enable_op_determinism()


def perturb_weights(model, scale: float, seed: int) -> float:
    """Multiply every trainable weight by (1 + scale * N(0, 1)); returns the largest relative change.

    Every worker draws the same noise (same seed), so mirrored variables stay identical.
    """
    rng = np.random.default_rng(seed)
    largest = 0.0
    for var in model.trainable_variables:
        value = var.numpy()
        new = (value * (1.0 + scale * rng.standard_normal(value.shape))).astype(value.dtype)
        var.assign(new)
        nonzero = value != 0
        if np.any(nonzero):
            largest = max(largest, float(np.max(np.abs(new[nonzero] / value[nonzero] - 1.0))))
    return largest
